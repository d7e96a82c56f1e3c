/**
 * Head-to-head evaluation (the paper's AlpacaEval-style comparison) and reward-model evaluation,
 * with a pluggable judge:
 *
 * - a pointwise judge scores one response at a time (a programmatic oracle, or a model with the
 *   additive rubric, k samples averaged); the better score wins. It never sees the other response,
 *   so the order of presentation cannot sway it: both orders give the same verdict by construction.
 * - a pairwise judge sees both responses and is asked twice, once with each response first; when
 *   the two verdicts disagree the prompt is a tie.
 */
import type { HeadToHeadRow, PromptRow, RankedSetRow, Verdict } from '../data/rows';
import { InvalidInputError } from '../errors';
import { judgeCandidates, type JudgingSettings } from '../method/judging';
import { complete, type TextModel } from '../method/text-model';
import { deriveSeed } from '../random';
import { combineOrders, rewardModelMetrics, summarizeHeadToHead, summarizeSampledHeadToHead, type HeadToHeadSummary, type RewardModelMetrics, type SampledHeadToHeadSummary } from './metrics';

export interface Scored {
  instruction: string;
  response: string;
}

export interface PointwiseJudge {
  kind: 'pointwise';
  name: string;
  /** A score per response (higher is better), null where the judge gave none. */
  score(items: Scored[], onProgress?: (done: number, total: number) => void | Promise<void>): Promise<(number | null)[]>;
}

/** A programmatic judge (a world's oracle) as a pointwise judge named `oracle`. */
export function oracleJudgeFrom(score: (instruction: string, response: string) => number): PointwiseJudge {
  return {
    kind: 'pointwise',
    name: 'oracle',
    async score(items, onProgress) {
      const scores = items.map((it) => score(it.instruction, it.response));
      await onProgress?.(items.length, items.length);
      return scores;
    },
  };
}

export interface PairwiseJudge {
  kind: 'pairwise';
  name: string;
  /** Which shown response is better, per item: `first`, `second`, `tie`, or null where the judge gave no verdict. */
  compare(items: { instruction: string; first: string; second: string }[]): Promise<('first' | 'second' | 'tie' | null)[]>;
}

export type Judge = PointwiseJudge | PairwiseJudge;

/** A model judging with the additive rubric: k sampled judgments per response, mean of the parsed scores. */
export function modelJudge(tm: TextModel, name: string, s: JudgingSettings, seed: number): PointwiseJudge {
  return {
    kind: 'pointwise',
    name,
    async score(items, onProgress) {
      // The seed follows the content: identical (instruction, response) items get identical judgments.
      const candidates = items.map((it) => ({ promptId: `item-${deriveSeed(seed, it.instruction, it.response)}`, instruction: it.instruction, index: 0, response: it.response, finishReason: 'eos' as const, tokens: 0 }));
      const { judgments } = await judgeCandidates(tm, candidates, s, seed, onProgress);
      return items.map((_, i) => {
        const parsed = judgments.slice(i * s.samples, (i + 1) * s.samples).flatMap((j) => (j.score === null ? [] : [j.score]));
        return parsed.length ? parsed.reduce((x, y) => x + y, 0) / parsed.length : null;
      });
    },
  };
}

/** Greedy responses of a model to prompts (evaluation decoding). */
export async function respond(tm: TextModel, prompts: Pick<PromptRow, 'instruction'>[], maxNewTokens: number, onProgress?: (done: number, total: number) => void | Promise<void>): Promise<string[]> {
  const out = await complete(tm, prompts.map((p) => ({ prompt: tm.template.format(p.instruction), seed: 0 })), { maxNewTokens, greedy: true, batchSize: 32 }, onProgress);
  return out.map((c) => c.text.trim());
}

/** How the sampled head-to-head draws its answers: `samples` per prompt, seeded per model. */
export interface EvalSampling {
  samples: number;
  temperature: number;
  topP: number;
  topK: number;
  maxNewTokens: number;
}

/**
 * `samples` sampled responses per prompt (evaluation with sampled decoding), prompt after prompt.
 * Sample j of a prompt has its own seed from (seed, prompt id, j), so another model given the same
 * seed draws with the same random numbers (common random numbers: the comparison is sharper).
 */
export async function respondSampled(
  tm: TextModel,
  prompts: Pick<PromptRow, 'id' | 'instruction'>[],
  s: EvalSampling,
  seed: number,
  onProgress?: (done: number, total: number) => void | Promise<void>,
): Promise<string[][]> {
  const requests = prompts.flatMap((p) => Array.from({ length: s.samples }, (_, j) => ({ prompt: tm.template.format(p.instruction), seed: deriveSeed(seed, 'eval-sample', p.id, j) })));
  const out = await complete(tm, requests, { maxNewTokens: s.maxNewTokens, temperature: s.temperature, topP: s.topP, topK: s.topK, batchSize: 32 }, onProgress);
  return prompts.map((_, i) => out.slice(i * s.samples, (i + 1) * s.samples).map((c) => c.text.trim()));
}

