/**
 * Supervised fine-tuning: next-token cross-entropy on the response tokens only (the prompt is
 * context, not target), AdamW, global-norm clipping, warmup then cosine or linear decay, gradient
 * accumulation, seeded shuffling, and resumable state saved every K steps or M seconds.
 *
 * Exact resume: the batch order and dropout masks are functions of (seed, step), and the saved
 * state holds weights and optimizer moments, so a run stopped after step k and resumed ends with
 * the same weights as one that never stopped.
 */
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs-core';
import type { GraphFunction } from '../compute/graph';
import { canonicalJson } from '../canonical-json';
import { InvalidInputError } from '../errors';
import { positionsFromMask, type DecoderModel } from '../model/decoder';
import { runTrainGraph, trainGraph, trainGraphUsable } from '../model/train-graph';
import { EpochOrder, padPromptResponse, targetLogProbs, type PaddedBatch, type PromptResponse } from './batches';
import { AdamW, DEFAULT_ADAMW, GradientAccumulator } from './optimizer';
import { learningRate, type ScheduleSettings } from './schedule';
import type { TrainingStateStore, TrainStateInfo } from './state';

/** A prompt and its target tokens (include the end-of-sequence token if the model should learn to stop). */
export type SftExample = PromptResponse;

export interface SftSettings extends ScheduleSettings {
  batchSize: number;
  gradientAccumulation: number;
  epochs: number;
  dropout: number;
  weightDecay: number;
  gradClip: number;
  maxSeqLen: number;
  checkpointEverySteps: number;
  checkpointEverySeconds: number;
  seed: number;
  /** Stop after this many optimizer steps (default: epochs over the data). */
  maxSteps?: number;
  padTokenId?: number;
}

export interface TrainProgress {
  step: number;
  total: number;
  epoch: number;
  loss: number;
  lr: number;
  gradNorm: number;
  tokensPerSecond: number;
}

export interface TrainHooks {
  state?: TrainingStateStore;
  onProgress?: (p: TrainProgress) => void;
  onSaved?: (step: number) => void;
  /** When aborted, the trainer saves its state and returns (graceful shutdown). */
  signal?: AbortSignal;
  /** The compute backend, recorded in saved state. */
  backend?: string;
}

export interface TrainResult {
  step: number;
  totalSteps: number;
  resumedFrom: number;
  losses: { step: number; loss: number }[];
  stopped: boolean;
}

/** Summed negative log-likelihood of the masked targets (a scalar). */
export function maskedNll(logits: tf.Tensor3D, targets: tf.Tensor2D, lossMask: tf.Tensor2D): tf.Scalar {
  return tf.neg(tf.sum(tf.mul(targetLogProbs(logits, targets), lossMask))) as tf.Scalar;
}

/** One micro-batch's loss and gradients through the training graph (each response token weighs 1 / lossTokens). */
function graphStep(graph: GraphFunction, model: DecoderModel, b: PaddedBatch, lossTokens: number): { value: tf.Scalar; grads: tf.NamedTensorMap } {
  const inputs = {
    ids: tf.tensor2d(b.ids, undefined, 'int32'),
    mask: tf.tensor2d(b.mask, undefined, 'int32'),
    targets: tf.tensor2d(b.targets, undefined, 'int32'),
    weights: tf.tensor2d(b.lossMask.map((row) => row.map((x) => x / lossTokens)), undefined, 'float32'),
  };
  try {
    const { loss, grads } = runTrainGraph(graph, model, inputs);
    return { value: loss, grads };
  } finally {
    tf.dispose(Object.values(inputs));
  }
}

export function sftFingerprint(examples: SftExample[], s: SftSettings): string {
  const data = createHash('sha256');
  for (const e of examples) data.update(`${e.prompt.join(',')}|${e.response.join(',')}\n`);
  const { checkpointEverySteps: _a, checkpointEverySeconds: _b, ...rest } = s;
  return createHash('sha256').update(canonicalJson({ kind: 'sft', data: data.digest('hex'), settings: rest })).digest('hex').slice(0, 16);
}

