/**
 * The built-in "tiny" task world: seed data for the whole self-rewarding loop, generated from a
 * seed, with a programmatic oracle (tiny-oracle.ts) to score what the model writes. Tasks and
 * their reader are in tiny-tasks.ts.
 *
 * - ift: instructions with their correct answers, and a few rows asking for a list of tasks
 *   (TASK_LIST_INSTRUCTION → `Task: ...` lines), which keep self-instruct working after SFT.
 * - eft: judge training rows — responses of every quality (corrupted answers), each with the
 *   oracle's justification and `Score: N`, equally many per score 0..5.
 * - evalPrompts, rankedEval: held-out instructions (in no other split) for head-to-head and for
 *   the judge's pairwise accuracy; each ranked set has 4 responses ranked by the oracle.
 * - pretrain: M0's text, without any answer: self-instruct pages (the few-shot template filled
 *   with task lines, so M0 can write new tasks) and plain sentences of the task language (some
 *   say a list twice or shout words in capitals: the repetition a model learns copying from).
 *
 * Text is tokenized by the world's closed word-level tokenizer (tinyTokenizer): one token per
 * word, digit or mark, so prompts are ~20 tokens and judge prompts ~60.
 */
import { z } from 'zod';
import type { EftRow, IftRow, PromptRow, RankedSetRow } from '../data/rows';
import { ModelConfig } from '../model/config';
import { DecoderModel } from '../model/decoder';
import type { TextModel } from '../method/text-model';
import type { BuiltinWorld } from '../pipeline/world';
import { trainSft } from '../train/sft';
import { selfInstructPrompt } from '../method/prompts';
import { deriveSeed, Rng } from '../random';
import { JUSTIFICATIONS, oracleJudgment, oracleScore, scoreTask, type OracleVerdict } from './tiny-oracle';
import { FAMILIES, NUMBER_WORDS, parseTask, PHRASINGS, randomInstruction, WORDS, type Family, type Task } from './tiny-tasks';
import { INSTRUCTION_TEMPLATE } from '../tokenizer/template';
import { WordTokenizer } from '../tokenizer/word';

export * from './tiny-tasks';
export * from './tiny-oracle';

/**
 * A short judge template for the tiny world: the additive rubric's structure (five cumulative
 * criteria, a brief justification, a final `Score: N`) in a few dozen words instead of ~200, so a
 * judge prompt is ~50 tokens.
 */
export const TINY_JUDGE_TEMPLATE = `Score the response. Add a point for each: relevant, half done, all items, correct, nothing extra.
Task: {instruction}
Response: {response}
Justify briefly, then end with Score: N.`;

/** The instruction of the IFT rows that teach writing tasks (their responses are `Task: ...` lines). */
export const TASK_LIST_INSTRUCTION = 'Write some tasks, one on each line.';

/**
 * The tiny world's self-instruct template: the instruction template asking for a list of tasks,
 * with the few-shot tasks as the start of the response, so a model that learned to answer
 * instructions (SFT forgets plain continuation quickly at this size) writes one more line. M0's
 * pretraining pages and the task-list IFT rows have the same form.
 */
export const TINY_SELF_INSTRUCT_TEMPLATE = `${INSTRUCTION_TEMPLATE.format(TASK_LIST_INSTRUCTION)}{tasks}
Task:`;

export const TinyWorldSizes = z.strictObject({
  ift: z.number().int().positive().default(500),
  eft: z.number().int().positive().default(480),
  eval: z.number().int().positive().default(100),
  ranked: z.number().int().positive().default(50),
  /** Self-instruct pages in the pretraining text. */
  pretrainPages: z.number().int().nonnegative().default(240),
  /** Task lines per self-instruct page. */
  tasksPerPage: z.number().int().positive().default(8),
  /** IFT rows asking for a list of tasks (TASK_LIST_INSTRUCTION), answered with 3 or 4 training instructions. */
  taskLists: z.number().int().nonnegative().default(20),
  /** Plain sentences of the task language in the pretraining text (several per string). */
  pretrainSentences: z.number().int().nonnegative().default(240),
});
export type TinyWorldSizes = z.infer<typeof TinyWorldSizes>;