const fromScores = (a: number | null, b: number | null): Verdict | null => (a === null || b === null ? null : a > b ? 'a' : b > a ? 'b' : 'tie');

export interface HeadToHeadResult {
  rows: HeadToHeadRow[];
  summary: HeadToHeadSummary & { a: string; b: string; judge: string };
}

/** Compares model a's and model b's responses to the same prompts; the summary is from a's side. */
export async function headToHead(
  prompts: Pick<PromptRow, 'id' | 'instruction'>[],
  a: { name: string; responses: string[] },
  b: { name: string; responses: string[] },
  judge: Judge,
): Promise<HeadToHeadResult> {
  if (a.responses.length !== prompts.length || b.responses.length !== prompts.length) {
    throw new InvalidInputError(`head-to-head needs one response per prompt from each model (${prompts.length} prompts, ${a.responses.length} and ${b.responses.length} responses)`);
  }
  let aFirst: (Verdict | null)[];
  let bFirst: (Verdict | null)[];
  if (judge.kind === 'pointwise') {
    const scores = await judge.score([...prompts.map((p, i) => ({ instruction: p.instruction, response: a.responses[i]! })), ...prompts.map((p, i) => ({ instruction: p.instruction, response: b.responses[i]! }))]);
    aFirst = prompts.map((_, i) => fromScores(scores[i]!, scores[prompts.length + i]!));
    bFirst = aFirst;
  } else {
    const asVerdict = (v: 'first' | 'second' | 'tie' | null, firstIs: 'a' | 'b'): Verdict | null => (v === null ? null : v === 'tie' ? 'tie' : (v === 'first') === (firstIs === 'a') ? 'a' : 'b');
    const one = await judge.compare(prompts.map((p, i) => ({ instruction: p.instruction, first: a.responses[i]!, second: b.responses[i]! })));
    const two = await judge.compare(prompts.map((p, i) => ({ instruction: p.instruction, first: b.responses[i]!, second: a.responses[i]! })));
    aFirst = one.map((v) => asVerdict(v, 'a'));
    bFirst = two.map((v) => asVerdict(v, 'b'));
  }
  const rows: HeadToHeadRow[] = prompts.map((p, i) => ({
    promptId: p.id,
    instruction: p.instruction,
    a: a.name,
    b: b.name,
    responseA: a.responses[i]!,
    responseB: b.responses[i]!,
    judge: judge.name,
    aFirst: aFirst[i]!,
    bFirst: bFirst[i]!,
    outcome: combineOrders(aFirst[i]!, bFirst[i]!),
  }));
  return { rows, summary: { a: a.name, b: b.name, judge: judge.name, ...summarizeHeadToHead(rows.map((r) => r.outcome)) } };
}

/**
 * a vs b with sampled decoding: sample j of a against sample j of b on every prompt (each pair
 * judged as in `headToHead`); the summary counts every comparison and puts its interval on the
 * prompts (`summarizeSampledHeadToHead`). Rows are per comparison, promptId `<id>#<j>`.
 */
export async function sampledHeadToHead(
  prompts: Pick<PromptRow, 'id' | 'instruction'>[],
  a: { name: string; samples: string[][] },
  b: { name: string; samples: string[][] },
  judge: Judge,
): Promise<{ rows: HeadToHeadRow[]; summary: SampledHeadToHeadSummary & { a: string; b: string; judge: string } }> {
  const k = a.samples[0]?.length ?? 0;
  const shaped = (x: string[][]) => x.length === prompts.length && x.every((r) => r.length === k);
  if (k === 0 || !shaped(a.samples) || !shaped(b.samples)) {
    throw new InvalidInputError(`sampled head-to-head needs the same number of samples for every prompt from each model (${prompts.length} prompts; ${a.samples.length} and ${b.samples.length} sample lists)`);
  }
  const expanded = prompts.flatMap((p) => Array.from({ length: k }, (_, j) => ({ id: `${p.id}#${j}`, instruction: p.instruction })));
  const { rows, summary } = await headToHead(expanded, { name: a.name, responses: a.samples.flat() }, { name: b.name, responses: b.samples.flat() }, judge);
  return { rows, summary: { a: summary.a, b: summary.b, judge: summary.judge, ...summarizeSampledHeadToHead(rows.map((r) => r.outcome), k) } };
}

/** A judge's scores on ranked sets against the reference ranks (the paper's Table 4 metrics). */
export async function evaluateJudge(judge: PointwiseJudge, sets: RankedSetRow[]): Promise<RewardModelMetrics> {
  const items = sets.flatMap((s) => s.responses.map((r) => ({ instruction: s.instruction, response: r.text })));
  const scores = await judge.score(items);
  let at = 0;
  return rewardModelMetrics(
    sets.map((s) => {
      const modelScores = scores.slice(at, at + s.responses.length);
      at += s.responses.length;
      return { humanRanks: s.responses.map((r) => r.rank), modelScores };
    }),
  );
}