export async function trainSft(model: DecoderModel, examples: SftExample[], s: SftSettings, hooks: TrainHooks = {}): Promise<TrainResult> {
  if (examples.length < s.batchSize) throw new InvalidInputError(`SFT needs at least batchSize=${s.batchSize} examples, got ${examples.length}`);
  if (s.batchSize % s.gradientAccumulation !== 0) throw new InvalidInputError(`batchSize ${s.batchSize} must be a multiple of gradientAccumulation ${s.gradientAccumulation}`);
  for (const [i, e] of examples.entries()) if (e.response.length === 0) throw new InvalidInputError(`SFT example ${i} has an empty response`);
  const order = new EpochOrder(examples.length, s.batchSize, s.seed);
  const totalSteps = s.maxSteps ?? Math.max(1, Math.ceil(order.stepsPerEpoch * s.epochs));
  const micro = s.batchSize / s.gradientAccumulation;
  const pad = s.padTokenId ?? model.config.padTokenId ?? 0;
  const fingerprint = sftFingerprint(examples, s);

  // On the native backend a micro-batch trains as one graph call (model/train-graph.ts), the same
  // arithmetic as the eager tape; dropout and very large one-hots stay eager.
  const graph = trainGraphUsable(model.config, micro, s.maxSeqLen, s.dropout) ? await trainGraph(model.config) : undefined;
  const optimizer = new AdamW(model.params, { ...DEFAULT_ADAMW, weightDecay: s.weightDecay });
  const losses: { step: number; loss: number }[] = [];
  let step = 0;
  try {
    const restored = hooks.state ? await hooks.state.restoreLatest(model, optimizer, fingerprint) : undefined;
    if (restored) {
      step = restored.step;
      losses.push(...restored.lossHistory);
    }
    const resumedFrom = step;
    let lastSave = Date.now();
    let windowStart = Date.now();
    let windowTokens = 0;
    const save = async () => {
      if (!hooks.state) return;
      const info: TrainStateInfo = { step, totalSteps, fingerprint, backend: hooks.backend ?? tf.getBackend(), lossHistory: losses, savedAt: new Date().toISOString() };
      await hooks.state.save(model, optimizer, info);
      lastSave = Date.now();
      hooks.onSaved?.(step);
    };

    while (step < totalSteps) {
      // Yield to the event loop once per step: signals (graceful shutdown), heartbeats and timers
      // are macrotasks, and a loop of resolved promises would starve them.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (hooks.signal?.aborted) {
        await save();
        return { step, totalSteps, resumedFrom, losses, stopped: true };
      }
      const epoch = order.epoch(step);
      const indices = order.batch(step);
      const batches = Array.from({ length: s.gradientAccumulation }, (_, m) => padPromptResponse(indices.slice(m * micro, (m + 1) * micro).map((i) => examples[i]!), pad, s.maxSeqLen));
      const lossTokens = batches.reduce((a, b) => a + b.lossTokens, 0);
      if (lossTokens === 0) throw new InvalidInputError(`step ${step}: no response tokens within maxSeqLen ${s.maxSeqLen}; raise maxSeqLen or shorten prompts`);

      const accumulated = new GradientAccumulator(model.params);
      let lossSum = 0;
      for (const [m, b] of batches.entries()) {
        const { value, grads } = graph ? graphStep(graph, model, b, lossTokens) : tf.tidy(() => {
          const ids = tf.tensor2d(b.ids, undefined, 'int32');
          const mask = tf.tensor2d(b.mask, undefined, 'int32');
          const targets = tf.tensor2d(b.targets, undefined, 'int32');
          const lossMask = tf.tensor2d(b.lossMask, undefined, 'float32');
          const positions = positionsFromMask(mask);
          return tf.variableGrads(() => {
            const { logits } = model.forward(ids, positions, mask, { training: true, dropout: s.dropout, seed: (s.seed * 7919 + step) * 64 + m });
            // Normalised by the whole optimizer batch's response tokens: accumulation equals one big batch.
            return tf.div(maskedNll(logits, targets, lossMask), lossTokens) as tf.Scalar;
          }, model.trainableVariables());
        });
        lossSum += (await value.data())[0]!;
        value.dispose();
        accumulated.add(grads);
        windowTokens += b.inputTokens;
      }
      const lr = learningRate(s, step, totalSteps);
      const norm = await accumulated.step(optimizer, s.gradClip, lr);
      step += 1;
      losses.push({ step, loss: lossSum });
      const now = Date.now();
      hooks.onProgress?.({ step, total: totalSteps, epoch, loss: lossSum, lr, gradNorm: norm, tokensPerSecond: (windowTokens * 1000) / Math.max(1, now - windowStart) });
      windowStart = now;
      windowTokens = 0;
      if (step < totalSteps && (step % s.checkpointEverySteps === 0 || now - lastSave >= s.checkpointEverySeconds * 1000)) await save();
    }
    await save();
    return { step, totalSteps, resumedFrom, losses, stopped: false };
  } finally {
    optimizer.dispose();
  }
}
