/**
 * Preference pairs (the paper's step 4): per prompt, the candidate with the highest mean score is
 * chosen and the one with the lowest rejected; a prompt whose candidates all score the same gives
 * no pair. A candidate none of whose judgments parsed has no score and takes no part; one with some
 * parsed judgments is scored by those. Ties within the top (or bottom) score go to the lowest
 * candidate index, so pairs are deterministic.
 *
 * With length control (Meta-Rewarding, Wu et al. 2024) the chosen response is the shortest of the
 * top-scored tier and the rejected the longest of the lowest-scored tier, which counters the drift
 * toward ever longer responses.
 */
import type { CandidateRow, JudgmentRow, PairRow } from '../data/rows';
import { InvalidInputError } from '../errors';

export interface PairSettings {
  /** Keep a pair only when chosen and rejected mean scores differ by at least this (and always by more than 0). */
  minMargin: number;
  lengthControl: boolean;
}

export interface PairStats {
  prompts: number;
  pairs: number;
  /** Prompts whose scored candidates all had the same mean score. */
  tied: number;
  /** Prompts with fewer than two scored candidates. */
  tooFewScored: number;
  /** Pairs whose score gap was below minMargin. */
  belowMargin: number;
  /** Pairs whose chosen and rejected texts were identical. */
  identical: number;
  /** Candidates with no parsed judgment. */
  unscoredCandidates: number;
  /** Candidates scored from only some of their judgments. */
  partlyScoredCandidates: number;
}

export function buildPairs(candidates: CandidateRow[], judgments: JudgmentRow[], s: PairSettings): { pairs: PairRow[]; stats: PairStats } {
  const scores = new Map<string, number[]>();
  const counts = new Map<string, number>();
  const key = (promptId: string, index: number) => `${promptId}\u0000${index}`;
  for (const j of judgments) {
    const k = key(j.promptId, j.candidate);
    counts.set(k, (counts.get(k) ?? 0) + 1);
    if (j.score !== null) scores.set(k, [...(scores.get(k) ?? []), j.score]);
  }
  const byPrompt = new Map<string, CandidateRow[]>();
  for (const c of candidates) byPrompt.set(c.promptId, [...(byPrompt.get(c.promptId) ?? []), c]);

  const stats: PairStats = { prompts: byPrompt.size, pairs: 0, tied: 0, tooFewScored: 0, belowMargin: 0, identical: 0, unscoredCandidates: 0, partlyScoredCandidates: 0 };
  const pairs: PairRow[] = [];
  for (const [promptId, group] of byPrompt) {
    const scored: { c: CandidateRow; mean: number }[] = [];
    for (const c of [...group].sort((a, b) => a.index - b.index)) {
      const k = key(promptId, c.index);
      if (!counts.has(k)) throw new InvalidInputError(`candidate ${c.index} of prompt ${promptId} has no judgments`);
      const list = scores.get(k);
      if (!list) {
        stats.unscoredCandidates++;
        continue;
      }
      if (list.length < counts.get(k)!) stats.partlyScoredCandidates++;
      scored.push({ c, mean: list.reduce((a, b) => a + b, 0) / list.length });
    }
    if (scored.length < 2) {
      stats.tooFewScored++;
      continue;
    }
    const top = Math.max(...scored.map((x) => x.mean));
    const bottom = Math.min(...scored.map((x) => x.mean));
    if (top === bottom) {
      stats.tied++;
      continue;
    }
    if (top - bottom < s.minMargin) {
      stats.belowMargin++;
      continue;
    }
    const topTier = scored.filter((x) => x.mean === top);
    const bottomTier = scored.filter((x) => x.mean === bottom);
    const length = (x: { c: CandidateRow }) => x.c.response.length;
    // Strict comparisons keep the lowest index among equals.
    const chosen = s.lengthControl ? topTier.reduce((a, b) => (length(b) < length(a) ? b : a)) : topTier[0]!;
    const rejected = s.lengthControl ? bottomTier.reduce((a, b) => (length(b) > length(a) ? b : a)) : bottomTier[0]!;
    if (chosen.c.response === rejected.c.response) {
      stats.identical++;
      continue;
    }
    pairs.push({ promptId, instruction: chosen.c.instruction, chosen: chosen.c.response, rejected: rejected.c.response, chosenScore: chosen.mean, rejectedScore: rejected.mean });
  }
  stats.pairs = pairs.length;
  return { pairs, stats };
}
