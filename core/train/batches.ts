/**
 * What SFT and DPO share about their data: prompt + response sequences right-padded into one batch
 * with a loss mask over the response tokens, the log-probability of each target token, and the
 * seeded order in which a dataset is visited (a function of seed and step, which is what makes
 * resuming exact).
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../random';

export interface PromptResponse {
  prompt: number[];
  response: number[];
}

/** Right-padded inputs, targets (inputs shifted by one) and a 0/1 mask over response targets. */
export interface PaddedBatch {
  ids: number[][];
  mask: number[][];
  targets: number[][];
  lossMask: number[][];
  /** Response tokens in the batch (the loss mask's sum). */
  lossTokens: number;
  /** Real (unpadded) input tokens in the batch. */
  inputTokens: number;
}

export function padPromptResponse(examples: PromptResponse[], pad: number, maxSeqLen = Infinity): PaddedBatch {
  const seqs = examples.map((e) => {
    const full = [...e.prompt, ...e.response].slice(0, maxSeqLen + 1);
    return { full, promptLen: Math.min(e.prompt.length, full.length) };
  });
  const T = Math.max(...seqs.map((s) => s.full.length - 1));
  const batch: PaddedBatch = { ids: [], mask: [], targets: [], lossMask: [], lossTokens: 0, inputTokens: 0 };
  for (const { full, promptLen } of seqs) {
    const n = full.length - 1;
    const fill = new Array<number>(T - n).fill(0);
    // Target t is token t + 1: a response token when t + 1 ≥ promptLen.
    const lossMask = full.slice(1).map((_, t) => (t + 1 >= promptLen ? 1 : 0));
    batch.lossTokens += lossMask.reduce((a: number, b) => a + b, 0);
    batch.inputTokens += n;
    batch.ids.push([...full.slice(0, n), ...fill.map(() => pad)]);
    batch.mask.push([...new Array<number>(n).fill(1), ...fill]);
    batch.targets.push([...full.slice(1), ...fill]);
    batch.lossMask.push([...lossMask, ...fill]);
  }
  return batch;
}

/**
 * [B, T] log-probability of each target token under the logits, from a log-softmax written out
 * (the layers' sparse loss clips logits).
 */
export function targetLogProbs(logits: tf.Tensor3D, targets: tf.Tensor2D): tf.Tensor2D {
  const logProbs = tf.sub(logits, tf.logSumExp(logits, -1, true));
  return tf.sum(tf.mul(logProbs, tf.oneHot(targets, logits.shape[2])), -1) as tf.Tensor2D;
}

/** The batches of a dataset in a seeded order, reshuffled every epoch; batch `step` is always the same. */
export class EpochOrder {
  readonly stepsPerEpoch: number;
  private readonly orders = new Map<number, number[]>();

  constructor(
    private readonly size: number,
    private readonly batchSize: number,
    private readonly seed: number,
  ) {
    this.stepsPerEpoch = Math.floor(size / batchSize);
  }

  epoch(step: number): number {
    return Math.floor(step / this.stepsPerEpoch);
  }

  /** Dataset indices of the batch for an optimizer step. */
  batch(step: number): number[] {
    const epoch = this.epoch(step);
    let order = this.orders.get(epoch);
    if (!order) {
      order = new Rng(this.seed * 1_000_003 + epoch).shuffle(Array.from({ length: this.size }, (_, i) => i));
      this.orders.set(epoch, order);
    }
    const start = (step % this.stepsPerEpoch) * this.batchSize;
    return order.slice(start, start + this.batchSize);
  }
}
