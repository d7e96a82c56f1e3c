/**
 * DPO training: the policy starts as the reference; the reference's summed response log-probs are
 * computed once (eval mode), stored with the training state, and never recomputed — a resumed run
 * reads them back instead of asking the half-trained policy. Optimizer, schedule, clipping,
 * accumulation and exact resume work as in SFT (see sft.ts); metrics carry TRL's names. On the
 * native backend a micro-batch is one call of the training graph with DPO's objective
 * (model/train-graph.ts), which also returns the policy's log-probs; elsewhere, with dropout, or
 * with one-hots too large for the graph, it runs eagerly through dpo-loss.ts.
 */
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs-core';
import { canonicalJson } from '../canonical-json';
import { InvalidInputError } from '../errors';
import type { GraphFunction } from '../compute/graph';
import type { DecoderModel } from '../model/decoder';
import { runTrainGraph, trainGraph, trainGraphUsable } from '../model/train-graph';
import { EpochOrder, padPromptResponse } from './batches';
import { dpoLoss, dpoMetrics, type DpoLossType, type DpoMetrics } from './dpo-loss';
import { responseLogProbs } from './logprobs';
import { AdamW, DEFAULT_ADAMW, GradientAccumulator } from './optimizer';
import { learningRate } from './schedule';
import type { SftSettings, TrainHooks } from './sft';
import type { TrainStateInfo } from './state';

export interface PreferencePair {
  prompt: number[];
  chosen: number[];
  rejected: number[];
}

export interface DpoSettings extends Omit<SftSettings, 'maxSeqLen'> {
  beta: number;
  loss: DpoLossType;
  /** Weight α of an NLL term on the chosen responses (0 or absent: plain DPO). */
  nllWeight?: number;
}

export interface DpoProgress extends DpoMetrics {
  step: number;
  total: number;
  grad_norm: number;
  learning_rate: number;
}

export interface DpoResult {
  step: number;
  totalSteps: number;
  resumedFrom: number;
  history: DpoProgress[];
  /** Metrics over every pair with the final policy, in eval mode (no dropout); absent when stopped early. */
  final?: DpoMetrics;
  reference: { chosen: number[]; rejected: number[] };
  stopped: boolean;
}

async function logProbsOf(model: DecoderModel, pairs: PreferencePair[], pad: number, chunk = 16): Promise<{ chosen: number[]; rejected: number[] }> {
  const chosen: number[] = [];
  const rejected: number[] = [];
  for (let i = 0; i < pairs.length; i += chunk) {
    const part = pairs.slice(i, i + chunk);
    const c = responseLogProbs(model, part.map((p) => ({ prompt: p.prompt, response: p.chosen })), pad);
    const r = responseLogProbs(model, part.map((p) => ({ prompt: p.prompt, response: p.rejected })), pad);
    chosen.push(...(await c.data()));
    rejected.push(...(await r.data()));
    tf.dispose([c, r]);
  }
  return { chosen, rejected };
}

/**
 * One micro-batch through the DPO training graph (model/train-graph.ts): its chosen rows then its
 * rejected ones in one padded batch. Returns the loss times `scale`, the gradients, and the
 * policy's log-probs of the chosen and rejected responses.
 */
function graphStep(
  graph: GraphFunction, model: DecoderModel, part: PreferencePair[], reference: { chosen: number[]; rejected: number[] }, s: DpoSettings, scale: number, pad: number,
): { value: tf.Scalar; grads: tf.NamedTensorMap; logps: tf.Tensor1D } {
  const b = padPromptResponse([...part.map((p) => ({ prompt: p.prompt, response: p.chosen })), ...part.map((p) => ({ prompt: p.prompt, response: p.rejected }))], pad);
  const inputs: Record<string, tf.Tensor> = {
    ids: tf.tensor2d(b.ids, undefined, 'int32'),
    mask: tf.tensor2d(b.mask, undefined, 'int32'),
    targets: tf.tensor2d(b.targets, undefined, 'int32'),
    weights: tf.tensor2d(b.lossMask, undefined, 'float32'),
    reference: tf.tensor1d([...reference.chosen, ...reference.rejected]),
    beta: tf.scalar(s.beta),
    scale: tf.scalar(scale),
    ...(s.nllWeight ? { nllWeight: tf.scalar(s.nllWeight), invLengths: tf.tensor1d(part.map((p) => 1 / p.chosen.length)) } : {}),
  };
  try {
    const { loss, grads, logps } = runTrainGraph(graph, model, inputs as Parameters<typeof runTrainGraph>[2]);
    return { value: loss, grads, logps: logps! };
  } finally {
    tf.dispose(Object.values(inputs));
  }
}

