/**
 * A decoder-only transformer in two families, from shared blocks:
 *  - Llama: RMSNorm, rotary positions (RoPE, configurable θ), SwiGLU MLP, grouped-query attention,
 *    tied or untied embeddings;
 *  - GPT-2: learned positions, LayerNorm, tanh-GELU MLP, tied embeddings.
 *
 * Every projection is a 2D matmul on [B·T, C] with an [in, out] weight (see hf-weights.ts). For
 * training, q/k/v and gate/up are matmuls on slices of the stored weight (slicing the weight is
 * cheaper than slicing [B·T, ·] activations, forward and backward); for generation,
 * `inferenceWeights()` refolds the weights so a step needs as few ops as possible, because per-op
 * overhead dominates small models.
 * Positions come from the attention mask (cumsum − 1), so left-padded batches see the same
 * positions as unpadded sequences — what transformers' generate() does.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ModelConfig } from './config';
import { parameterShapes, type Weights } from './hf-weights';

/** A large negative instead of −∞: a row with every key masked (a pad query) stays finite. */
export const MASKED = -1e9;

export interface LayerCache {
  /** [B, K, S, D] */
  k: tf.Tensor4D;
  v: tf.Tensor4D;
}

export interface ForwardOptions {
  /** Keys and values of earlier positions (generation with a KV cache). */
  past?: LayerCache[];
  /** Return this call's keys and values (`present`) to continue from; implied by `past`. */
  cache?: boolean;
  training?: boolean;
  dropout?: number;
  /** Seed for dropout masks (training). */
  seed?: number;
  /**
   * Additive attention bias [B, 1, T, S] (0 or masked) replacing the one made from `keyMask`;
   * null: no key is padding (no bias for one position, causal only for several).
   */
  attentionBias?: tf.Tensor4D | null;
  /** Weights folded for inference (`inferenceWeights()`); Llama, no dropout, no gradients. */
  inference?: InferenceWeights;
  /** Logits of the last position only ([B, 1, V]). */
  lastOnly?: boolean;
}

/**
 * Llama weights refolded for generation: norm weights folded into the next projection and the
 * attention scale into the query columns; RoPE as one small matmul giving each head [u, rotate(u)]
 * and one multiply-add with [cos, sin] (v heads get [1, 0]). Valid while the parameters do not
 * change; dispose when done.
 */
export interface InferenceWeights {
  layers: { qkv: tf.Tensor2D; out: tf.Tensor2D; gate: tf.Tensor2D; up: tf.Tensor2D; down: tf.Tensor2D }[];
  /** [C, V], final norm weight folded in. */
  head: tf.Tensor2D;
  /** [D, 2D] = [I | R] with u·R = rotate_half(u). */
  rotate: tf.Tensor2D;
  /** [C, 1] of 1/C: a row mean as a matmul (no cast, no axis upload). */
  mean: tf.Tensor2D;
  /** [P, H + 2K, 2, D]: per position and head, the factors of u and rotate(u). */
  rotary: tf.Tensor4D;
  dispose(): void;
}

export interface ForwardResult {
  /** [B, T, V] */
  logits: tf.Tensor3D;
  /** Keys and values including this call's positions; empty unless `cache` or `past` was given. */
  present: LayerCache[];
}

export class DecoderModel {
  readonly params: Map<string, tf.Variable>;
  /** [C, 1] of 1/C: RMSNorm's row mean as a matmul, whose gradient needs no host-made ones (tf.mean's does). */
  private readonly meanColumn: tf.Tensor2D;
  /** RoPE cos and sin per position [P, 1, D] (Llama), made once rather than on every call. */
  private readonly rope: { cos: tf.Tensor3D; sin: tf.Tensor3D } | undefined;

