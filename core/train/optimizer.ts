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

  /** One update with these gradients (already clipped and averaged) at learning rate lr. */
  apply(grads: Map<string, tf.Tensor>, lr: number): void {
    this.step += 1;
    const { beta1, beta2, epsilon, weightDecay } = this.settings;
    const c1 = 1 - beta1 ** this.step;
    const c2 = 1 - beta2 ** this.step;
    tf.tidy(() => {
      for (const [name, p] of this.params) {
        const g = grads.get(name);
        if (!g) continue;
        const m = this.m.get(name)!;
        const v = this.v.get(name)!;
        m.assign(tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)));
        v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2)));
        const update = tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), epsilon));
        const decayed = weightDecay > 0 && AdamW.decays(name) ? tf.mul(p, 1 - lr * weightDecay) : p;
        p.assign(tf.sub(decayed, tf.mul(update, lr)));
      }
    });
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
  }
}

/** Scales gradients so their global L2 norm is at most maxNorm; returns the norm before clipping. */
export function clipByGlobalNorm(grads: Map<string, tf.Tensor>, maxNorm: number): { clipped: Map<string, tf.Tensor>; norm: number } {
  const norm = tf.tidy(() => {
    const squares = [...grads.values()].map((g) => tf.sum(tf.square(g)));
    return tf.sqrt(tf.addN(squares)).dataSync()[0]!;
  });
  if (!(norm > maxNorm) || !Number.isFinite(norm)) return { clipped: grads, norm };
  const scale = maxNorm / (norm + 1e-6);
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
    const { clipped, norm } = clipByGlobalNorm(this.sums, maxNorm);
    optimizer.apply(clipped, lr);
    if (clipped !== this.sums) tf.dispose([...clipped.values()]);
    tf.dispose([...this.sums.values()]);
    this.sums.clear();
    return norm;
  }
}
