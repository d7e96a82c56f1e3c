/**
 * Diagnostics that read a run with an oracle (a built-in world's programmatic judge), for the
 * report only: nothing here feeds back into the loop.
 *
 * - How the self-chosen preference pairs look to the oracle: the chosen response better (agree),
 *   equal (tie) or worse (reversed).
 * - The judge's accuracy on the model's own candidates ("on-policy"): over pairs of candidates of
 *   one prompt whose oracle scores differ, the share the judge's mean scores order the same way
 *   strictly — the held-out ranked sets' pairwise accuracy (metrics.ts), with the oracle's scores as
 *   the reference ranking and each prompt's candidates as a set.
 */
import type { CandidateRow, JudgmentRow, PairRow } from '../data/rows';
import { rewardModelMetrics } from './metrics';

export interface PairOracleCounts {
  pairs: number;
  /** The oracle scores the chosen response above the rejected one. */
  agree: number;
  tie: number;
  /** The oracle scores the rejected response above the chosen one. */
  reversed: number;
}

/** Tallies pairs by the oracle's verdict on chosen vs rejected. */
export function pairOracleCounts(pairs: Pick<PairRow, 'instruction' | 'chosen' | 'rejected'>[], oracle: (instruction: string, response: string) => number): PairOracleCounts {
  const out: PairOracleCounts = { pairs: pairs.length, agree: 0, tie: 0, reversed: 0 };
  for (const p of pairs) {
    const d = oracle(p.instruction, p.chosen) - oracle(p.instruction, p.rejected);
    if (d > 0) out.agree++;
    else if (d < 0) out.reversed++;
    else out.tie++;
  }
  return out;
}

/** Mean parsed score per candidate (`promptId`, index); null where no judgment parsed. */
export function meanJudgeScores(judgments: JudgmentRow[]): Map<string, number | null> {
  const sums = new Map<string, { sum: number; n: number }>();
  for (const j of judgments) {
    const k = candidateKey(j.promptId, j.candidate);
    const s = sums.get(k) ?? { sum: 0, n: 0 };
    if (j.score !== null) {
      s.sum += j.score;
      s.n++;
    }
    sums.set(k, s);
  }
  return new Map([...sums].map(([k, s]) => [k, s.n > 0 ? s.sum / s.n : null]));
}

export const candidateKey = (promptId: string, index: number) => `${promptId}\u0000${index}`;

export interface OnPolicyAccuracy {
  /** Prompts with at least two candidates whose oracle scores differ. */
  prompts: number;
  /** Candidate pairs of one prompt whose oracle scores differ. */
  pairs: number;
  /** Of those, the share the judge orders the same way strictly (NaN with no pairs). */
  accuracy: number;
  /** Of those, the share the judge scores equal. */
  ties: number;
  /** Mean oracle score of the candidates. */
  candidateOracleMean: number;
}

/**
 * The judge's pairwise accuracy on candidates against the oracle. A candidate with no parsed
 * judgment ranks below every scored one (as in rewardModelMetrics).
 */
export function onPolicyAccuracy(candidates: CandidateRow[], judgeScores: Map<string, number | null>, oracle: (instruction: string, response: string) => number): OnPolicyAccuracy {
  const byPrompt = new Map<string, CandidateRow[]>();
  for (const c of candidates) byPrompt.set(c.promptId, [...(byPrompt.get(c.promptId) ?? []), c]);
  const sets: { humanRanks: number[]; modelScores: (number | null)[] }[] = [];
  let total = 0;
  for (const group of byPrompt.values()) {
    const scores = group.map((c) => oracle(c.instruction, c.response));
    total += scores.reduce((a, b) => a + b, 0);
    if (group.length < 2 || new Set(scores).size < 2) continue;
    const best = Math.max(...scores);
    sets.push({ humanRanks: scores.map((s) => best - s), modelScores: group.map((c) => judgeScores.get(candidateKey(c.promptId, c.index)) ?? null) });
  }
  const candidateOracleMean = candidates.length ? total / candidates.length : NaN;
  if (sets.length === 0) return { prompts: 0, pairs: 0, accuracy: NaN, ties: NaN, candidateOracleMean };
  const m = rewardModelMetrics(sets);
  return { prompts: sets.length, pairs: m.pairs, accuracy: m.pairwiseAccuracy, ties: m.pairwiseTies, candidateOracleMean };
}