  constructor(
    readonly config: ModelConfig,
    weights: Weights,
  ) {
    const expected = parameterShapes(config);
    this.params = new Map();
    for (const [name, shape] of expected) {
      const w = weights.get(name);
      if (!w) throw new Error(`parameter ${name} is missing`);
      if (w.shape.join(',') !== shape.join(',')) throw new Error(`parameter ${name} has shape [${w.shape}], expected [${shape}]`);
      const initial = tf.tensor(w.data, shape, 'float32');
      // tfjs variable names are global to the process: leave them unnamed, many models coexist.
      this.params.set(name, tf.variable(initial, true));
      initial.dispose();
    }
    const D = config.headDim;
    this.meanColumn = tf.fill([config.hiddenSize, 1], 1 / config.hiddenSize);
    this.rope = config.family === 'llama'
      ? tf.tidy(() => {
          const { cos, sin } = rotaryTables(tf.reshape(tf.range(0, config.maxPositions, 1, 'int32'), [1, -1]) as tf.Tensor2D, config);
          const P = config.maxPositions;
          return { cos: tf.keep(tf.reshape(cos, [P, 1, D])) as tf.Tensor3D, sin: tf.keep(tf.reshape(sin, [P, 1, D])) as tf.Tensor3D };
        })
      : undefined;
  }

  /** A freshly initialised model (normal std 0.02, norms at 1, biases at 0), seeded. */
  static initialise(config: ModelConfig, seed: number): DecoderModel {
    const weights: Weights = new Map();
    let s = seed;
    for (const [name, shape] of parameterShapes(config)) {
      const size = shape.reduce((a, b) => a * b, 1);
      let data: Float32Array;
      if (/norm\d?\.weight$/.test(name)) data = new Float32Array(size).fill(1);
      else if (name.endsWith('.bias')) data = new Float32Array(size);
      else {
        // tfjs's randomNormal treats seed 0 as "no seed" (Math.random): give it a fixed stand-in,
        // which no seed ≥ 0 reaches, so seed 0 initialises the same weights in every process.
        const t = tf.randomNormal([size], 0, 0.02, 'float32', s === 0 ? -1 : s);
        s++;
        data = t.dataSync() as Float32Array;
        t.dispose();
      }
      weights.set(name, { shape, data });
    }
    return new DecoderModel(config, weights);
  }

  p(name: string): tf.Variable {
    const v = this.params.get(name);
    if (!v) throw new Error(`no parameter ${name}`);
    return v;
  }

  /** RoPE's cos and sin per position [P, 1, D] (Llama), for the forward graph. */
  ropeTables(): { cos: tf.Tensor3D; sin: tf.Tensor3D } | undefined {
    return this.rope;
  }

  /** The weights on the host, by our names (for checkpoints). */
  async weights(): Promise<Weights> {
    const out: Weights = new Map();
    for (const [name, v] of this.params) out.set(name, { shape: v.shape, data: (await v.data()) as Float32Array });
    return out;
  }

  trainableVariables(): tf.Variable[] {
    return [...this.params.values()];
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
    this.params.clear();
    if (this.rope) tf.dispose([this.rope.cos, this.rope.sin]);
    this.meanColumn.dispose();
  }

