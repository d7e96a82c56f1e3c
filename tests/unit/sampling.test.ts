/**
 * Host-side sampling (core/model/generate.ts `chooseToken`): the numeric sort of token ids gives
 * exactly a comparator sort's order (descending logit, ties by ascending id), and sampling picks
 * the same token as the plain sort-and-walk it replaced, draw for draw, over temperatures, top-k
 * and top-p; and a hand-computed two-token case.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chooseToken, sortedIds, type GenerateOptions } from '../../core/model/generate';
import { Rng } from '../../core/random';

/** The comparator sort sampling used before the numeric one. */
function comparatorOrder(logits: Float32Array): number[] {
  return Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]! || a - b);
}

/** Sampling written out directly: sort, keep the top k, cut at top p, walk the kept weights. */
function referenceChoice(logits: Float32Array, o: GenerateOptions, rng: Rng): number {
  const order = comparatorOrder(logits);
  const t = o.temperature ?? 1;
  const top = order.slice(0, o.topK && o.topK > 0 ? Math.min(o.topK, order.length) : order.length);
  const max = logits[top[0]!]! / t;
  const weights = top.map((i) => Math.exp(logits[i]! / t - max));
  const total = weights.reduce((a, b) => a + b, 0);
  let keep = top.length;
  if ((o.topP ?? 1) < 1) {
    let cumulative = 0;
    for (let i = 0; i < top.length; i++) {
      cumulative += weights[i]! / total;
      if (cumulative >= o.topP!) {
        keep = i + 1;
        break;
      }
    }
  }
  const kept = weights.slice(0, keep);
  let u = rng.next() * kept.reduce((a, b) => a + b, 0);
  for (let i = 0; i < keep; i++) {
    u -= kept[i]!;
    if (u < 0) return top[i]!;
  }
  return top[keep - 1]!;
}

/** Random logits with repeats (ties) and both zeros, and with `extremes` a huge and a tiny one. */
function logitsWithTies(V: number, seed: number, extremes = true): Float32Array {
  const rng = new Rng(seed);
  const pool = Array.from({ length: Math.max(4, V >> 3) }, () => (rng.next() * 2 - 1) * 12);
  const out = new Float32Array(V);
  for (let i = 0; i < V; i++) out[i] = pool[rng.int(pool.length)]!;
  out[rng.int(V)] = 0;
  out[rng.int(V)] = -0;
  if (extremes) {
    out[rng.int(V)] = -1e30;
    out[rng.int(V)] = 3.4e38;
  }
  return out;
}

describe('sampling', () => {
  it('sorts ids exactly as the comparator does: descending logit, ties by id, −0 as +0', () => {
    for (const [V, seed] of [[2, 1], [7, 2], [259, 3], [1000, 4], [32000, 5]] as const) {
      const logits = logitsWithTies(V, seed);
      assert.deepEqual(Array.from(sortedIds(logits)), comparatorOrder(logits), `V = ${V}`);
    }
    // Ties across signs of zero keep id order; −Infinity sorts last.
    assert.deepEqual(Array.from(sortedIds(new Float32Array([0, -0, -Infinity, 1, -0]))), [3, 0, 1, 4, 2]);
  });

  it('sorts a vocabulary of 2^21 ids (ties far apart, a few values out of place)', () => {
    const V = 2 ** 21;
    const logits = new Float32Array(V);
    logits[V - 1] = 5;
    logits[3] = 5;
    logits[10] = -2;
    const ids = sortedIds(logits);
    assert.deepEqual(Array.from(ids.subarray(0, 4)), [3, V - 1, 0, 1]);
    assert.equal(ids[V - 1], 10);
  });

  it('draws the same tokens as the direct sort-and-walk, over temperature, top-k and top-p', () => {
    const settings: GenerateOptions[] = [
      { maxNewTokens: 1, temperature: 1 },
      { maxNewTokens: 1, temperature: 0.7, topP: 0.9 },
      { maxNewTokens: 1, temperature: 1.3, topK: 20, topP: 0.95 },
      { maxNewTokens: 1, temperature: 0.2, topK: 3 },
    ];
    for (const [s, o] of settings.entries()) {
      for (const V of [5, 259, 4000]) {
        const logits = logitsWithTies(V, 10 + s, false).map((x) => x / 4); // spread enough that draws vary
        const [a, b] = [new Rng(s + V), new Rng(s + V)];
        const ours = Array.from({ length: 300 }, () => chooseToken(logits, o, a));
        const reference = Array.from({ length: 300 }, () => referenceChoice(logits, o, b));
        assert.deepEqual(ours, reference, `${JSON.stringify(o)}, V = ${V}`);
        if (V >= 259) assert.ok(new Set(ours).size > 1, `the draws should vary: ${JSON.stringify(o)}, V = ${V}, ${[...new Set(ours)]}`);
      }
    }
  });

  it('picks by hand-computed thresholds: logits [0, ln 3] at T = 1 give token 1 with probability 3/4', () => {
    const logits = new Float32Array([0, Math.log(3)]);
    const draw = (u: number) => chooseToken(logits, { maxNewTokens: 1 }, { next: () => u } as unknown as Rng);
    // Sorted: token 1 (weight 1), token 0 (weight 1/3 up to float32 rounding of ln 3); total ≈ 4/3.
    assert.equal(draw(0), 1);
    assert.equal(draw(0.74), 1);
    assert.equal(draw(0.76), 0);
    assert.equal(draw(0.999), 0);
    // top-p 0.7 keeps token 1 alone (3/4 ≥ 0.7).
    assert.equal(chooseToken(logits, { maxNewTokens: 1, topP: 0.7 }, { next: () => 0.999 } as unknown as Rng), 1);
  });
});
