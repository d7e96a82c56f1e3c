import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Verdict } from '../../core/data/rows';
import { averageRanks, combineOrders, kendallTauB, rewardModelMetrics, spearman, summarizeHeadToHead, summarizeSampledHeadToHead, wilsonInterval } from '../../core/eval/metrics';

const close = (actual: number, expected: number, tol = 1e-9, what = '') =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what} expected ${expected}, got ${actual}`);

describe('combineOrders', () => {
  it('keeps a verdict only when both orders give it; everything else is a tie (all 16 combinations)', () => {
    const V: (Verdict | null)[] = ['a', 'b', 'tie', null];
    // Rows: aFirst; columns: bFirst in the order a, b, tie, null.
    const expected: Record<string, Verdict[]> = {
      a: ['a', 'tie', 'tie', 'tie'],
      b: ['tie', 'b', 'tie', 'tie'],
      tie: ['tie', 'tie', 'tie', 'tie'],
      null: ['tie', 'tie', 'tie', 'tie'],
    };
    let checked = 0;
    for (const aFirst of V) {
      for (const [j, bFirst] of V.entries()) {
        assert.equal(combineOrders(aFirst, bFirst), expected[String(aFirst)]![j], `aFirst=${aFirst} bFirst=${bFirst}`);
        checked++;
      }
    }
    assert.equal(checked, 16);
  });
});

describe('wilsonInterval', () => {
  it('matches the formula worked by hand for p = 0.7, n = 10', () => {
    // z² = 3.841458820694125; 1 + z²/n = 1.3841458820694125
    // centre = (0.7 + z²/20) / 1.38414588… = 0.8920729410347063 / 1.38414588… = 0.6444934400274222
    // p(1−p)/n + z²/(4n²) = 0.021 + 0.009603647051735313 = 0.030603647051735313; √ = 0.1749389809383126
    // half = z · 0.17493898… / 1.38414588… = 0.2477152925662768
    // [0.6444934400274222 − 0.2477152925662768, 0.6444934400274222 + 0.2477152925662768]
    // (scipy binomtest(7, 10).proportion_ci(method='wilson') agrees: 0.39677814746114526, 0.892208732593699)
    const [lo, hi] = wilsonInterval(0.7, 10);
    close(lo, 0.3967781474611454, 1e-12, 'lo');
    close(hi, 0.892208732593699, 1e-12, 'hi');
  });

  it('p = 0 and p = 1: one endpoint is exact, the other (z²/n)/(1 + z²/n)', () => {
    // n = 10: 0.3841458820694125 / 1.3841458820694125 = 0.2775327998628893
    const [lo0, hi0] = wilsonInterval(0, 10);
    assert.equal(lo0, 0);
    close(hi0, 0.2775327998628893, 1e-12, 'hi at p = 0');
    const [lo1, hi1] = wilsonInterval(1, 10);
    close(lo1, 1 - 0.2775327998628893, 1e-12, 'lo at p = 1');
    assert.equal(hi1, 1);
  });

  it('n = 0 gives [0, 1]; a smaller z narrows the interval; bad input throws', () => {
    assert.deepEqual(wilsonInterval(0.5, 0), [0, 1]);
    // z = 0: no width, centre = p.
    assert.deepEqual(wilsonInterval(0.3, 20, 0), [0.3, 0.3]);
    assert.throws(() => wilsonInterval(1.2, 10), /p must be in \[0, 1\]/);
    assert.throws(() => wilsonInterval(NaN, 10), /p must be in \[0, 1\]/);
    assert.throws(() => wilsonInterval(0.5, -1), /n must be a non-negative integer/);
    assert.throws(() => wilsonInterval(0.5, 2.5), /n must be a non-negative integer/);
  });
});

describe('summarizeHeadToHead', () => {
  it('counts ties as half a win, with the Wilson interval at the win rate', () => {
    // 6 wins, 2 ties, 2 losses: (6 + 2/2) / 10 = 0.7, interval as worked above.
    const outcomes: Verdict[] = ['a', 'tie', 'a', 'b', 'a', 'a', 'tie', 'b', 'a', 'a'];
    const s = summarizeHeadToHead(outcomes);
    assert.equal(s.wins, 6);
    assert.equal(s.ties, 2);
    assert.equal(s.losses, 2);
    assert.equal(s.n, 10);
    close(s.winRate, 0.7, 1e-12, 'winRate');
    close(s.ci95[0], 0.3967781474611454, 1e-12, 'lo');
    close(s.ci95[1], 0.892208732593699, 1e-12, 'hi');
  });

  it('all ties is exactly even; all losses is 0', () => {
    const even = summarizeHeadToHead(['tie', 'tie', 'tie', 'tie']);
    assert.equal(even.winRate, 0.5);
    // p = 0.5 is the centre of a symmetric interval.
    close(even.ci95[0] + even.ci95[1], 1, 1e-12, 'symmetry');
    const lost = summarizeHeadToHead(['b', 'b', 'b', 'b', 'b', 'b', 'b', 'b', 'b', 'b']);
    assert.equal(lost.winRate, 0);
    assert.equal(lost.ci95[0], 0);
    close(lost.ci95[1], 0.2775327998628893, 1e-12, 'hi');
  });

  it('throws on no outcomes and on a value that is not a verdict', () => {
    assert.throws(() => summarizeHeadToHead([]), /no outcomes/);
    assert.throws(() => summarizeHeadToHead(['a', 'x' as Verdict]), /outcome 1 is "x"/);
  });
});

describe('summarizeSampledHeadToHead', () => {
  it('counts every comparison and puts the interval on the prompts, worked by hand', () => {
    // Two samples per prompt. Prompt means: (1 + 1)/2 = 1, (1 + 0)/2 = 0.5, (½ + 0)/2 = 0.25, 0.
    const outcomes: Verdict[] = ['a', 'a', 'a', 'b', 'tie', 'b', 'b', 'b'];
    const s = summarizeSampledHeadToHead(outcomes, 2);
    assert.deepEqual([s.wins, s.ties, s.losses, s.n, s.prompts, s.samples], [3, 1, 4, 8, 4, 2]);
    // (3 + ½) / 8 = 0.4375 = mean of the prompt means.
    close(s.winRate, 0.4375, 1e-12, 'winRate');
    // Σ(s_i − 0.4375)² = 0.31640625 + 0.00390625 + 0.03515625 + 0.19140625 = 0.546875;
    // half-width 1.959963984540054 · √(0.546875 / (4 · 3)) = 0.41840946776324863.
    close(s.ci95[0], 0.01909053223675139, 1e-12, 'lo');
    close(s.ci95[1], 0.8559094677632486, 1e-12, 'hi');
  });

  it('gives no spread where every prompt scores the same, clips to [0, 1], and knows nothing from one prompt', () => {
    const same = summarizeSampledHeadToHead(['a', 'b', 'b', 'a', 'tie', 'tie'], 2);
    assert.equal(same.winRate, 0.5);
    assert.deepEqual(same.ci95, [0.5, 0.5]);
    const won = summarizeSampledHeadToHead(['a', 'a', 'a', 'tie'], 2);
    assert.equal(won.ci95[1], 1);
    assert.deepEqual(summarizeSampledHeadToHead(['a', 'b', 'a'], 3).ci95, [0, 1]);
  });

  it('throws on a count that is not whole prompts, and on a bad sample count', () => {
    assert.throws(() => summarizeSampledHeadToHead(['a', 'b', 'a'], 2), /3 outcomes are not 2 per prompt/);
    assert.throws(() => summarizeSampledHeadToHead(['a'], 0), /samples must be a positive integer/);
    assert.throws(() => summarizeSampledHeadToHead([], 2), /no outcomes/);
  });
});

describe('averageRanks', () => {
  it('gives ties the mean of their 1-based positions', () => {
    // Sorted: 10,10 → positions 1,2 → 1.5; 20,20,20 → 3,4,5 → 4; 30 → 6.
    assert.deepEqual(averageRanks([10, 20, 10, 30, 20, 20]), [1.5, 4, 1.5, 6, 4, 4]);
    assert.deepEqual(averageRanks([3, 1, 2]), [3, 1, 2]);
    assert.deepEqual(averageRanks([7, 7, 7]), [2, 2, 2]);
    assert.deepEqual(averageRanks([]), []);
  });

  it('ranks -Infinity first and ties infinities together; rejects NaN', () => {
    // -∞,-∞ → 1,2 → 1.5; 0 → 3; 3 → 4.
    assert.deepEqual(averageRanks([3, -Infinity, -Infinity, 0]), [4, 1.5, 1.5, 3]);
    assert.throws(() => averageRanks([1, NaN]), /value 1 is NaN/);
  });
});

describe('spearman and kendallTauB', () => {
  it('without ties', () => {
    const x = [1, 2, 3, 4, 5];
    const y = [2, 1, 4, 3, 5];
    // d = [-1, 1, -1, 1, 0], Σd² = 4: ρ = 1 − 6·4 / (5·24) = 0.8
    close(spearman(x, y), 0.8);
    // 10 pairs, discordant (1,2) and (3,4): τ = (8 − 2) / 10 = 0.6
    close(kendallTauB(x, y), 0.6);
    close(spearman(x, [...x].reverse()), -1);
    close(kendallTauB(x, [...x].reverse()), -1);
  });

  it('with ties on both sides, concordant only', () => {
    const x = [1, 2, 2, 3];
    const y = [1, 3, 2, 3];
    // ranks x = [1, 2.5, 2.5, 4], y = [1, 3.5, 2, 3.5]; means 2.5
    // dx = [-1.5, 0, 0, 1.5], dy = [-1.5, 1, -0.5, 1]: Sxy = 3.75, Sxx = 4.5, Syy = 4.5 → ρ = 3.75/4.5 = 5/6
    close(spearman(x, y), 5 / 6);
    // C = 4, D = 0, tied in x only: (1,2); in y only: (1,3) → τb = 4 / √(5·5) = 0.8
    close(kendallTauB(x, y), 0.8);
  });

  it('with ties and discordant pairs', () => {
    const x = [1, 1, 2, 3, 4];
    const y = [3, 1, 2, 2, 5];
    // ranks x = [1.5, 1.5, 3, 4, 5], y = [4, 1, 2.5, 2.5, 5]; means 3
    // dx = [-1.5, -1.5, 0, 1, 2], dy = [1, -2, -0.5, -0.5, 2]
    // Sxy = -1.5 + 3 + 0 − 0.5 + 4 = 5, Sxx = Syy = 9.5 → ρ = 5/9.5 = 10/19
    close(spearman(x, y), 0.5263157894736842);
    // C = 6, D = 2 ((0,2), (0,3)), Tx = 1 ((0,1)), Ty = 1 ((2,3)) → τb = 4 / √(9·9) = 4/9
    close(kendallTauB(x, y), 0.4444444444444444);
    // Symmetric in its arguments.
    close(spearman(y, x), 10 / 19);
    close(kendallTauB(y, x), 4 / 9);
  });

  it('NaN when a side is constant or there are fewer than 2 values; throws on a length mismatch', () => {
    assert.ok(Number.isNaN(spearman([1, 2, 3], [4, 4, 4])));
    assert.ok(Number.isNaN(kendallTauB([1, 2, 3], [4, 4, 4])));
    assert.ok(Number.isNaN(spearman([5, 5], [5, 5])));
    assert.ok(Number.isNaN(kendallTauB([1], [2])));
    assert.ok(Number.isNaN(spearman([], [])));
    assert.throws(() => spearman([1, 2], [1]), /x has 2 values, y has 1/);
    assert.throws(() => kendallTauB([1], [1, 2]), /x has 1 values, y has 2/);
  });
});

describe('rewardModelMetrics', () => {
  // Human rank 0 is best; higher score is better; null ranks below every score.
  const perfect = { humanRanks: [0, 1, 2], modelScores: [5, 3, 1] };
  const reversed = { humanRanks: [0, 1, 2], modelScores: [1, 2, 4] };
  // Human tie between replies 0 and 1; model tie between 1 and 2; reply 3 unscored.
  const mixed = { humanRanks: [0, 0, 1, 2], modelScores: [4.5, 3, 3, null] };
  // The judge gives every reply the same score: correlations undefined.
  const flat = { humanRanks: [1, 0, 1], modelScores: [2, 2, 2] };
  // Two unscored replies tie, as the humans tie them; the best is scored: an exact match.
  const nulls = { humanRanks: [1, 0, 1], modelScores: [null, 4, null] };

  it('a perfect set and a reversed set', () => {
    const p = rewardModelMetrics([perfect]);
    assert.deepEqual(p, {
      sets: 1, pairs: 3, pairwiseAccuracy: 1, pairwiseTies: 0, fiveBest: 1, exactMatch: 1,
      spearman: 1, spearmanSets: 1, kendall: 1, kendallSets: 1, unscored: 0,
    });
    const r = rewardModelMetrics([reversed]);
    assert.deepEqual(r, {
      sets: 1, pairs: 3, pairwiseAccuracy: 0, pairwiseTies: 0, fiveBest: 0, exactMatch: 0,
      spearman: -1, spearmanSets: 1, kendall: -1, kendallSets: 1, unscored: 0,
    });
  });

  it('human ties, model ties and a null score in one set', () => {
    const m = rewardModelMetrics([mixed]);
    // Pairs with different human ranks: (0,2) (0,3) (1,2) (1,3) (2,3) = 5; (0,1) is a human tie.
    // (0,2) 4.5 > 3 agree; (0,3) 4.5 > null agree; (1,2) 3 = 3 model tie; (1,3), (2,3) 3 > null agree.
    assert.equal(m.pairs, 5);
    close(m.pairwiseAccuracy, 4 / 5);
    close(m.pairwiseTies, 1 / 5);
    // Reply 0 is a human-best and scored exactly 4.5.
    assert.equal(m.fiveBest, 1);
    // Humans tie (0,1), the judge does not.
    assert.equal(m.exactMatch, 0);
    // −rank = [0, 0, -1, -2] → ranks [3.5, 3.5, 2, 1]; scores [4.5, 3, 3, −∞] → ranks [4, 2.5, 2.5, 1]
    // dx = [1, 1, -0.5, -1.5], dy = [1.5, 0, 0, -1.5]: Sxy = 3.75, Sxx = Syy = 4.5 → ρ = 5/6
    close(m.spearman, 5 / 6);
    // C = 4 ((0,2) (0,3) (1,3) (2,3)), D = 0, Tx = 1 (0,1), Ty = 1 (1,2) → τb = 4/5
    close(m.kendall, 0.8);
    assert.equal(m.unscored, 1);
  });

  it('pools pairs over sets and averages correlations over the sets where they are defined', () => {
    const m = rewardModelMetrics([perfect, reversed, mixed, flat, nulls]);
    assert.equal(m.sets, 5);
    // Pairs: 3 + 3 + 5 + 2 ((0,1), (1,2) in flat) + 2 ((0,1), (1,2) in nulls) = 15
    assert.equal(m.pairs, 15);
    // Agreements: 3 + 0 + 4 + 0 + 2 = 9 → 9/15
    close(m.pairwiseAccuracy, 0.6);
    // Model ties: mixed 1 + flat 2 = 3 → 3/15
    close(m.pairwiseTies, 0.2);
    // 5 points to a best reply: perfect (5), mixed (4.5); not reversed (1), flat (2), nulls (4) → 2/5
    close(m.fiveBest, 0.4);
    // Exact: perfect, nulls (its human tie (0,2) is a null–null tie) → 2/5
    close(m.exactMatch, 0.4);
    // flat is constant: left out. ρ: (1 − 1 + 5/6 + 1) / 4 = 11/24; τ: (1 − 1 + 0.8 + 1) / 4 = 0.45
    close(m.spearman, 0.4583333333333333);
    assert.equal(m.spearmanSets, 4);
    close(m.kendall, 0.45);
    assert.equal(m.kendallSets, 4);
    // mixed 1 + nulls 2
    assert.equal(m.unscored, 3);
  });

  it('a set with all replies human-tied has no pairs: accuracy NaN, exact only if the judge ties them too', () => {
    const m = rewardModelMetrics([{ humanRanks: [0, 0], modelScores: [3, 3] }]);
    assert.equal(m.pairs, 0);
    assert.ok(Number.isNaN(m.pairwiseAccuracy));
    assert.ok(Number.isNaN(m.pairwiseTies));
    assert.equal(m.exactMatch, 1);
    assert.equal(m.fiveBest, 0);
    assert.ok(Number.isNaN(m.spearman));
    assert.equal(m.spearmanSets, 0);
    assert.equal(rewardModelMetrics([{ humanRanks: [0, 0], modelScores: [3, 2] }]).exactMatch, 0);
  });

  it('a judge that scored nothing is not measured: NaN, not 0% right', () => {
    const m = rewardModelMetrics([{ humanRanks: [0, 1, 2], modelScores: [null, null, null] }, { humanRanks: [1, 0], modelScores: [null, null] }]);
    assert.equal(m.pairs, 4);
    for (const k of ['pairwiseAccuracy', 'pairwiseTies', 'fiveBest', 'exactMatch', 'spearman', 'kendall'] as const) assert.ok(Number.isNaN(m[k]), k);
    assert.equal(m.unscored, 5);
    // One score anywhere and the judge is measured (the nulls rank below it).
    // (0,1) and (0,2): 1 above null, agree; (1,2) and the second set: null–null ties → 2 / 4.
    close(rewardModelMetrics([{ humanRanks: [0, 1, 2], modelScores: [1, null, null] }, { humanRanks: [1, 0], modelScores: [null, null] }]).pairwiseAccuracy, 2 / 4);
  });

  it('a null best reply is never a five; 4.49 is not a five', () => {
    assert.equal(rewardModelMetrics([{ humanRanks: [0, 1], modelScores: [null, 5] }]).fiveBest, 0);
    assert.equal(rewardModelMetrics([{ humanRanks: [0, 1], modelScores: [4.49, 1] }]).fiveBest, 0);
    // Several human-best replies: one five is enough.
    assert.equal(rewardModelMetrics([{ humanRanks: [2, 2, 3], modelScores: [1, 5, 0] }]).fiveBest, 1);
  });

  it('throws on bad input, naming the set', () => {
    assert.throws(() => rewardModelMetrics([]), /no sets/);
    assert.throws(() => rewardModelMetrics([perfect, { humanRanks: [0, 1], modelScores: [3] }]), /set 1 has 2 human ranks but 1 model scores/);
    assert.throws(() => rewardModelMetrics([{ humanRanks: [0], modelScores: [3] }]), /set 0 has 1 replies; at least 2/);
    assert.throws(() => rewardModelMetrics([perfect, perfect, { humanRanks: [0, -1], modelScores: [3, 2] }]), /set 2 human rank 1 is -1/);
    assert.throws(() => rewardModelMetrics([{ humanRanks: [0, 1.5], modelScores: [3, 2] }]), /set 0 human rank 1 is 1.5/);
    assert.throws(() => rewardModelMetrics([{ humanRanks: [0, 1], modelScores: [NaN, 2] }]), /set 0 model score 0 is NaN/);
  });
});
