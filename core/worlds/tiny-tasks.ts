/**
 * The tiny world's tasks: five families of short list tasks in plain English, a reader that turns
 * an instruction (seeded or written by the model itself) back into a task, and the expected answer.
 *
 *   reverse    "Reverse: cat dog sun"          → "sun dog cat"
 *   sort       "Sort these numbers: 4 1 3"     → "1 3 4"
 *   count      "How many words: cat dog cat"   → "3"
 *   repeat     "Say cat 3 times"               → "cat cat cat"
 *   uppercase  "Write in capitals: cat dog"    → "CAT DOG"
 *
 * Checking an answer (are these the input's items, all of them, in this order?) is simpler than
 * producing it, which is what lets a model's own judgments teach it.
 */
import { Rng } from '../random';

export const FAMILIES = ['reverse', 'sort', 'count', 'repeat', 'uppercase'] as const;
export type Family = (typeof FAMILIES)[number];

/** Short lowercase words: the task language's nouns. */
export const WORDS = [
  'cat', 'dog', 'sun', 'sky', 'map', 'cup', 'hat', 'pen', 'box', 'fox',
  'owl', 'bee', 'cow', 'pig', 'egg', 'jam', 'tea', 'oak', 'sea', 'car',
  'bus', 'van', 'bed', 'key', 'ink', 'toy', 'bag', 'leaf', 'bird', 'fish',
  'frog', 'lamp', 'door', 'rose', 'moon', 'star', 'tree', 'rain', 'snow', 'milk',
] as const;

export const NUMBER_WORDS: Record<string, number> = { one: 1, two: 2, three: 3, four: 4, five: 5, six: 6, seven: 7, eight: 8, nine: 9, ten: 10 };

/** A task as the oracle reads it: its family, its input items and the exact expected answer. */
export interface Task {
  family: Family;
  /** The input's items as written (for repeat: the word once). */
  items: string[];
  /** The expected answer, as tokens; the answer text is these joined by single spaces. */
  expected: string[];
}

/** Phrasings per family; `{items}` is the list, `{word}` and `{n}` the repeat task's word and count. */
export const PHRASINGS: Record<Family, string[]> = {
  reverse: ['Reverse: {items}', 'Reverse the words: {items}', 'Write these words in reverse order: {items}', 'Say backwards: {items}'],
  sort: ['Sort: {items}', 'Sort these numbers: {items}', 'Put in order, smallest first: {items}', 'Order from low to high: {items}'],
  count: ['Count the words: {items}', 'How many words: {items}', 'Count: {items}', 'How many items are in this list: {items}'],
  repeat: ['Repeat {word} {n} times', 'Say {word} {n} times', 'Write the word {word} {n} times', 'Repeat {n} times: {word}'],
  uppercase: ['Uppercase: {items}', 'Write in capitals: {items}', 'Make these words uppercase: {items}', 'Shout: {items}'],
};

const MAX_ITEMS = 12;

