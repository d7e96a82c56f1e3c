/**
 * A decoder-only transformer in two families, from shared blocks:
 *  - Llama: RMSNorm, rotary positions (RoPE, configurable θ), SwiGLU MLP, grouped-query attention,
 *    tied or untied embeddings;
 *  - GPT-2: learned positions, LayerNorm, tanh-GELU MLP, tied embeddings.
 *
 * Every projection is a 2D matmul on [B·T, C] with an [in, out] weight (see hf-weights.ts), q/k/v
 * in one matmul, gate/up in one: few, large ops, because per-op overhead dominates small models.
 * Positions come from the attention mask (cumsum − 1), so left-padded batches see the same
 * positions as unpadded sequences — what transformers' generate() does.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ModelConfig } from './config';
import { parameterShapes, type Weights } from './hf-weights';

/** A large negative instead of −∞: a row with every key masked (a pad query) stays finite. */
const MASKED = -1e9;

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
}

export interface ForwardResult {
  /** [B, T, V] */
  logits: tf.Tensor3D;
  /** Keys and values including this call's positions; empty unless `cache` or `past` was given. */
  present: LayerCache[];
}

export class DecoderModel {
  readonly params: Map<string, tf.Variable>;
  /** RoPE inverse frequencies (Llama), made once rather than uploaded on every call. */
  private readonly invFreq: tf.Tensor1D | undefined;

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
    this.invFreq = config.family === 'llama'
      ? tf.tensor1d(Array.from({ length: D / 2 }, (_, i) => 1 / config.ropeTheta ** ((2 * i) / D)), 'float32')
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
        const t = tf.randomNormal([size], 0, 0.02, 'float32', s++);
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
    this.invFreq?.dispose();
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
      const bias = attentionBias(keyMask, pastLen, T); // [B, 1, T, S]
      const rope = this.invFreq ? rotaryTables(positions, this.invFreq) : undefined;
      let h = tf.reshape(x, [B * T, c.hiddenSize]) as tf.Tensor2D;
      for (let i = 0; i < c.numLayers; i++) {
        const l = `layers.${i}`;
        const { out, k, v } = this.attention(this.norm(h, `${l}.norm1`), B, T, S, bias, rope, past?.[i], l);
        if (keepCache) present.push({ k: tf.keep(k), v: tf.keep(v) });
        h = tf.add(h, drop(out));
        h = tf.add(h, drop(this.mlp(this.norm(h, `${l}.norm2`), l)));
      }
      const final = this.norm(h, 'norm');
      const out = c.tieEmbeddings ? tf.matMul(final, this.p('embed'), false, true) : tf.matMul(final, this.p('lmHead'));
      return tf.reshape(out, [B, T, c.vocabSize]) as tf.Tensor3D;
    });
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
      const ms = tf.mean(tf.square(x), -1, true);
      return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), this.p(`${name}.weight`));
    }
    const { mean, variance } = tf.moments(x, -1, true);
    const normed = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
    return tf.add(tf.mul(normed, this.p(`${name}.weight`)), this.p(`${name}.bias`));
  }

  private mlp(x: tf.Tensor2D, l: string): tf.Tensor2D {
    const F = this.config.intermediateSize;
    if (this.config.family === 'llama') {
      const gateUp = this.linear(x, `${l}.mlp.gateUp`);
      const [gate, up] = tf.split(gateUp, [F, F], 1) as [tf.Tensor2D, tf.Tensor2D];
      const silu = tf.mul(gate, tf.sigmoid(gate)) as tf.Tensor2D;
      return this.linear(tf.mul(silu, up) as tf.Tensor2D, `${l}.mlp.down`);
    }
    return this.linear(geluTanh(this.linear(x, `${l}.mlp.up`)), `${l}.mlp.down`);
  }

  private attention(
    x: tf.Tensor2D, B: number, T: number, S: number, bias: tf.Tensor4D,
    rope: { cos: tf.Tensor4D; sin: tf.Tensor4D } | undefined, past: LayerCache | undefined, l: string,
  ): { out: tf.Tensor2D; k: tf.Tensor4D; v: tf.Tensor4D } {
    const { numHeads: H, numKvHeads: K, headDim: D } = this.config;
    const qkv = this.linear(x, `${l}.attn.qkv`);
    // q and k are adjacent columns: rotate them together, as H + K heads, in one pass.
    const [qk2, v2] = tf.split(qkv, [(H + K) * D, K * D], 1);
    let qk = tf.reshape(qk2!, [B, T, H + K, D]) as tf.Tensor4D;
    if (rope) qk = applyRotary(qk, rope);
    const [q, k] = tf.split(qk, [H, K], 2) as [tf.Tensor4D, tf.Tensor4D];
    // [B, T, n, D] → [B, n, T, D]; with one position (a decode step) that is only a reshape.
    const heads = (x: tf.Tensor, n: number) => (T === 1 ? tf.reshape(x, [B, n, 1, D]) : tf.transpose(tf.reshape(x, [B, T, n, D]), [0, 2, 1, 3])) as tf.Tensor4D;
    let kh = heads(k, K);
    let vh = heads(v2!, K);
    if (past) {
      kh = tf.concat([past.k, kh], 2);
      vh = tf.concat([past.v, vh], 2);
    }
    const qh = heads(q, H); // [B, H, T, D]
    const kFull = repeatKv(kh, H / K, B, K, S, D);
    const vFull = repeatKv(vh, H / K, B, K, S, D);
    const scores = tf.add(tf.mul(tf.matMul(qh, kFull, false, true), 1 / Math.sqrt(D)), bias);
    const probs = tf.softmax(scores, -1);
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

/** Query t (absolute key index pastLen + t) may see key s when s ≤ pastLen + t and s is not padding. */
function attentionBias(keyMask: tf.Tensor2D, pastLen: number, T: number): tf.Tensor4D {
  const [B, S] = keyMask.shape;
  // One new token (a decode step) sees every earlier key: only padding is masked.
  if (T === 1) return tf.reshape(tf.mul(tf.sub(1, tf.cast(keyMask, 'float32')), MASKED), [B, 1, 1, S]) as tf.Tensor4D;
  const q = tf.reshape(tf.range(pastLen, pastLen + T, 1, 'int32'), [T, 1]);
  const k = tf.reshape(tf.range(0, S, 1, 'int32'), [1, S]);
  const causal = tf.cast(tf.lessEqual(k, q), 'float32'); // [T, S]
  const allowed = tf.mul(tf.reshape(causal, [1, 1, T, S]), tf.reshape(tf.cast(keyMask, 'float32'), [B, 1, 1, S]));
  return tf.mul(tf.sub(1, allowed), MASKED) as tf.Tensor4D;
}

/** cos and sin tables [B, T, 1, D] for RoPE, in transformers' half-split layout. */
function rotaryTables(positions: tf.Tensor2D, invFreq: tf.Tensor1D): { cos: tf.Tensor4D; sin: tf.Tensor4D } {
  const [B, T] = positions.shape;
  const D = invFreq.shape[0] * 2;
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