  /**
   * Logits for `ids` [B, T] (int32). `keyMask` [B, S] is 1 for real tokens and 0 for padding over
   * every key position (past + these T); `positions` [B, T] are the tokens' position indices.
   */
  forward(ids: tf.Tensor2D, positions: tf.Tensor2D, keyMask: tf.Tensor2D, options: ForwardOptions = {}): ForwardResult {
    const c = this.config;
    const [B, T] = ids.shape;
    const past = options.past;
    const pastLen = past?.[0]?.k.shape[2] ?? 0;
    const S = pastLen + T;
    // The RoPE tables cover maxPositions; longer sequences take the path that computes them.
    const tabled = S <= c.maxPositions;
    if (options.inference && tabled) return this.forwardInference(ids, positions, keyMask, options.inference, options);
    const training = options.training === true;
    const rate = training ? (options.dropout ?? 0) : 0;
    let seed = options.seed ?? 0;
    const drop = <X extends tf.Tensor>(x: X): X => (rate > 0 ? (tf.dropout(x, rate, undefined, seed++) as X) : x);

    const present: LayerCache[] = [];
    const keepCache = options.cache === true || past !== undefined;
    const logits = tf.tidy(() => {
      let x = this.lookup('embed', ids, training); // [B, T, C]
      if (c.family === 'gpt2') x = tf.add(x, this.lookup('pos', positions, training));
      x = drop(x);
      const bias = this.bias(keyMask, pastLen, T, options.attentionBias);
      const rope = this.rope ? (tabled ? { cos: tf.gather(this.rope.cos, positions) as tf.Tensor as tf.Tensor4D, sin: tf.gather(this.rope.sin, positions) as tf.Tensor as tf.Tensor4D } : rotaryTables(positions, c)) : undefined; // [B, T, 1, D]
      let h = tf.reshape(x, [B * T, c.hiddenSize]) as tf.Tensor2D;
      for (let i = 0; i < c.numLayers; i++) {
        const l = `layers.${i}`;
        const { out, k, v } = this.attention(this.norm(h, `${l}.norm1`), B, T, S, bias, rope, past?.[i], l);
        if (keepCache) present.push({ k: tf.keep(k), v: tf.keep(v) });
        h = tf.add(h, drop(out));
        h = tf.add(h, drop(this.mlp(this.norm(h, `${l}.norm2`), l)));
      }
      const Tout = options.lastOnly ? 1 : T;
      if (options.lastOnly && T > 1) h = lastRows(h, B, T);
      const final = this.norm(h, 'norm');
      const out = c.tieEmbeddings ? tf.matMul(final, this.p('embed'), false, true) : tf.matMul(final, this.p('lmHead'));
      return tf.reshape(out, [B, Tout, c.vocabSize]) as tf.Tensor3D;
    });
    return { logits, present };
  }

  /** The additive attention bias for this call, or undefined when nothing is masked. */
  private bias(keyMask: tf.Tensor2D, pastLen: number, T: number, given: tf.Tensor4D | null | undefined): tf.Tensor4D | undefined {
    if (given) return given;
    if (given === null) return T === 1 ? undefined : causalBias(pastLen, T);
    return attentionBias(keyMask, pastLen, T);
  }