/** Splits text into items: whitespace or commas separate, surrounding punctuation is dropped. */
export function tokens(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map((t) => t.replace(/^[.;:!?"'()[\]]+|[.;:!?"'()[\]]+$/g, ''))
    .filter((t) => t.length > 0);
}

/** A number written as digits or as a word (one..ten); null otherwise. */
export function readNumber(token: string): number | null {
  if (/^\d{1,3}$/.test(token)) return Number(token);
  return NUMBER_WORDS[token.toLowerCase()] ?? null;
}

const isWord = (t: string) => /^[A-Za-z]+$/.test(t);

/** The expected answer of a family for its input items (repeat: items = [word], n given). */
export function expectedAnswer(family: Family, items: string[], n = 0): string[] {
  switch (family) {
    case 'reverse':
      return [...items].reverse();
    case 'sort':
      return [...items].map(Number).sort((a, b) => a - b).map(String);
    case 'count':
      return [String(items.length)];
    case 'repeat':
      return Array.from({ length: n }, () => items[0]!);
    case 'uppercase':
      return items.map((w) => w.toUpperCase());
  }
}

function familyOfPrefix(prefix: string): Family | null {
  const p = prefix.toLowerCase();
  if (/revers|backward/.test(p)) return 'reverse';
  if (/\b(?:sort|order)\b/.test(p)) return 'sort';
  if (/\bcount\b|how many/.test(p)) return 'count';
  if (/upper|capital|shout/.test(p)) return 'uppercase';
  if (/\brepeat\b/.test(p)) return 'repeat';
  return null;
}

/**
 * Reads an instruction as a task, or explains why it cannot. Forms: `<phrase>: <items>` (the phrase
 * names the family by keyword, so new phrasings from self-instruct are read too), and for repeat
 * `<repeat|say|write> [the word] <word> <n> times` or `Repeat <n> times: <word>`.
 */
export function parseTask(instruction: string): { ok: true; task: Task } | { ok: false; reason: string } {
  const text = instruction.replace(/\s+/g, ' ').trim();
  const rep = /^(?:repeat|say|write)(?: the word)? ([A-Za-z]+) (\d{1,2}|[a-z]+) times?\.?$/i.exec(text) ?? /^repeat (\d{1,2}|[a-z]+) times?: ([A-Za-z]+)\.?$/i.exec(text);
  if (rep) {
    const [word, count] = /^repeat \S+ times?:/i.test(text) ? [rep[2]!, rep[1]!] : [rep[1]!, rep[2]!];
    const n = readNumber(count);
    if (n === null || n < 1 || n > MAX_ITEMS) return { ok: false, reason: `cannot read the repeat count "${count}"` };
    return { ok: true, task: { family: 'repeat', items: [word], expected: expectedAnswer('repeat', [word], n) } };
  }
  const colon = text.indexOf(':');
  if (colon < 0) return { ok: false, reason: 'not a task of this world (no "<task>: <items>" form)' };
  const family = familyOfPrefix(text.slice(0, colon));
  if (family === null || family === 'repeat') return { ok: false, reason: `unknown task "${text.slice(0, colon)}"` };
  const items = tokens(text.slice(colon + 1));
  if (items.length === 0) return { ok: false, reason: 'the task has no items' };
  if (items.length > MAX_ITEMS) return { ok: false, reason: `more than ${MAX_ITEMS} items` };
  if (family === 'sort' ? !items.every((t) => /^\d{1,3}$/.test(t)) : !items.every(isWord)) {
    return { ok: false, reason: family === 'sort' ? 'sort needs numbers' : 'the items are not words' };
  }
  return { ok: true, task: { family, items, expected: expectedAnswer(family, items) } };
}

/** A random instruction of a family, with its phrasing chosen by the rng. */
export function randomInstruction(family: Family, rng: Rng): string {
  const phrasing = PHRASINGS[family][rng.int(PHRASINGS[family].length)]!;
  const distinctWords = (k: number) => rng.shuffle([...WORDS]).slice(0, k);
  let items: string[];
  switch (family) {
    case 'reverse':
      items = distinctWords(2 + rng.int(3));
      break;
    case 'sort':
      // Digits 0..9, repeats allowed, never already sorted.
      do items = Array.from({ length: 2 + rng.int(3) }, () => String(rng.int(10)));
      while (items.join(' ') === expectedAnswer('sort', items).join(' '));
      break;
    case 'count':
      items = Array.from({ length: 2 + rng.int(4) }, () => WORDS[rng.int(WORDS.length)]!);
      break;
    case 'repeat':
      return phrasing.replace('{word}', WORDS[rng.int(WORDS.length)]!).replace('{n}', String(2 + rng.int(3)));
    case 'uppercase':
      items = distinctWords(2 + rng.int(3));
      break;
  }
  return phrasing.replace('{items}', items.join(' '));
}
