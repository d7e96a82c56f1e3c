/**
 * Summed log-probability of each response given its prompt, over response tokens only — what DPO
 * compares between policy and reference. Sequences are right-padded in one batch.
 */
import * as tf from '@tensorflow/tfjs-core';
import { positionsFromMask, type DecoderModel } from '../model/decoder';

export interface PromptResponse {
  prompt: number[];
  response: number[];
}

/** [B] summed response log-probs, as a tensor (differentiable when called inside a gradient scope). */
export function responseLogProbs(model: DecoderModel, batch: PromptResponse[], pad = 0, options: { training?: boolean; dropout?: number; seed?: number } = {}): tf.Tensor1D {
  const seqs = batch.map((e) => [...e.prompt, ...e.response]);
  const T = Math.max(...seqs.map((s) => s.length)) - 1;
  const ids: number[][] = [];
  const mask: number[][] = [];
  const targets: number[][] = [];
  const lossMask: number[][] = [];
  batch.forEach((e, b) => {
    const s = seqs[b]!;
    const n = s.length - 1;
    const fill = T - n;
    ids.push([...s.slice(0, n), ...new Array<number>(fill).fill(pad)]);
    mask.push([...new Array<number>(n).fill(1), ...new Array<number>(fill).fill(0)]);
    targets.push([...s.slice(1), ...new Array<number>(fill).fill(0)]);
    lossMask.push([...s.slice(1).map((_, t) => (t + 1 >= e.prompt.length ? 1 : 0)), ...new Array<number>(fill).fill(0)]);
  });
  return tf.tidy(() => {
    const idsT = tf.tensor2d(ids, undefined, 'int32');
    const maskT = tf.tensor2d(mask, undefined, 'int32');
    const { logits, present } = model.forward(idsT, positionsFromMask(maskT), maskT, options);
    tf.dispose(present.flatMap((p) => [p.k, p.v]));
    const logProbs = tf.sub(logits, tf.logSumExp(logits, -1, true));
    const picked = tf.sum(tf.mul(logProbs, tf.oneHot(tf.tensor2d(targets, undefined, 'int32'), model.config.vocabSize)), -1);
    return tf.sum(tf.mul(picked, tf.tensor2d(lossMask)), -1) as tf.Tensor1D;
  });
}