export interface TinyWorld {
  ift: IftRow[];
  eft: EftRow[];
  evalPrompts: PromptRow[];
  rankedEval: RankedSetRow[];
  pretrain: string[];
}

/** Texts whose words make up the vocabulary, besides the task words (slots removed). */
const VOCABULARY_TEXTS = (): string[] => [
  INSTRUCTION_TEMPLATE.format(''),
  TINY_JUDGE_TEMPLATE,
  TINY_SELF_INSTRUCT_TEMPLATE,
  ...Object.values(PHRASINGS).flat(),
  JUSTIFICATIONS.empty,
  JUSTIFICATIONS.unrelated,
  ...JUSTIFICATIONS.list,
  ...JUSTIFICATIONS.count,
  ...PREFIXES,
  ...ZERO_REPLIES,
  'There are words.',
  ...SENTENCES.map((f) => f(() => '')),
  'Score: Not a task I can check',
];

/**
 * The tiny world's closed vocabulary: every word of its templates, phrasings, judgments and prose,
 * the task words in lower case and in capitals, number words, digits, a few marks.
 */
export function tinyVocabulary(): string[] {
  const words = new Set<string>();
  const add = (w: string) => words.add(w);
  for (const text of VOCABULARY_TEXTS()) for (const w of text.match(/[A-Za-z]+|#+|[^\sA-Za-z]/gu) ?? []) add(w);
  for (const w of WORDS) [w, w.toUpperCase()].forEach(add);
  for (const w of Object.keys(NUMBER_WORDS)) add(w);
  for (let d = 0; d <= 9; d++) add(String(d));
  for (const m of ['.', ',', ':', ';', '!', '?', '"', "'", '(', ')', '-', '\n']) add(m);
  return [...words].sort();
}

let cachedTokenizer: WordTokenizer | undefined;

/** The tiny world's word tokenizer (see core/tokenizer/word.ts): sequences of 5 to 70 tokens. */
export function tinyTokenizer(): WordTokenizer {
  return (cachedTokenizer ??= new WordTokenizer(tinyVocabulary()));
}

/** Llama-style, for the tiny world's word tokenizer, sized for 2 CPU cores. */
export function tinyModelConfig(overrides: Partial<Pick<ModelConfig, 'hiddenSize' | 'numLayers' | 'numHeads' | 'intermediateSize'>> = {}): ModelConfig {
  const hiddenSize = overrides.hiddenSize ?? 64;
  const numHeads = overrides.numHeads ?? 4;
  return ModelConfig.parse({
    family: 'llama',
    vocabSize: tinyTokenizer().vocabSize,
    hiddenSize,
    numLayers: overrides.numLayers ?? 2,
    numHeads,
    numKvHeads: numHeads,
    headDim: hiddenSize / numHeads,
    intermediateSize: overrides.intermediateSize ?? hiddenSize * 3,
    maxPositions: 128,
    normEps: 1e-5,
    tieEmbeddings: true,
    bosTokenId: 2,
    eosTokenId: 1,
    padTokenId: 0,
  });
}

const taskOf = (instruction: string): Task => {
  const parsed = parseTask(instruction);
  if (!parsed.ok) throw new Error(`tiny world generated an instruction it cannot read: ${instruction} (${parsed.reason})`);
  return parsed.task;
};

const pick = <T>(rng: Rng, items: readonly T[]): T => items[rng.int(items.length)]!;

/** Words of the vocabulary not among the task's items. */
function strangers(task: Task, rng: Rng, k: number): string[] {
  const used = new Set(task.items.map((t) => t.toLowerCase()));
  return rng.shuffle(WORDS.filter((w) => !used.has(w))).slice(0, k);
}

/** `items` extended to `length` with `more()`. */
const fill = (items: string[], length: number, more: () => string): string[] => [...items, ...Array.from({ length: Math.max(0, length - items.length) }, more)];

const PREFIXES = ['The answer is', 'Sure:', 'Here it is:', 'Answer:', 'Done:'];
const ZERO_REPLIES = ['I do not know.', 'No.', 'Maybe later.', 'That is a good question.'];

/**
 * A response proposed for a target score: a corruption of the correct answer in the style that
 * usually earns that score. The caller keeps it only when the oracle agrees.
 */
function propose(task: Task, target: number, rng: Rng): string {
  const e = task.expected;
  const join = (t: string[]) => t.join(' ');
  const count = task.family === 'count' ? Number(e[0]) : 0;
  const other = (avoid: number[]) => {
    let n: number;
    do n = rng.int(10);
    while (avoid.includes(n));
    return n;
  };
  switch (target) {
    case 5:
      return join(e);
    case 4:
      switch (rng.int(4)) {
        case 0:
          return `${pick(rng, PREFIXES)} ${join(e)}`;
        case 1:
          return `${join(e)}.`;
        case 2:
          return `${join(e)} ${join(e)}`;
        default:
          return task.family === 'count' ? `There are ${join(e)} words.` : `${join(e)} ${pick(rng, task.items)}`;
      }
    case 3:
      if (task.family === 'count') return rng.shuffle([String(count), String(other([count]))]).join(' ');
      if (rng.int(2) === 0 && e.length > 1) return join(rng.shuffle([...e]));
      {
        const at = 1 + rng.int(Math.max(1, e.length - 1));
        return join([...e.slice(0, at), ...strangers(task, rng, 1), ...e.slice(at)]);
      }
    case 2: {
      if (task.family === 'count') return String(count + (count > 1 && rng.int(2) ? -1 : 1));
      const keep = Math.ceil(e.length / 2) + rng.int(Math.max(1, e.length - Math.ceil(e.length / 2)));
      const kept = rng.shuffle(e.map((_, i) => i)).slice(0, keep).sort((a, b) => a - b).map((i) => e[i]!);
      // Half the time the length of the answer, filled with repeats: the errors a small model makes.
      if (rng.int(2) === 0) return join(fill(kept, e.length, () => pick(rng, kept)));
      return join(rng.int(3) === 0 ? rng.shuffle(kept) : kept);
    }
    case 1: {
      if (task.family === 'count') return rng.int(3) === 0 ? join(task.items) : String(other([count - 1, count, count + 1]));
      if (task.family === 'uppercase' && rng.int(2) === 0) return join(task.items);
      const keep = Math.max(1, Math.ceil(e.length / 2) - 1);
      const kept = rng.shuffle([...e]).slice(0, 1 + rng.int(keep));
      if (rng.int(2) === 0) {
        const others = strangers(task, rng, e.length);
        return join(fill(kept, e.length, () => (rng.int(2) === 0 ? pick(rng, kept) : pick(rng, others))));
      }
      return join(rng.int(2) === 0 ? kept : [...kept, ...strangers(task, rng, 1 + rng.int(2))]);
    }
    default:
      switch (rng.int(3)) {
        case 0:
          return join(strangers(task, rng, 1 + rng.int(3)));
        case 1:
          return pick(rng, ZERO_REPLIES);
        default:
          return task.family === 'sort' || task.family === 'count' ? join(strangers(task, rng, 2).map((w) => w.toUpperCase())) : String(rng.int(10));
      }
  }
}

/** A response to `instruction` that the oracle scores `target`, or null when none was found. */
export function responseWithScore(instruction: string, target: number, rng: Rng, tries = 40): { response: string; verdict: OracleVerdict } | null {
  const task = taskOf(instruction);
  for (let i = 0; i < tries; i++) {
    const response = propose(task, target, rng).trim();
    if (response === '') continue;
    const v = scoreTask(task, response);
    if (v.score === target) return { response, verdict: v };
  }
  return null;
}

/**
 * Unique instructions, cycling through the families, none of which is in `taken` (each is added
 * to it). A family whose draws come up taken 200 times running is exhausted: with `partial` it is
 * skipped (fewer than `n` come back only when every family is), otherwise that is an error.
 */
function uniqueInstructions(n: number, rng: Rng, taken: Set<string>, partial = false): string[] {
  const out: string[] = [];
  const live: Family[] = [...FAMILIES];
  let misses = 0;
  while (out.length < n && live.length > 0) {
    const family = live[out.length % live.length]!;
    const text = randomInstruction(family, rng);
    if (taken.has(text)) {
      if (++misses < 200) continue;
      if (!partial) throw new Error(`tiny world: could not find ${n} new instructions (${family} ran out)`);
      live.splice(live.indexOf(family), 1);
      misses = 0;
      continue;
    }
    misses = 0;
    taken.add(text);
    out.push(text);
  }
  return out;
}

/** Dense ranks from scores: 0 for the best score, equal scores share a rank. */
export function ranksOf(scores: number[]): number[] {
  const distinct = [...new Set(scores)].sort((a, b) => b - a);
  return scores.map((s) => distinct.indexOf(s));
}

/** Plain sentences of the task language, with their nouns drawn by `w`. */
const SENTENCES: ((w: () => string, n?: () => number) => string)[] = [
  (w) => `the ${w()} and the ${w()} are by the ${w()}.`,
  (w) => `a ${w()} sees a ${w()}.`,
  (w) => `my ${w()} is near your ${w()}.`,
  (w, n = () => 1) => `we have ${n()} ${w()} and ${n()} ${w()}.`,
  (w) => `the ${w()} likes the ${w()} more than the ${w()}.`,
  // Lists said twice: the language's own repetition, from which a model learns to find and copy items.
  (w, n = () => 1) => {
    const list = Array.from({ length: 2 + (n() % 3) }, w).join(' ');
    return `I see ${list} and you see ${list} too.`;
  },
  (w) => {
    const list = [w(), w(), w()].join(' ');
    return `first ${list}, then again ${list}.`;
  },
  (w) => {
    const x = w();
    return `the ${x} said ${x} ${x} and ${x} again.`;
  },
  // Capitals: what a word looks like when shouted.
  (w) => {
    const list = [w(), w()];
    return `you say ${list.join(' ')} and I shout ${list.map((x) => x.toUpperCase()).join(' ')}.`;
  },
];

function sentence(rng: Rng): string {
  return pick(rng, SENTENCES)(() => pick(rng, WORDS), () => 1 + rng.int(9));
}

/** The tiny world for a seed. Same seed and sizes, same world. */
export function makeTinyWorld(seed: number, sizes: Partial<TinyWorldSizes> = {}): TinyWorld {
  const s = TinyWorldSizes.parse(sizes);
  const taken = new Set<string>();
  const rng = (label: string) => new Rng(deriveSeed(seed, 'tiny-world', label));

  // Held-out splits first, so training splits can never contain them.
  const evalInstructions = uniqueInstructions(s.eval, rng('eval'), taken);
  const rankedInstructions = uniqueInstructions(s.ranked, rng('ranked'), taken);
  const iftInstructions = uniqueInstructions(s.ift, rng('ift'), taken);
  const eftInstructions = uniqueInstructions(s.eft, rng('eft'), taken);

  const taskLines = (rng: Rng, k: number) => rng.shuffle([...iftInstructions, ...eftInstructions]).slice(0, k).map((t) => `Task: ${t}`).join('\n');
  const listRng = rng('task-lists');
  const ift: IftRow[] = [
    ...iftInstructions.map((instruction, i) => ({ id: `tiny-ift-${i}`, instruction, response: taskOf(instruction).expected.join(' ') })),
    ...Array.from({ length: s.taskLists }, (_, i) => ({ id: `tiny-ift-tasks-${i}`, instruction: TASK_LIST_INSTRUCTION, response: taskLines(listRng, 3 + listRng.int(2)) })),
  ];

  // EFT: target scores cycle 0..5 (balanced); an instruction that cannot take a score gives way to the next.
  const eftRng = rng('eft-responses');
  const eft: EftRow[] = [];
  let next = 0;
  for (let i = 0; i < s.eft; i++) {
    const target = i % 6;
    for (let tried = 0; ; tried++) {
      if (tried > s.eft) throw new Error(`tiny world: no EFT response with score ${target}`);
      const instruction = eftInstructions[next++ % eftInstructions.length]!;
      const hit = responseWithScore(instruction, target, eftRng);
      if (hit) {
        eft.push({ id: `tiny-eft-${i}`, instruction, response: hit.response, judgment: oracleJudgment(hit.verdict), score: target });
        break;
      }
    }
  }

  const evalPrompts: PromptRow[] = evalInstructions.map((instruction, i) => ({ id: `tiny-eval-${i}`, instruction, source: 'eval' }));

  // Ranked sets: 4 distinct responses with 4 distinct oracle scores (one set in five has a tie).
  const rankedRng = rng('ranked-responses');
  const rankedEval: RankedSetRow[] = rankedInstructions.map((instruction, i) => {
    const tie = rankedRng.int(5) === 0;
    for (let attempt = 0; attempt < 100; attempt++) {
      const targets = rankedRng.shuffle([0, 1, 2, 3, 4, 5]).slice(0, tie ? 3 : 4);
      if (tie) targets.push(targets[rankedRng.int(3)]!);
      const hits = targets.map((t) => responseWithScore(instruction, t, rankedRng));
      const texts = hits.map((h) => h?.response);
      if (hits.some((h) => h === null) || new Set(texts).size !== texts.length) continue;
      const scores = hits.map((h) => h!.verdict.score);
      const ranks = ranksOf(scores);
      return { id: `tiny-ranked-${i}`, instruction, responses: texts.map((text, j) => ({ text: text!, rank: ranks[j]! })) };
    }
    throw new Error(`tiny world: no ranked set for ${instruction}`);
  });

  // Pretraining: task lines come from the training instructions only (never the held-out ones).
  const trainInstructions = [...iftInstructions, ...eftInstructions];
  const preRng = rng('pretrain');
  const pages = Array.from({ length: s.pretrainPages }, () => selfInstructPrompt(preRng.shuffle([...trainInstructions]).slice(0, s.tasksPerPage), TINY_SELF_INSTRUCT_TEMPLATE).replace(/\nTask:$/, ''));
  const prose = Array.from({ length: s.pretrainSentences }, () => Array.from({ length: 3 }, () => sentence(preRng)).join(' '));
  const pretrain = preRng.shuffle([...pages, ...prose]);

  return { ift, eft, evalPrompts, rankedEval, pretrain };
}

/** M0's pretraining: next-token training on the world's pretraining text (task lines and prose, no answers). */
export const TinyBaseSettings = z.strictObject({
  epochs: z.number().positive().default(4),
  lr: z.number().positive().default(3e-3),
  lrEnd: z.number().nonnegative().default(3e-4),
  batchSize: z.number().int().positive().default(16),
  warmupSteps: z.number().int().nonnegative().default(10),
  hiddenSize: z.number().int().positive().default(64),
  numLayers: z.number().int().positive().default(2),
});
export type TinyBaseSettings = z.infer<typeof TinyBaseSettings>;

/** A TextModel of the tiny world: the model, the world's word tokenizer, the instruction template. */
export function tinyTextModel(model: DecoderModel): TextModel {
  return { model, tokenizer: tinyTokenizer(), template: INSTRUCTION_TEMPLATE };
}

/**
 * Next-token training of `tm` on a world's pretraining text (each text after BOS, up to the model's
 * positions). Reports every step; when `signal` is aborted it stops between steps and returns (the
 * caller checks the signal and discards the model).
 */
export async function pretrainBase(
  tm: TextModel,
  texts: string[],
  seed: number,
  s: TinyBaseSettings,
  onProgress?: (step: number, total: number, loss: number) => void,
  signal?: AbortSignal,
): Promise<void> {
  const { tokenizer } = tm;
  const { bosTokenId: bos, eosTokenId: eos } = tokenizer;
  if (bos === null || eos === null) throw new Error('pretrainBase needs a tokenizer with BOS and EOS tokens');
  const maxPositions = tm.model.config.maxPositions;
  const examples = texts.map((text) => ({ prompt: [bos], response: [...tokenizer.encode(text), eos].slice(0, maxPositions - 1) }));
  await trainSft(
    tm.model,
    examples,
    {
      lr: s.lr, lrEnd: s.lrEnd, schedule: 'cosine', warmupSteps: s.warmupSteps, batchSize: s.batchSize, gradientAccumulation: 1, epochs: s.epochs, dropout: 0,
      weightDecay: 0, gradClip: 1, maxSeqLen: maxPositions, checkpointEverySteps: 1e9, checkpointEverySeconds: 1e9, seed,
    },
    { ...(signal ? { signal } : {}), ...(onProgress ? { onProgress: (p) => onProgress(p.step, p.total, p.loss) } : {}) },
  );
}

/** M0: a fresh model (initialised from the seed) pretrained on the world's pretraining text (see pretrainBase). */
export async function tinyBaseModel(
  seed: number,
  pretrain: string[],
  settings: Partial<TinyBaseSettings> = {},
  onProgress?: (step: number, total: number, loss: number) => void,
  signal?: AbortSignal,
): Promise<TextModel> {
  const s = TinyBaseSettings.parse(settings);
  const tm = tinyTextModel(DecoderModel.initialise(tinyModelConfig({ hiddenSize: s.hiddenSize, numLayers: s.numLayers }), deriveSeed(seed, 'tiny-m0-init')));
  await pretrainBase(tm, pretrain, deriveSeed(seed, 'tiny-m0-train'), s, onProgress, signal);
  return tm;
}

const worlds = new Map<number, TinyWorld>();
const worldOf = (seed: number): TinyWorld => {
  let w = worlds.get(seed);
  if (!w) {
    w = makeTinyWorld(seed);
    worlds.set(seed, w);
  }
  return w;
};

/** The built-in world `builtin:tiny`: its data, M0, the oracle and its short templates. */
export const tinyWorld: BuiltinWorld = {
  name: 'tiny',
  data(seed) {
    const { ift, eft, evalPrompts, rankedEval } = worldOf(seed);
    return { ift, eft, evalPrompts, rankedEval };
  },
  baseModel: (seed, onProgress, signal) => tinyBaseModel(seed, worldOf(seed).pretrain, {}, onProgress, signal),
  oracleScore: (instruction, response) => oracleScore(instruction, response).score,
  newPrompts(seed, iteration, count, taken) {
    // None of the world's own splits (training, held-out prompts, held-out ranked sets) is handed out.
    const w = worldOf(seed);
    const all = new Set([...taken, ...w.ift.map((r) => r.instruction), ...w.eft.map((r) => r.instruction), ...w.evalPrompts.map((r) => r.instruction), ...w.rankedEval.map((r) => r.instruction)]);
    return uniqueInstructions(count, new Rng(deriveSeed(seed, 'tiny-world', 'new-prompts', iteration)), all, true);
  },
  understands: (instruction) => parseTask(instruction).ok,
  judgeTemplate: TINY_JUDGE_TEMPLATE,
  selfInstructTemplate: TINY_SELF_INSTRUCT_TEMPLATE,
};
