/**
 * AdamW with decoupled weight decay (Loshchilov & Hutter), written out so that its state — the
 * moments and the step count — can be saved with a checkpoint and resumed exactly. Biases and
 * norm weights are not decayed (as in transformers' Trainer).
 */
import * as tf from '@tensorflow/tfjs-core';
import { GraphBuilder, graphsAvailable, type GraphFunction, type Ref } from '../compute/graph';

export interface AdamWSettings {
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
}

export const DEFAULT_ADAMW: AdamWSettings = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 };

export class AdamW {
  /** Optimizer steps taken so far (bias correction uses it). */
  step = 0;
  readonly m = new Map<string, tf.Variable>();
  readonly v = new Map<string, tf.Variable>();

  constructor(
    private readonly params: Map<string, tf.Variable>,
    readonly settings: AdamWSettings,
  ) {
    for (const [name, p] of params) {
      this.m.set(name, tf.variable(tf.zerosLike(p), false));
      this.v.set(name, tf.variable(tf.zerosLike(p), false));
    }
  }

  /**
   * Counts a step and returns its coefficients: m/c1 / (sqrt(v/c2) + ε) = (√c2/c1) · m / (sqrt(v) +
   * ε√c2), so the bias corrections become scalars.
   */
  private nextStep(lr: number): { beta1: number; a1: number; beta2: number; a2: number; eps: number; size: number; keep: number } {
    this.step += 1;
    const { beta1, beta2, epsilon, weightDecay } = this.settings;
    const c1 = 1 - beta1 ** this.step;
    const c2 = 1 - beta2 ** this.step;
    return { beta1, a1: 1 - beta1, beta2, a2: 1 - beta2, eps: epsilon * Math.sqrt(c2), size: (lr * Math.sqrt(c2)) / c1, keep: 1 - lr * weightDecay };
  }

  static decays(name: string): boolean {
    return !name.endsWith('.bias') && !/norm\d?\.weight$/.test(name);
  }

  /**
   * Clips the gradients to a global norm of maxNorm and applies one update at lr; returns the
   * norm before clipping. On the native backend the whole update is one graph call (see
   * `adamwGraph`), elsewhere `globalNorm` and `apply` as eager ops.
   */
  async update(grads: Map<string, tf.Tensor>, lr: number, maxNorm: number): Promise<number> {
    if (!graphsAvailable()) {
      const norm = globalNorm(grads);
      this.apply(grads, lr, clipScale(norm, maxNorm));
      return norm;
    }
    const names = [...this.params.keys()].filter((n) => grads.has(n));
    const graph = await adamwGraph(names.map((n) => AdamW.decays(n)));
    const k = this.nextStep(lr);
    const scalars = [k.beta1, k.a1, k.beta2, k.a2, k.eps, k.size, k.keep, maxNorm];
    const inputs: Record<string, tf.Tensor> = { scalars: tf.tensor1d(scalars, 'float32') };
    names.forEach((n, i) => Object.assign(inputs, { [`p${i}`]: this.params.get(n)!, [`m${i}`]: this.m.get(n)!, [`v${i}`]: this.v.get(n)!, [`g${i}`]: grads.get(n)! }));
    const out = graph.run(inputs);
    inputs.scalars!.dispose();
    names.forEach((n, i) => {
      for (const [kind, target] of [['p', this.params.get(n)!], ['m', this.m.get(n)!], ['v', this.v.get(n)!]] as const) {
        target.assign(out[`${kind}${i}`]!);
        out[`${kind}${i}`]!.dispose();
      }
    });
    const norm = (await out.norm!.data())[0]!;
    out.norm!.dispose();
    return norm;
  }

  /**
   * One update with these gradients (averaged) at learning rate lr; `gradScale` multiplies every
   * gradient first (global-norm clipping) without a pass of its own.
   */
  apply(grads: Map<string, tf.Tensor>, lr: number, gradScale = 1): void {
    const k = this.nextStep(lr);
    const { weightDecay } = this.settings;
    tf.tidy(() => {
      const b1 = tf.scalar(k.beta1);
      const a1 = tf.scalar(k.a1 * gradScale);
      const b2 = tf.scalar(k.beta2);
      const a2 = tf.scalar(k.a2 * gradScale * gradScale);
      const eps = tf.scalar(k.eps);
      const size = tf.scalar(k.size);
      const keep = tf.scalar(k.keep);
      for (const [name, p] of this.params) {
        const g = grads.get(name);
        if (!g) continue;
        const m = this.m.get(name)!;
        const v = this.v.get(name)!;
        const m2 = tf.add(tf.mul(m, b1), tf.mul(g, a1));
        const v2 = tf.add(tf.mul(v, b2), tf.mul(tf.square(g), a2));
        m.assign(m2);
        v.assign(v2);
        const update = tf.mul(tf.div(m2, tf.add(tf.sqrt(v2), eps)), size);
        const decayed = weightDecay > 0 && AdamW.decays(name) ? tf.mul(p, keep) : p;
        p.assign(tf.sub(decayed, update));
      }
    });
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
  }
}

/** The global L2 norm of the gradients (one download). */
export function globalNorm(grads: Map<string, tf.Tensor>): number {
  return tf.tidy(() => tf.sqrt(tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g))))).dataSync()[0]!);
}

/** The factor that brings a norm down to maxNorm (1 when it is within, or not finite), as torch's clip_grad_norm_. */
export function clipScale(norm: number, maxNorm: number): number {
  return norm > maxNorm && Number.isFinite(norm) ? maxNorm / (norm + 1e-6) : 1;
}

