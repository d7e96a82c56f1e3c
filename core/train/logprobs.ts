/**
 * Summed log-probability of each response given its prompt, over response tokens only — what DPO
 * compares between policy and reference. Sequences are right-padded in one batch.
 */
import * as tf from '@tensorflow/tfjs-core';
import { positionsFromMask, type DecoderModel } from '../model/decoder';
import { padPromptResponse, targetLogProbs, type PromptResponse } from './batches';

export type { PromptResponse };

/** [B] summed response log-probs, as a tensor (differentiable when called inside a gradient scope). */
export function responseLogProbs(model: DecoderModel, batch: PromptResponse[], pad = 0, options: { training?: boolean; dropout?: number; seed?: number } = {}): tf.Tensor1D {
  const b = padPromptResponse(batch, pad);
  return tf.tidy(() => {
    const ids = tf.tensor2d(b.ids, undefined, 'int32');
    const mask = tf.tensor2d(b.mask, undefined, 'int32');
    const { logits } = model.forward(ids, positionsFromMask(mask), mask, options);
    const picked = targetLogProbs(logits, tf.tensor2d(b.targets, undefined, 'int32'));
    return tf.sum(tf.mul(picked, tf.tensor2d(b.lossMask)), -1) as tf.Tensor1D;
  });
}