  /** Weights folded for generation (see InferenceWeights); Llama only, else undefined. */
  inferenceWeights(): InferenceWeights | undefined {
    const c = this.config;
    if (c.family !== 'llama' || !this.rope) return undefined;
    const { numHeads: H, numKvHeads: K, headDim: D, hiddenSize: C } = c;
    const rope = this.rope;
    let folded: InferenceWeights | undefined;
    tf.tidy(() => {
      // [I | R] with u·R = rotate_half(u) = [−u₂, u₁].
      const ri = new Float32Array(D * 2 * D);
      for (let i = 0; i < D; i++) ri[i * 2 * D + i] = 1;
      for (let i = 0; i < D / 2; i++) {
        ri[(i + D / 2) * 2 * D + D + i] = -1;
        ri[i * 2 * D + D + D / 2 + i] = 1;
      }
      const rotate = tf.tensor2d(ri, [D, 2 * D]);
      const colScale = tf.tensor2d([...new Array<number>(H * D).fill(1 / Math.sqrt(D)), ...new Array<number>(2 * K * D).fill(1)], [1, (H + 2 * K) * D]);
      const rowScale = (name: string) => tf.reshape(this.p(name), [C, 1]);
      const layers = Array.from({ length: c.numLayers }, (_, i) => {
        const l = `layers.${i}`;
        const qkv = tf.mul(tf.mul(this.p(`${l}.attn.qkv.weight`), rowScale(`${l}.norm1.weight`)), colScale);
        return {
          qkv: tf.keep(qkv) as tf.Tensor2D,
          out: tf.keep(tf.clone(this.p(`${l}.attn.out.weight`))) as tf.Tensor2D,
          ...(() => {
            const [gate, up] = tf.split(tf.mul(this.p(`${l}.mlp.gateUp.weight`), rowScale(`${l}.norm2.weight`)), 2, 1) as [tf.Tensor2D, tf.Tensor2D];
            return { gate: tf.keep(gate), up: tf.keep(up) };
          })(),
          down: tf.keep(tf.clone(this.p(`${l}.mlp.down.weight`))) as tf.Tensor2D,
        };
      });
      const table = c.tieEmbeddings ? tf.transpose(this.p('embed')) : this.p('lmHead');
      const head = tf.keep(tf.mul(table, rowScale('norm.weight'))) as tf.Tensor2D;
      // q and k heads: [cos, sin]; v heads: [1, 0].
      const P = c.maxPositions;
      const cs = tf.reshape(tf.concat([rope.cos, rope.sin], 1), [P, 1, 2, D]);
      const identity = tf.reshape(tf.concat([tf.ones([1, 1, D]), tf.zeros([1, 1, D])], 1), [1, 1, 2, D]);
      const rotary = tf.keep(tf.concat([tf.tile(cs, [1, H + K, 1, 1]), tf.tile(identity, [P, K, 1, 1])], 1)) as tf.Tensor4D;
      tf.keep(rotate);
      const mean = tf.keep(tf.fill([C, 1], 1 / C)) as tf.Tensor2D;
      const all = [...layers.flatMap((x) => [x.qkv, x.out, x.gate, x.up, x.down]), head, rotary, rotate, mean];
      folded = { layers, head, rotate, mean, rotary, dispose: () => tf.dispose(all) };
    });
    return folded;
  }

  /** forward() with InferenceWeights: the same logits from fewer ops. */
  private forwardInference(ids: tf.Tensor2D, positions: tf.Tensor2D, keyMask: tf.Tensor2D, w: InferenceWeights, options: ForwardOptions): ForwardResult {
    const c = this.config;
    const { numHeads: H, numKvHeads: K, headDim: D, hiddenSize: C, vocabSize: V } = c;
    const [B, T] = ids.shape;
    const past = options.past;
    const pastLen = past?.[0]?.k.shape[2] ?? 0;
    const S = pastLen + T;
    const N = H + 2 * K;
    const rep = H / K;
    const present: LayerCache[] = [];
    const keepCache = options.cache === true || past !== undefined;
    const eps = tf.scalar(c.normEps);
    const logits = tf.tidy(() => {
      let h = tf.reshape(tf.gather(this.p('embed'), ids), [B * T, C]) as tf.Tensor2D;
      const bias = this.bias(keyMask, pastLen, T, options.attentionBias);
      // [B, T, N, 2, D]; one position: [B, N, 1, 2, D], the same memory.
      const gathered = tf.gather(w.rotary, positions);
      const rot = T === 1 ? tf.reshape(gathered, [B, N, 1, 2, D]) : gathered;
      const rms = (x: tf.Tensor2D) => tf.mul(x, tf.rsqrt(tf.add(tf.matMul(tf.square(x), w.mean), eps))) as tf.Tensor2D;
      for (let i = 0; i < c.numLayers; i++) {
        const L = w.layers[i]!;
        const y = tf.matMul(tf.reshape(tf.matMul(rms(h), L.qkv), [B * T * N, D]), w.rotate); // [u, rotate(u)] per head
        const rotated = tf.sum(tf.mul(tf.reshape(y, T === 1 ? [B, N, 1, 2, D] : [B, T, N, 2, D]), rot), 3);
        const heads = T === 1 ? rotated : tf.transpose(rotated, [0, 2, 1, 3]); // [B, N, T, D]
        let [q, k, v] = tf.split(heads, [H, K, K], 1) as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
        if (past) {
          k = tf.concat([past[i]!.k, k], 2);
          v = tf.concat([past[i]!.v, v], 2);
        }
        if (keepCache) present.push({ k: tf.keep(k), v: tf.keep(v) });
        // Grouped queries share their kv head: [B, K, rep·T, D] against [B, K, S, D], no copies.
        if (rep > 1) q = tf.reshape(q, [B, K, rep * T, D]);
        let scores: tf.Tensor = tf.matMul(q, k, false, true);
        if (bias) scores = rep > 1 ? tf.add(tf.reshape(scores, [B, K, rep, T, S]), tf.reshape(bias, [bias.shape[0], 1, 1, T, S])) : tf.add(scores, bias);
        let probs: tf.Tensor = tf.softmax(scores, -1);
        if (rep > 1) probs = tf.reshape(probs, [B, K, rep * T, S]);
        const ctx = tf.matMul(probs as tf.Tensor4D, v); // [B, K, rep·T, D] = [B, H, T, D]
        const merged = T === 1 ? tf.reshape(ctx, [B, H * D]) : tf.reshape(tf.transpose(tf.reshape(ctx, [B, H, T, D]), [0, 2, 1, 3]), [B * T, H * D]);
        h = tf.add(h, tf.matMul(merged, L.out));
        const xn = rms(h);
        const gate = tf.matMul(xn, L.gate);
        h = tf.add(h, tf.matMul(tf.mul(tf.mul(gate, tf.sigmoid(gate)), tf.matMul(xn, L.up)), L.down));
      }
      const Tout = options.lastOnly ? 1 : T;
      if (options.lastOnly && T > 1) h = lastRows(h, B, T);
      return tf.reshape(tf.matMul(rms(h), w.head), [B, Tout, V]) as tf.Tensor3D;
    });
    eps.dispose();
    return { logits, present };
  }

