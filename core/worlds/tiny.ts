/**
 * The built-in "tiny" task world: seed data for the whole self-rewarding loop, generated from a
 * seed, with a programmatic oracle (tiny-oracle.ts) to score what the model writes. Tasks and
 * their reader are in tiny-tasks.ts.
 *
 * - ift: instructions with their correct answers.
 * - eft: judge training rows — responses of every quality (corrupted answers), each with the
 *   oracle's justification and `Score: N`, equally many per score 0..5.
 * - evalPrompts, rankedEval: held-out instructions (in no other split) for head-to-head and for
 *   the judge's pairwise accuracy; each ranked set has 4 responses ranked by the oracle.
 * - pretrain: M0's text, without any answer: self-instruct pages (the few-shot template filled
 *   with task lines, so M0 can write new tasks) and plain sentences of the task language.
 */
import { z } from 'zod';
import type { EftRow, IftRow, PromptRow, RankedSetRow } from '../data/rows';
import { ModelConfig } from '../model/config';
import { selfInstructPrompt } from '../method/prompts';
import { deriveSeed, Rng } from '../random';
import { oracleJudgment, scoreTask, type OracleVerdict } from './tiny-oracle';
import { FAMILIES, parseTask, randomInstruction, WORDS, type Task } from './tiny-tasks';

export * from './tiny-tasks';
export * from './tiny-oracle';

/**
 * A short judge template for the tiny world: the additive rubric's structure (five cumulative
 * criteria, a brief justification, a final `Score: N`) in about 160 characters instead of ~1,100,
 * so a judge prompt fits a small model's positions and costs a fifth of the compute.
 */
export const TINY_JUDGE_TEMPLATE = `Score the response. Add a point for each: relevant, half done, all items, correct, nothing extra.
Task: {instruction}
Response: {response}
Justify briefly, then end with Score: N.`;

export const TinyWorldSizes = z.strictObject({
  ift: z.number().int().positive().default(500),
  eft: z.number().int().positive().default(480),
  eval: z.number().int().positive().default(100),
  ranked: z.number().int().positive().default(50),
  /** Self-instruct pages in the pretraining text. */
  pretrainPages: z.number().int().nonnegative().default(240),
  /** Task lines per self-instruct page. */
  tasksPerPage: z.number().int().positive().default(8),
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

/** Llama-style, for the byte tokenizer, sized for 2 CPU cores (~0.1M parameters). */
export function tinyModelConfig(): ModelConfig {
  return ModelConfig.parse({
    family: 'llama',
    vocabSize: 259,
    hiddenSize: 64,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 4,
    headDim: 16,
    intermediateSize: 176,
    maxPositions: 512,
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

const PREFIXES = ['The answer is', 'Sure:', 'Here it is:', 'Answer:', 'Done:'];

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
      return join(rng.int(3) === 0 ? rng.shuffle(kept) : kept);
    }
    case 1: {
      if (task.family === 'count') return rng.int(3) === 0 ? join(task.items) : String(other([count - 1, count, count + 1]));
      if (task.family === 'uppercase' && rng.int(2) === 0) return join(task.items);
      const keep = Math.max(1, Math.ceil(e.length / 2) - 1);
      const kept = rng.shuffle([...e]).slice(0, 1 + rng.int(keep));
      return join(rng.int(2) === 0 ? kept : [...kept, ...strangers(task, rng, 1 + rng.int(2))]);
    }
    default:
      switch (rng.int(3)) {
        case 0:
          return join(strangers(task, rng, 1 + rng.int(3)));
        case 1:
          return pick(rng, ['I do not know.', 'No.', 'Maybe later.', 'That is a good question.']);
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

/** Unique instructions, cycling through the families, none of which is in `taken`. */
function uniqueInstructions(n: number, rng: Rng, taken: Set<string>): string[] {
  const out: string[] = [];
  let attempts = 0;
  while (out.length < n) {
    if (++attempts > n * 100) throw new Error(`tiny world: could not find ${n} new instructions`);
    const text = randomInstruction(FAMILIES[out.length % FAMILIES.length]!, rng);
    if (taken.has(text)) continue;
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

function sentence(rng: Rng): string {
  const w = () => pick(rng, WORDS);
  const forms = [
    () => `the ${w()} and the ${w()} are by the ${w()}.`,
    () => `a ${w()} sees a ${w()}.`,
    () => `my ${w()} is near your ${w()}.`,
    () => `we have ${1 + rng.int(9)} ${w()} and ${1 + rng.int(9)} ${w()}.`,
    () => `the ${w()} likes the ${w()} more than the ${w()}.`,
  ];
  return pick(rng, forms)();
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

  const ift: IftRow[] = iftInstructions.map((instruction, i) => ({ id: `tiny-ift-${i}`, instruction, response: taskOf(instruction).expected.join(' ') }));

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
  const pages = Array.from({ length: s.pretrainPages }, () => selfInstructPrompt(preRng.shuffle([...trainInstructions]).slice(0, s.tasksPerPage)).replace(/\nTask:$/, ''));
  const prose = Array.from({ length: s.pretrainSentences }, () => Array.from({ length: 3 }, () => sentence(preRng)).join(' '));
  const pretrain = preRng.shuffle([...pages, ...prose]);

  return { ift, eft, evalPrompts, rankedEval, pretrain };
}