/** Scales gradients so their global L2 norm is at most maxNorm; returns the norm before clipping. */
export function clipByGlobalNorm(grads: Map<string, tf.Tensor>, maxNorm: number): { clipped: Map<string, tf.Tensor>; norm: number } {
  const norm = globalNorm(grads);
  const scale = clipScale(norm, maxNorm);
  if (scale === 1) return { clipped: grads, norm };
  const clipped = new Map<string, tf.Tensor>();
  for (const [name, g] of grads) clipped.set(name, tf.mul(g, scale));
  return { clipped, norm };
}

/**
 * Gradients summed over the micro-batches of one optimizer step, by parameter name.
 * `add` takes ownership of the tensors it is given.
 */
export class GradientAccumulator {
  private readonly sums = new Map<string, tf.Tensor>();
  private readonly varToParam: Map<string, string>;

  constructor(params: Map<string, tf.Variable>) {
    this.varToParam = new Map([...params].map(([name, v]) => [v.name, name]));
  }

  add(grads: tf.NamedTensorMap): void {
    for (const [varName, g] of Object.entries(grads)) {
      const name = this.varToParam.get(varName);
      if (!name) throw new Error(`gradient for an unknown variable ${varName}`);
      const prev = this.sums.get(name);
      if (prev) {
        this.sums.set(name, tf.add(prev, g));
        tf.dispose([prev, g]);
      } else this.sums.set(name, g);
    }
  }

  /** Clips the sums to maxNorm, applies one AdamW update at lr, frees everything; returns the pre-clip norm. */
  async step(optimizer: AdamW, maxNorm: number, lr: number): Promise<number> {
    try {
      return await optimizer.update(this.sums, lr, maxNorm);
    } finally {
      tf.dispose([...this.sums.values()]);
      this.sums.clear();
    }
  }
}

const adamwGraphs = new Map<string, Promise<GraphFunction>>();

/**
 * `AdamW.apply` with global-norm clipping as one graph, for parameters in this order (true: weight
 * decay applies). Inputs `p{i}`, `m{i}`, `v{i}`, `g{i}` and `scalars` = [β1, 1 − β1, β2, 1 − β2,
 * ε√c2, lr·√c2/c1, 1 − lr·decay, maxNorm]; outputs the new `p{i}`, `m{i}`, `v{i}` and `norm`, the
 * gradients' global norm before clipping. The clipping factor is `clipScale`'s: maxNorm / (norm +
 * 1e-6) when the norm is finite and above maxNorm, else 1.
 */
function adamwGraph(decays: boolean[]): Promise<GraphFunction> {
  const key = decays.map((d) => (d ? 1 : 0)).join('');
  let found = adamwGraphs.get(key);
  if (!found) {
    const g = new GraphBuilder();
    const f32 = { type: 'float32' } as const;
    const scalars = g.input('scalars', 'float32');
    const [b1, a1, b2, a2, eps, size, keep, maxNorm] = Array.from({ length: 8 }, (_, i) => g.op('Reshape', [g.op('Slice', [scalars, g.constant([i]), g.constant([1])], { T: f32, Index: { type: 'int32' } }), g.constant([])], { T: f32, Tshape: { type: 'int32' } })) as Ref[];
    const params = decays.map((_, i) => ({ p: g.input(`p${i}`, 'float32'), m: g.input(`m${i}`, 'float32'), v: g.input(`v${i}`, 'float32'), grad: g.input(`g${i}`, 'float32') }));
    const squares = params.map(({ grad }) => g.op('Sum', [g.unary('Square', grad), g.op('Range', [g.constant(0), g.op('Rank', [grad], { T: f32 }), g.constant(1)], { Tidx: { type: 'int32' } })], { T: f32, Tidx: { type: 'int32' }, keep_dims: { bool: false } }));
    const norm = g.unary('Sqrt', squares.length === 1 ? squares[0]! : g.op('AddN', squares, { T: f32, N: { int: squares.length } }));
    const clip = g.op('LogicalAnd', [g.op('Greater', [norm, maxNorm!], { T: f32 }), g.op('IsFinite', [norm], { T: f32 })]);
    const scale = g.op('SelectV2', [clip, g.op('RealDiv', [maxNorm!, g.binary('AddV2', norm, g.constant(1e-6, 'float32'))], { T: f32 }), g.constant(1, 'float32')], { T: f32 });
    const a1s = g.binary('Mul', a1!, scale);
    const a2s = g.binary('Mul', g.binary('Mul', a2!, scale), scale);
    const outputs: Record<string, { ref: Ref; dtype: 'float32' }> = { norm: { ref: norm, dtype: 'float32' } };
    params.forEach(({ p, m, v, grad }, i) => {
      const m2 = g.binary('AddV2', g.binary('Mul', m, b1!), g.binary('Mul', grad, a1s));
      const v2 = g.binary('AddV2', g.binary('Mul', v, b2!), g.binary('Mul', g.unary('Square', grad), a2s));
      const update = g.binary('Mul', g.op('RealDiv', [m2, g.binary('AddV2', g.unary('Sqrt', v2), eps!)], { T: f32 }), size!);
      const decayed = decays[i] ? g.binary('Mul', p, keep!) : p;
      outputs[`p${i}`] = { ref: g.binary('Sub', decayed, update), dtype: 'float32' };
      outputs[`m${i}`] = { ref: m2, dtype: 'float32' };
      outputs[`v${i}`] = { ref: v2, dtype: 'float32' };
    });
    found = g.compile(outputs);
    found.catch(() => adamwGraphs.delete(key));
    adamwGraphs.set(key, found);
  }
  return found;
}