  /** Rows of an embedding table (token or position) for [B, T] indices. */
  private lookup(name: 'embed' | 'pos', indices: tf.Tensor2D, training: boolean): tf.Tensor3D {
    const table = this.p(name);
    // gather's gradient needs UnsortedSegmentSum, which the wasm backend lacks; a one-hot matmul
    // computes the same rows and has a gradient everywhere.
    if (training && tf.getBackend() === 'wasm') {
      const [B, T] = indices.shape;
      const oneHot = tf.oneHot(tf.reshape(indices, [B * T]), table.shape[0]);
      return tf.reshape(tf.matMul(oneHot, table), [B, T, this.config.hiddenSize]);
    }
    return tf.gather(table, indices) as tf.Tensor3D;
  }

  private linear(x: tf.Tensor2D, name: string): tf.Tensor2D {
    const y = tf.matMul(x, this.p(`${name}.weight`)) as tf.Tensor2D;
    return this.params.has(`${name}.bias`) ? (tf.add(y, this.p(`${name}.bias`)) as tf.Tensor2D) : y;
  }

  private norm(x: tf.Tensor2D, name: string): tf.Tensor2D {
    const eps = this.config.normEps;
    if (this.config.family === 'llama') {
      // RMSNorm: scale by the root mean square, no centring, no bias.
      const ms = tf.matMul(tf.square(x), this.meanColumn);
      return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), this.p(`${name}.weight`));
    }
    const { mean, variance } = tf.moments(x, -1, true);
    const normed = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
    return tf.add(tf.mul(normed, this.p(`${name}.weight`)), this.p(`${name}.bias`));
  }

  private mlp(x: tf.Tensor2D, l: string): tf.Tensor2D {
    const F = this.config.intermediateSize;
    if (this.config.family === 'llama') {
      // Two matmuls on the split weight rather than one split of the [B·T, 2F] activations.
      const [wGate, wUp] = tf.split(this.p(`${l}.mlp.gateUp.weight`), [F, F], 1) as [tf.Tensor2D, tf.Tensor2D];
      const gate = tf.matMul(x, wGate);
      const silu = tf.mul(gate, tf.sigmoid(gate)) as tf.Tensor2D;
      return this.linear(tf.mul(silu, tf.matMul(x, wUp)) as tf.Tensor2D, `${l}.mlp.down`);
    }
    return this.linear(geluTanh(this.linear(x, `${l}.mlp.up`)), `${l}.mlp.down`);
  }

  private attention(
    x: tf.Tensor2D, B: number, T: number, S: number, bias: tf.Tensor4D | undefined,
    rope: { cos: tf.Tensor4D; sin: tf.Tensor4D } | undefined, past: LayerCache | undefined, l: string,
  ): { out: tf.Tensor2D; k: tf.Tensor4D; v: tf.Tensor4D } {
    const { numHeads: H, numKvHeads: K, headDim: D } = this.config;
    // q, k and v from the split weight (splitting weights is cheaper than splitting activations);
    // the attention scale goes into q's weight and bias, not onto the [B, H, T, S] scores.
    const scale = 1 / Math.sqrt(D);
    const [wq, wk, wv] = tf.split(this.p(`${l}.attn.qkv.weight`), [H * D, K * D, K * D], 1) as tf.Tensor2D[];
    let q = tf.matMul(x, tf.mul(wq!, scale)) as tf.Tensor2D;
    let k = tf.matMul(x, wk!) as tf.Tensor2D;
    let v = tf.matMul(x, wv!) as tf.Tensor2D;
    const b = this.params.get(`${l}.attn.qkv.bias`);
    if (b) {
      const [bq, bk, bv] = tf.split(b, [H * D, K * D, K * D]);
      q = tf.add(q, tf.mul(bq!, scale));
      k = tf.add(k, bk!);
      v = tf.add(v, bv!);
    }
    // [B·T, n·D] → [B, n, T, D], rotated first where RoPE applies; one position needs only a reshape.
    const heads = (y: tf.Tensor2D, n: number, rotate: boolean) => {
      let r = tf.reshape(y, [B, T, n, D]) as tf.Tensor4D;
      if (rotate && rope) r = applyRotary(r, rope);
      return (T === 1 ? tf.reshape(r, [B, n, 1, D]) : tf.transpose(r, [0, 2, 1, 3])) as tf.Tensor4D;
    };
    let kh = heads(k, K, true);
    let vh = heads(v, K, false);
    if (past) {
      kh = tf.concat([past.k, kh], 2);
      vh = tf.concat([past.v, vh], 2);
    }
    const qh = heads(q, H, true); // [B, H, T, D]
    const kFull = repeatKv(kh, H / K, B, K, S, D);
    const vFull = repeatKv(vh, H / K, B, K, S, D);
    const raw = tf.matMul(qh, kFull, false, true);
    const probs = tf.softmax(bias ? tf.add(raw, bias) : raw, -1);
    const ctx = tf.matMul(probs, vFull); // [B, H, T, D]
    const merged = tf.reshape(T === 1 ? ctx : tf.transpose(ctx, [0, 2, 1, 3]), [B * T, H * D]) as tf.Tensor2D;
    return { out: this.linear(merged, `${l}.attn.out`), k: kh, v: vh };
  }
}

