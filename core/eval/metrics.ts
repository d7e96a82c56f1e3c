/**
 * Evaluation metrics, as pure functions: head-to-head outcomes between two models (each pair judged
 * in both orders, a disagreement counts as a tie) and a judge's scores against reference rankings
 * (the paper's Table 4: pairwise accuracy, 5-best, exact match, Spearman, Kendall τ).
 */
import type { Verdict } from '../data/rows';

/**
 * The outcome of one prompt from the verdicts given with a's response first and with b's first
 * (both already by model, not by position): the verdict when the two agree, otherwise a tie
 * (they disagree, one is a tie, or one is missing).
 */
export function combineOrders(aFirst: Verdict | null, bFirst: Verdict | null): Verdict {
  return aFirst !== null && aFirst === bFirst ? aFirst : 'tie';
}

/** z for a two-sided 95% interval: the 0.975 quantile of the standard normal. */
export const Z95 = 1.959963984540054;

/**
 * The Wilson score interval for a proportion p observed over n trials:
 * (p + z²/2n ± z·√(p(1−p)/n + z²/4n²)) / (1 + z²/n). n = 0 says nothing: [0, 1].
 */
export function wilsonInterval(p: number, n: number, z = Z95): [number, number] {
  if (!(p >= 0 && p <= 1)) throw new Error(`wilsonInterval: p must be in [0, 1], got ${p}`);
  if (!(Number.isInteger(n) && n >= 0)) throw new Error(`wilsonInterval: n must be a non-negative integer, got ${n}`);
  if (!(Number.isFinite(z) && z >= 0)) throw new Error(`wilsonInterval: z must be finite and non-negative, got ${z}`);
  if (n === 0) return [0, 1];
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z / denom) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  // The exact interval holds p and lies in [0, 1]; rounding can miss by an ulp at p = 0 or 1.
  return [Math.max(0, Math.min(p, centre - half)), Math.min(1, Math.max(p, centre + half))];
}

export interface HeadToHeadSummary {
  wins: number;
  ties: number;
  losses: number;
  n: number;
  /** (wins + ties/2) / n, from a's side. */
  winRate: number;
  /** Wilson 95% interval at p = winRate over n prompts. */
  ci95: [number, number];
}

/**
 * Tallies outcomes from a's side. A tie counts as half a win. The interval treats each prompt as a
 * Bernoulli trial with mean winRate; a prompt's score in {0, ½, 1} has variance p(1−p) − ties/4n,
 * so with ties the interval is wider than needed (conservative).
 * An empty list has no win rate: it throws rather than return a made-up 0.5.
 */
export function summarizeHeadToHead(outcomes: Verdict[]): HeadToHeadSummary {
  if (outcomes.length === 0) throw new Error('summarizeHeadToHead: no outcomes, so no win rate');
  let wins = 0;
  let ties = 0;
  let losses = 0;
  for (const [i, o] of outcomes.entries()) {
    if (o === 'a') wins++;
    else if (o === 'b') losses++;
    else if (o === 'tie') ties++;
    else throw new Error(`summarizeHeadToHead: outcome ${i} is ${JSON.stringify(o)}, not 'a', 'b' or 'tie'`);
  }
  const n = outcomes.length;
  const winRate = (wins + ties / 2) / n;
  return { wins, ties, losses, n, winRate, ci95: wilsonInterval(winRate, n) };
}

export interface SampledHeadToHeadSummary extends HeadToHeadSummary {
  /** Prompts compared; `n` counts comparisons (prompts × samples). */
  prompts: number;
  /** Sampled answers per prompt and model (sample j of a against sample j of b). */
  samples: number;
}

/**
 * Tallies sampled-decoding outcomes from a's side: `outcomes` holds `samples` comparisons per prompt,
 * prompt after prompt. The win rate is the mean over all of them (ties ½). The samples of one
 * prompt are not independent, so the interval treats the prompt as the unit: with s_i the mean
 * score of prompt i over its samples and P prompts, winRate ± z·√(Σ(s_i − winRate)² / (P(P − 1))),
 * clipped to [0, 1] (a normal interval on the prompt means, as for clustered data). One prompt
 * says nothing about the spread: [0, 1].
 */
