/**
 * AdamW with decoupled weight decay (Loshchilov & Hutter), written out so that its state — the
 * moments and the step count — can be saved with a checkpoint and resumed exactly. Biases and
 * norm weights are not decayed (as in transformers' Trainer).
 */
import * as tf from '@tensorflow/tfjs-core';

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

  static decays(name: string): boolean {
    return !name.endsWith('.bias') && !/norm\d?\.weight$/.test(name);
  }

  /**
   * One update with these gradients (averaged) at learning rate lr; `gradScale` multiplies every
   * gradient first (global-norm clipping) without a pass of its own.
   */
  apply(grads: Map<string, tf.Tensor>, lr: number, gradScale = 1): void {
    this.step += 1;
    const { beta1, beta2, epsilon, weightDecay } = this.settings;
    const c1 = 1 - beta1 ** this.step;
    const c2 = 1 - beta2 ** this.step;
    tf.tidy(() => {
      // m/c1 / (sqrt(v/c2) + ε) = (√c2/c1) · m / (sqrt(v) + ε√c2): the bias corrections become scalars.
      const b1 = tf.scalar(beta1);
      const a1 = tf.scalar((1 - beta1) * gradScale);
      const b2 = tf.scalar(beta2);
      const a2 = tf.scalar((1 - beta2) * gradScale * gradScale);
      const eps = tf.scalar(epsilon * Math.sqrt(c2));
      const size = tf.scalar((lr * Math.sqrt(c2)) / c1);
      const keep = tf.scalar(1 - lr * weightDecay);
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
  step(optimizer: AdamW, maxNorm: number, lr: number): number {
    const norm = globalNorm(this.sums);
    optimizer.apply(this.sums, lr, clipScale(norm, maxNorm));
    tf.dispose([...this.sums.values()]);
    this.sums.clear();
    return norm;
  }
}