/** GPT-2's "gelu_new": the tanh approximation of GELU. */
function geluTanh(x: tf.Tensor2D): tf.Tensor2D {
  const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
  return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
}

/** The last of T rows per sequence: [B·T, C] → [B, C]. */
function lastRows(h: tf.Tensor2D, B: number, T: number): tf.Tensor2D {
  const C = h.shape[1];
  return tf.reshape(tf.slice(tf.reshape(h, [B, T, C]), [0, T - 1, 0], [B, 1, C]), [B, C]) as tf.Tensor2D;
}

/** Causal masking only (no padding): [1, 1, T, S]. */
function causalBias(pastLen: number, T: number): tf.Tensor4D {
  const S = pastLen + T;
  const q = tf.reshape(tf.range(pastLen, pastLen + T, 1, 'int32'), [T, 1]);
  const k = tf.reshape(tf.range(0, S, 1, 'int32'), [1, S]);
  return tf.reshape(tf.mul(tf.sub(1, tf.cast(tf.lessEqual(k, q), 'float32')), MASKED), [1, 1, T, S]) as tf.Tensor4D;
}

/** [B, 1, 1, S]: MASKED where keyMask is 0 — what one new position sees. */
export function paddingBias(keyMask: tf.Tensor2D): tf.Tensor4D {
  const [B, S] = keyMask.shape;
  return tf.tidy(() => tf.reshape(tf.mul(tf.sub(1, tf.cast(keyMask, 'float32')), MASKED), [B, 1, 1, S]) as tf.Tensor4D);
}