export function summarizeSampledHeadToHead(outcomes: Verdict[], samples: number): SampledHeadToHeadSummary {
  if (!(Number.isInteger(samples) && samples >= 1)) throw new Error(`summarizeSampledHeadToHead: samples must be a positive integer, got ${samples}`);
  if (outcomes.length % samples !== 0) throw new Error(`summarizeSampledHeadToHead: ${outcomes.length} outcomes are not ${samples} per prompt`);
  const { wins, ties, losses, n, winRate } = summarizeHeadToHead(outcomes);
  const prompts = n / samples;
  const score = (o: Verdict) => (o === 'a' ? 1 : o === 'tie' ? 0.5 : 0);
  let ss = 0;
  for (let i = 0; i < prompts; i++) {
    let s = 0;
    for (let j = 0; j < samples; j++) s += score(outcomes[i * samples + j]!);
    ss += (s / samples - winRate) ** 2;
  }
  const half = prompts > 1 ? Z95 * Math.sqrt(ss / (prompts * (prompts - 1))) : Infinity;
  return { wins, ties, losses, n, winRate, ci95: [Math.max(0, winRate - half), Math.min(1, winRate + half)], prompts, samples };
}

/** Ascending order on numbers without subtraction, so ±Infinity compare (and tie) correctly. */
function compare(a: number, b: number): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function checkValues(name: string, values: number[]): void {
  for (const [i, v] of values.entries()) {
    if (typeof v !== 'number' || Number.isNaN(v)) throw new Error(`${name}: value ${i} is ${v}, not a number`);
  }
}

function checkPair(name: string, x: number[], y: number[]): void {
  if (x.length !== y.length) throw new Error(`${name}: x has ${x.length} values, y has ${y.length}`);
  checkValues(name, x);
  checkValues(name, y);
}

/**
 * 1-based ranks in ascending order (the smallest value gets 1); tied values all get the mean of the
 * positions they span. ±Infinity are allowed (they rank last/first); NaN is rejected.
 */
export function averageRanks(values: number[]): number[] {
  checkValues('averageRanks', values);
  const order = values.map((_, i) => i).sort((i, j) => compare(values[i]!, values[j]!));
  const ranks = new Array<number>(values.length);
  let start = 0;
  while (start < order.length) {
    let end = start + 1;
    while (end < order.length && values[order[end]!] === values[order[start]!]) end++;
    // Positions start..end-1 (0-based) are ranks start+1..end; their mean is (start + 1 + end) / 2.
    const rank = (start + 1 + end) / 2;
    for (let k = start; k < end; k++) ranks[order[k]!] = rank;
    start = end;
  }
  return ranks;
}

function pearson(x: number[], y: number[]): number {
  const n = x.length;
  if (n < 2) return NaN;
  const mx = x.reduce((s, v) => s + v, 0) / n;
  const my = y.reduce((s, v) => s + v, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i]! - mx;
    const dy = y[i]! - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx === 0 || syy === 0) return NaN;
  // Rounding can leave |r| a hair above 1.
  return Math.max(-1, Math.min(1, sxy / Math.sqrt(sxx * syy)));
}

/** Spearman's ρ: the Pearson correlation of average ranks. NaN when either side is constant (or n < 2). */
export function spearman(x: number[], y: number[]): number {
  checkPair('spearman', x, y);
  return pearson(averageRanks(x), averageRanks(y));
}

/**
 * Kendall's τ-b: (C − D) / √((C + D + Tx)(C + D + Ty)) over all pairs, where C and D count
 * concordant and discordant pairs and Tx (Ty) pairs tied in x only (y only). Pairs tied in both
 * count nowhere. NaN when the denominator is 0 (either side constant, or n < 2).
 */
export function kendallTauB(x: number[], y: number[]): number {
  checkPair('kendallTauB', x, y);
  let concordant = 0;
  let discordant = 0;
  let tiedXOnly = 0;
  let tiedYOnly = 0;
  for (let i = 0; i < x.length; i++) {
    for (let j = i + 1; j < x.length; j++) {
      const sx = compare(x[i]!, x[j]!);
      const sy = compare(y[i]!, y[j]!);
      if (sx === 0 && sy === 0) continue;
      if (sx === 0) tiedXOnly++;
      else if (sy === 0) tiedYOnly++;
      else if (sx === sy) concordant++;
      else discordant++;
    }
  }
  const denom = Math.sqrt((concordant + discordant + tiedXOnly) * (concordant + discordant + tiedYOnly));
  return denom === 0 ? NaN : (concordant - discordant) / denom;
}

/** One reference-ranked set: human ranks (0 = best, equal = tie) and the judge's score per reply (null: no valid score). */
export interface RankedScores {
  humanRanks: number[];
  modelScores: (number | null)[];
}