export function dpoFingerprint(pairs: PreferencePair[], s: DpoSettings): string {
  const data = createHash('sha256');
  for (const p of pairs) data.update(`${p.prompt.join(',')}|${p.chosen.join(',')}|${p.rejected.join(',')}\n`);
  const { checkpointEverySteps: _a, checkpointEverySeconds: _b, ...rest } = s;
  return createHash('sha256').update(canonicalJson({ kind: 'dpo', data: data.digest('hex'), settings: rest })).digest('hex').slice(0, 16);
}

export async function trainDpo(model: DecoderModel, pairs: PreferencePair[], s: DpoSettings, hooks: TrainHooks & { onMetrics?: (p: DpoProgress) => void } = {}): Promise<DpoResult> {
  if (pairs.length < s.batchSize) throw new InvalidInputError(`DPO needs at least batchSize=${s.batchSize} pairs, got ${pairs.length}`);
  if (s.batchSize % s.gradientAccumulation !== 0) throw new InvalidInputError(`batchSize ${s.batchSize} must be a multiple of gradientAccumulation ${s.gradientAccumulation}`);
  pairs.forEach((p, i) => {
    if (p.chosen.length === 0 || p.rejected.length === 0) throw new InvalidInputError(`pair ${i} has an empty chosen or rejected response`);
  });
  const pad = s.padTokenId ?? model.config.padTokenId ?? 0;
  const order = new EpochOrder(pairs.length, s.batchSize, s.seed);
  const totalSteps = s.maxSteps ?? Math.max(1, Math.ceil(order.stepsPerEpoch * s.epochs));
  const micro = s.batchSize / s.gradientAccumulation;
  const fingerprint = dpoFingerprint(pairs, s);
  const optimizer = new AdamW(model.params, { ...DEFAULT_ADAMW, weightDecay: s.weightDecay });
  const history: DpoProgress[] = [];
  let step = 0;
  try {
    // The reference is the policy before any update: computed once, stored, read back on resume.
    let reference = hooks.state ? await hooks.state.getJson<{ fingerprint: string; chosen: number[]; rejected: number[] }>('reference-logps.json') : undefined;
    if (reference && reference.fingerprint !== fingerprint) throw new InvalidInputError('stored reference log-probs belong to other pairs or settings; use a new state prefix');
    const restored = hooks.state ? await hooks.state.restoreLatest(model, optimizer, fingerprint) : undefined;
    if (restored) step = restored.step;
    if (!reference) {
      if (restored) throw new InvalidInputError('saved DPO state has no stored reference log-probs; cannot resume');
      reference = { fingerprint, ...(await logProbsOf(model, pairs, pad)) };
      if (hooks.state) await hooks.state.putJson('reference-logps.json', reference);
    }
    const ref = reference;
    const resumedFrom = step;
    // On the native backend each micro-batch (its chosen rows, then its rejected ones) trains as one
    // graph call (model/train-graph.ts) when the longest pair fits; dropout and very large one-hots
    // stay eager, as in SFT.
    const longest = pairs.reduce((n, p) => Math.max(n, p.prompt.length + Math.max(p.chosen.length, p.rejected.length) - 1), 0);
    const graph = trainGraphUsable(model.config, 2 * micro, longest, s.dropout) ? await trainGraph(model.config, { loss: s.loss, nll: Boolean(s.nllWeight) }) : undefined;
    let lastSave = Date.now();
    // Input tokens (chosen and rejected rows) since the last progress report, for tokens/s.
    let windowStart = Date.now();
    let windowTokens = 0;
    const save = async () => {
      if (!hooks.state) return;
      const info: TrainStateInfo = { step, totalSteps, fingerprint, backend: hooks.backend ?? tf.getBackend(), lossHistory: history.map((h) => ({ step: h.step, loss: h.loss })), savedAt: new Date().toISOString() };
      await hooks.state.save(model, optimizer, info);
      lastSave = Date.now();
      hooks.onSaved?.(step);
    };

    while (step < totalSteps) {
      await new Promise<void>((resolve) => setImmediate(resolve)); // let signals and heartbeats through
      if (hooks.signal?.aborted) {
        await save();
        return { step, totalSteps, resumedFrom, history, reference: ref, stopped: true };
      }
      const epoch = order.epoch(step);
      const indices = order.batch(step);
      for (const i of indices) windowTokens += 2 * pairs[i]!.prompt.length + pairs[i]!.chosen.length + pairs[i]!.rejected.length - 2;
      const accumulated = new GradientAccumulator(model.params);
      const pol = { chosen: [] as number[], rejected: [] as number[] };
      for (let m = 0; m < s.gradientAccumulation; m++) {
        const idx = indices.slice(m * micro, (m + 1) * micro);
        const part = idx.map((i) => pairs[i]!);
        if (graph) {
          const refs = { chosen: idx.map((i) => ref.chosen[i]!), rejected: idx.map((i) => ref.rejected[i]!) };
          const { value, grads, logps } = graphStep(graph, model, part, refs, s, 1 / s.gradientAccumulation, pad);
          value.dispose();
          const both = (await logps.data()) as Float32Array;
          logps.dispose();
          pol.chosen.push(...both.subarray(0, micro));
          pol.rejected.push(...both.subarray(micro));
          accumulated.add(grads);
          continue;
        }
        let kept: tf.Tensor1D[] = [];
        const { value, grads } = tf.variableGrads(() => {
          const seed = (s.seed * 7919 + step) * 64 + m;
          const c = responseLogProbs(model, part.map((p) => ({ prompt: p.prompt, response: p.chosen })), pad, { training: true, dropout: s.dropout, seed });
          const r = responseLogProbs(model, part.map((p) => ({ prompt: p.prompt, response: p.rejected })), pad, { training: true, dropout: s.dropout, seed: seed + 32 });
          kept = [tf.keep(c.clone()), tf.keep(r.clone())];
          const nll = s.nllWeight ? { weight: s.nllWeight, chosenLengths: tf.tensor1d(part.map((p) => p.chosen.length)) } : undefined;
          const loss = dpoLoss(c, r, tf.tensor1d(idx.map((i) => ref.chosen[i]!)), tf.tensor1d(idx.map((i) => ref.rejected[i]!)), s.beta, s.loss, nll);
          // Each micro-batch is a 1/accumulation share of the optimizer batch's mean.
          return tf.div(loss, s.gradientAccumulation) as tf.Scalar;
        }, model.trainableVariables());
        value.dispose();
        pol.chosen.push(...(await kept[0]!.data()));
        pol.rejected.push(...(await kept[1]!.data()));
        tf.dispose(kept);
        accumulated.add(grads);
      }
      const lr = learningRate(s, step, totalSteps);
      const norm = await accumulated.step(optimizer, s.gradClip, lr);
      step += 1;
      const nllOf = (idx: number[]) => (s.nllWeight ? { weight: s.nllWeight, chosenLengths: idx.map((i) => pairs[i]!.chosen.length) } : undefined);
      const metrics = dpoMetrics(pol.chosen, pol.rejected, indices.map((i) => ref.chosen[i]!), indices.map((i) => ref.rejected[i]!), s.beta, s.loss, nllOf(indices));
      const progress: DpoProgress = { step, total: totalSteps, ...metrics, grad_norm: norm, learning_rate: lr };
      history.push(progress);
      hooks.onMetrics?.(progress);
      const now = Date.now();
      hooks.onProgress?.({ step, total: totalSteps, epoch, loss: metrics.loss, lr, gradNorm: norm, tokensPerSecond: (windowTokens * 1000) / Math.max(1, now - windowStart) });
      windowStart = now;
      windowTokens = 0;
      if (step < totalSteps && (step % s.checkpointEverySteps === 0 || Date.now() - lastSave >= s.checkpointEverySeconds * 1000)) await save();
    }
    await save();
    const finalLogps = await logProbsOf(model, pairs, pad);
    const final = dpoMetrics(finalLogps.chosen, finalLogps.rejected, ref.chosen, ref.rejected, s.beta, s.loss, s.nllWeight ? { weight: s.nllWeight, chosenLengths: pairs.map((p) => p.chosen.length) } : undefined);
    return { step, totalSteps, resumedFrom, history, final, reference: ref, stopped: false };
  } finally {
    optimizer.dispose();
  }
}