/** Query t (absolute key index pastLen + t) may see key s when s ≤ pastLen + t and s is not padding. */
function attentionBias(keyMask: tf.Tensor2D, pastLen: number, T: number): tf.Tensor4D {
  const [B, S] = keyMask.shape;
  // One new token (a decode step) sees every earlier key: only padding is masked.
  if (T === 1) return paddingBias(keyMask);
  const q = tf.reshape(tf.range(pastLen, pastLen + T, 1, 'int32'), [T, 1]);
  const k = tf.reshape(tf.range(0, S, 1, 'int32'), [1, S]);
  const causal = tf.cast(tf.lessEqual(k, q), 'float32'); // [T, S]
  const allowed = tf.mul(tf.reshape(causal, [1, 1, T, S]), tf.reshape(tf.cast(keyMask, 'float32'), [B, 1, 1, S]));
  return tf.mul(tf.sub(1, allowed), MASKED) as tf.Tensor4D;
}

/** cos and sin [B, T, 1, D] for RoPE at these positions, in transformers' half-split layout and float32 angles. */
function rotaryTables(positions: tf.Tensor2D, c: ModelConfig): { cos: tf.Tensor4D; sin: tf.Tensor4D } {
  const [B, T] = positions.shape;
  const D = c.headDim;
  const invFreq = tf.tensor1d(Array.from({ length: D / 2 }, (_, i) => 1 / c.ropeTheta ** ((2 * i) / D)), 'float32');
  const angles = tf.mul(tf.reshape(tf.cast(positions, 'float32'), [B, T, 1]), tf.reshape(invFreq, [1, 1, D / 2]));
  const full = tf.concat([angles, angles], -1); // [B, T, D]
  return { cos: tf.reshape(tf.cos(full), [B, T, 1, D]), sin: tf.reshape(tf.sin(full), [B, T, 1, D]) };
}

function applyRotary(x: tf.Tensor4D, { cos, sin }: { cos: tf.Tensor4D; sin: tf.Tensor4D }): tf.Tensor4D {
  const D = x.shape[3];
  const [x1, x2] = tf.split(x, [D / 2, D / 2], 3);
  const rotated = tf.concat([tf.neg(x2!), x1!], 3);
  return tf.add(tf.mul(x, cos), tf.mul(rotated, sin));
}

/** Grouped-query attention: kv head j serves query heads j·rep … j·rep + rep − 1. */
function repeatKv(x: tf.Tensor4D, rep: number, B: number, K: number, S: number, D: number): tf.Tensor4D {
  if (rep === 1) return x;
  // Tiled as a rank-3 tensor: tfjs has no tile gradient beyond rank 4.
  return tf.reshape(tf.tile(tf.reshape(x, [B * K, 1, S * D]), [1, rep, 1]), [B, K * rep, S, D]) as tf.Tensor4D;
}

/** Positions from a [B, T] 0/1 mask: cumsum − 1, clamped at 0 (pads before the first token get 0). */
export function positionsFromMask(mask: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.cast(tf.maximum(tf.sub(tf.cumsum(tf.cast(mask, 'int32'), 1), 1), 0), 'int32') as tf.Tensor2D);
}