export interface RewardModelMetrics {
  /** Number of sets. */
  sets: number;
  /** Reply pairs, over all sets, whose human ranks differ. */
  pairs: number;
  /** Of those pairs, the fraction the judge orders the same way strictly (pooled over all sets). */
  pairwiseAccuracy: number;
  /** Of those pairs, the fraction the judge scores equal. */
  pairwiseTies: number;
  /** Fraction of sets where some human-best reply scored ≥ 4.5. */
  fiveBest: number;
  /** Fraction of sets where every pair is ordered (or tied) by the judge exactly as by the humans. */
  exactMatch: number;
  /** Mean per-set Spearman ρ between −rank and score, over the sets where it is defined. */
  spearman: number;
  spearmanSets: number;
  /** Mean per-set Kendall τ-b between −rank and score, over the sets where it is defined. */
  kendall: number;
  kendallSets: number;
  /** Replies with a null score, over all sets. */
  unscored: number;
}

/** A score at or above this counts as the judge giving 5 points (a mean of k judgments may be fractional). */
export const FIVE_BEST_THRESHOLD = 4.5;

/** Judge order of two nullable scores: +1 if a is better, −1 if b is, 0 if equal; null is below any score. */
function compareScores(a: number | null, b: number | null): number {
  if (a === null || b === null) return a === b ? 0 : a === null ? -1 : 1;
  return compare(a, b);
}

function mean(values: number[]): number {
  return values.length === 0 ? NaN : values.reduce((s, v) => s + v, 0) / values.length;
}

/**
 * A judge's scores against reference rankings. Human rank 0 is best; a higher score is better; a
 * null score ranks below every score and ties with other nulls. Fractions over nothing are NaN, and
 * so is every fraction when the judge scored no reply at all (a model that cannot judge yet).
 * Throws on no sets, or on a set whose lengths differ or are under 2, naming the set.
 */
export function rewardModelMetrics(sets: RankedScores[]): RewardModelMetrics {
  if (sets.length === 0) throw new Error('rewardModelMetrics: no sets');
  let pairs = 0;
  let agree = 0;
  let modelTies = 0;
  let fiveBest = 0;
  let exact = 0;
  let unscored = 0;
  const rhos: number[] = [];
  const taus: number[] = [];
  for (const [s, { humanRanks, modelScores }] of sets.entries()) {
    if (humanRanks.length !== modelScores.length) {
      throw new Error(`rewardModelMetrics: set ${s} has ${humanRanks.length} human ranks but ${modelScores.length} model scores`);
    }
    if (humanRanks.length < 2) throw new Error(`rewardModelMetrics: set ${s} has ${humanRanks.length} replies; at least 2 are needed`);
    for (const [i, r] of humanRanks.entries()) {
      if (!(Number.isInteger(r) && r >= 0)) throw new Error(`rewardModelMetrics: set ${s} human rank ${i} is ${r}, not a non-negative integer`);
    }
    for (const [i, v] of modelScores.entries()) {
      if (v !== null && !Number.isFinite(v)) throw new Error(`rewardModelMetrics: set ${s} model score ${i} is ${v}, not a finite number or null`);
    }

    let allMatch = true;
    for (let i = 0; i < humanRanks.length; i++) {
      for (let j = i + 1; j < humanRanks.length; j++) {
        const human = compare(humanRanks[j]!, humanRanks[i]!); // +1: i ranked better (lower rank)
        const model = compareScores(modelScores[i]!, modelScores[j]!); // +1: i scored better
        if (human !== model) allMatch = false;
        if (human === 0) continue;
        pairs++;
        if (model === 0) modelTies++;
        else if (model === human) agree++;
      }
    }
    if (allMatch) exact++;

    const best = humanRanks.reduce((m, r) => Math.min(m, r));
    if (humanRanks.some((r, i) => r === best && (modelScores[i] ?? -Infinity) >= FIVE_BEST_THRESHOLD)) fiveBest++;

    unscored += modelScores.filter((v) => v === null).length;
    const goodness = humanRanks.map((r) => -r);
    const scores = modelScores.map((v) => v ?? -Infinity);
    const rho = spearman(goodness, scores);
    const tau = kendallTauB(goodness, scores);
    if (!Number.isNaN(rho)) rhos.push(rho);
    if (!Number.isNaN(tau)) taus.push(tau);
  }
  // A judge that scored no reply at all (every reply unparsed) was not measured, not 0% right.
  const none = unscored === sets.reduce((n, x) => n + x.modelScores.length, 0);
  return {
    sets: sets.length,
    pairs,
    pairwiseAccuracy: pairs === 0 || none ? NaN : agree / pairs,
    pairwiseTies: pairs === 0 || none ? NaN : modelTies / pairs,
    fiveBest: none ? NaN : fiveBest / sets.length,
    exactMatch: none ? NaN : exact / sets.length,
    spearman: mean(rhos),
    spearmanSets: rhos.length,
    kendall: mean(taus),
    kendallSets: taus.length,
    unscored,
  };
}
