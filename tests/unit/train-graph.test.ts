/**
 * The native backend's training graph (core/model/train-graph.ts) against the eager tape it
 * replaces in SFT: the loss and every parameter's gradient on padded batches of both families
 * (grouped-query attention, tied and untied embeddings), whole training runs through either path
 * ending with the same weights, and no tensors left behind; the same for DPO's objective (sigmoid
 * and IPO, with and without the NLL term) against dpo-loss.ts's eager loss. The gradients are
 * libtensorflow's (SymbolicGradient); the reference is tfjs's own autodiff of `DecoderModel.forward`.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../core/compute/backend';
import { graphsAvailable, withGraphs } from '../../core/compute/graph';
import { fromHfConfig, type ModelConfig } from '../../core/model/config';
import { DecoderModel, positionsFromMask } from '../../core/model/decoder';
import { MAX_ONE_HOT, runTrainGraph, trainGraph, trainGraphUsable } from '../../core/model/train-graph';
import { Rng } from '../../core/random';
import { maskedNll, trainSft, type SftExample } from '../../core/train/sft';
import { trainDpo, type DpoSettings, type PreferencePair } from '../../core/train/dpo';
import { dpoLoss, type DpoLossType } from '../../core/train/dpo-loss';
import { padPromptResponse } from '../../core/train/batches';
import { responseLogProbs } from '../../core/train/logprobs';

const CONFIGS: [string, ModelConfig][] = [
  ['llama (GQA, untied)', fromHfConfig({ model_type: 'llama', vocab_size: 60, hidden_size: 32, intermediate_size: 40, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64, rms_norm_eps: 1e-5, tie_word_embeddings: false, rope_theta: 500 })],
  ['llama (tied)', fromHfConfig({ model_type: 'llama', vocab_size: 60, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 2, max_position_embeddings: 64, rms_norm_eps: 1e-6, tie_word_embeddings: true, rope_theta: 10000 })],
  ['gpt2', fromHfConfig({ model_type: 'gpt2', vocab_size: 60, n_embd: 32, n_layer: 2, n_head: 4, n_positions: 64, layer_norm_epsilon: 1e-5 })],
];

/** Random preference pairs: prompts of 2-5 tokens, responses of 1-8. */
function preferencePairs(n: number, vocab: number, seed: number): PreferencePair[] {
  const rng = new Rng(seed);
  const tokens = (lo: number, hi: number) => Array.from({ length: lo + rng.int(hi - lo + 1) }, () => 1 + rng.int(vocab - 1));
  return Array.from({ length: n }, () => ({ prompt: tokens(2, 5), chosen: tokens(1, 8), rejected: tokens(1, 8) }));
}

/** Largest |a − b| over two tensors, and largest |b|. */
function gap(a: tf.Tensor, b: tf.Tensor): [number, number] {
  return tf.tidy(() => [tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!, tf.max(tf.abs(b)).dataSync()[0]!]);
}

/** Right-padded rows of these lengths; the first two targets of each row are prompt (weight 0). */
function batch(lengths: number[], T: number, vocab: number, seed: number) {
  const rng = new Rng(seed);
  const rows = (f: (t: number, n: number) => number) => lengths.map((n) => Array.from({ length: T }, (_, t) => (t < n ? f(t, n) : 0)));
  const ids = rows(() => 1 + rng.int(vocab - 1));
  const targets = rows(() => 1 + rng.int(vocab - 1));
  const mask = rows(() => 1);
  const lossMask = rows((t) => (t >= 2 ? 1 : 0));
  const tokens = lossMask.flat().reduce((a, b) => a + b, 0);
  return { ids, targets, mask, lossMask, tokens };
}

/**
 * Trains a fresh model (seed 8) through the graph and then eagerly; asserts that the graph run's
 * tensor count stays flat from step to step. Returns both runs' results and the largest weight gap.
 */
async function bothPaths<R>(config: ModelConfig, train: (model: DecoderModel, onProgress: () => void) => Promise<R>): Promise<{ graph: R; eager: R; worst: number }> {
  const run = async (graphs: boolean) => {
    const model = DecoderModel.initialise(config, 8);
    const counts: number[] = [];
    const result = await withGraphs(graphs, () => train(model, () => counts.push(tf.memory().numTensors)));
    const weights = await model.weights();
    model.dispose();
    return { result, weights, counts };
  };
  const graph = await run(true);
  const eager = await run(false);
  assert.equal(new Set(graph.counts.slice(1)).size, 1, `tensor count per step: ${[...new Set(graph.counts)].join(', ')}`);
  let worst = 0;
  for (const [name, w] of graph.weights) {
    const e = eager.weights.get(name)!.data;
    for (let i = 0; i < w.data.length; i++) worst = Math.max(worst, Math.abs(w.data[i]! - e[i]!));
  }
  return { graph: graph.result, eager: eager.result, worst };
}

describe('training graph', () => {
  before(async () => {
    await initBackend(undefined, () => undefined);
  });

  it('is used only where it can be: native backend, no dropout, one-hots within bounds', (t) => {
    const c = CONFIGS[0]![1];
    assert.equal(trainGraphUsable(c, 4, 16, 0.1), false);
    assert.equal(trainGraphUsable(c, 4, 16, 0), graphsAvailable());
    assert.equal(trainGraphUsable(c, MAX_ONE_HOT / c.vocabSize, 2, 0), false);
    if (!graphsAvailable()) t.diagnostic(`no graphs on ${tf.getBackend()}`);
  });

  for (const [family, config] of CONFIGS) {
    it(`${family}: loss and every gradient match the eager tape on a padded batch`, async (t) => {
      if (!graphsAvailable()) return t.diagnostic(`no graphs on ${tf.getBackend()}`);
      const model = DecoderModel.initialise(config, 5);
      const graph = await trainGraph(config);
      const b = batch([9, 6, 3], 9, config.vocabSize, 7);
      const ids = tf.tensor2d(b.ids, undefined, 'int32');
      const mask = tf.tensor2d(b.mask, undefined, 'int32');
      const targets = tf.tensor2d(b.targets, undefined, 'int32');
      const lossMask = tf.tensor2d(b.lossMask, undefined, 'float32');
      const weights = tf.div(lossMask, b.tokens) as tf.Tensor2D;
      const before = tf.memory().numTensors;
      const fromGraph = runTrainGraph(graph, model, { ids, mask, targets, weights });
      const eager = tf.variableGrads(() => {
        const { logits } = model.forward(ids, positionsFromMask(mask), mask, { training: true });
        return tf.div(maskedNll(logits, targets, lossMask), b.tokens) as tf.Scalar;
      }, model.trainableVariables());
      const loss = fromGraph.loss.dataSync()[0]!;
      assert.ok(Math.abs(loss - eager.value.dataSync()[0]!) < 1e-5, `loss ${loss} vs ${eager.value.dataSync()[0]}`);
      assert.ok(loss > 3, `an untrained model's loss is about ln(vocab), got ${loss}`);
      assert.deepEqual(Object.keys(fromGraph.grads).sort(), Object.keys(eager.grads).sort());
      for (const [name, v] of model.params) {
        const [g, e] = [fromGraph.grads[v.name]!, eager.grads[v.name]!];
        assert.deepEqual(g.shape, e.shape, name);
        const [diff, scale] = tf.tidy(() => [tf.max(tf.abs(tf.sub(g, e))).dataSync()[0]!, tf.max(tf.abs(e)).dataSync()[0]!]);
        assert.ok(scale > 0, `${name}: an all-zero eager gradient tests nothing`);
        assert.ok(diff <= 1e-5 * Math.max(1, scale), `${name}: gradients differ by ${diff} (scale ${scale})`);
      }
      tf.dispose([fromGraph.loss, ...Object.values(fromGraph.grads), eager.value, ...Object.values(eager.grads)]);
      assert.equal(tf.memory().numTensors, before, 'tensors left behind');
      tf.dispose([ids, mask, targets, lossMask, weights]);
      model.dispose();
    });
  }

  it('SFT through the graph ends with the eager run\'s weights, with a flat tensor count', async (t) => {
    if (!graphsAvailable()) return t.diagnostic(`no graphs on ${tf.getBackend()}`);
    const config = CONFIGS[0]![1];
    const rng = new Rng(3);
    const examples: SftExample[] = Array.from({ length: 24 }, () => ({
      prompt: Array.from({ length: 2 + rng.int(4) }, () => 1 + rng.int(59)),
      response: Array.from({ length: 1 + rng.int(8) }, () => 1 + rng.int(59)),
    }));
    const settings = {
      lr: 1e-2, lrEnd: 1e-3, schedule: 'cosine' as const, warmupSteps: 2, batchSize: 8, gradientAccumulation: 2, epochs: 1, dropout: 0,
      weightDecay: 0.01, gradClip: 1, maxSeqLen: 16, checkpointEverySteps: 1000, checkpointEverySeconds: 3600, seed: 4, maxSteps: 20,
    };
    // Micro-batches of 4 rows up to maxSeqLen: the trainer takes the graph (else this compares eager with eager).
    assert.ok(trainGraphUsable(config, 4, settings.maxSeqLen, 0));
    const { graph, eager, worst } = await bothPaths(config, (model, onProgress) => trainSft(model, examples, settings, { onProgress }));
    const first = graph.losses[0]!.loss;
    const last = graph.losses.at(-1)!.loss;
    assert.ok(last < first - 0.5, `the loss should fall: ${first} → ${last}`);
    for (const [i, l] of graph.losses.entries()) assert.ok(Math.abs(l.loss - eager.losses[i]!.loss) < 1e-3, `step ${l.step}: loss ${l.loss} vs ${eager.losses[i]!.loss}`);
    assert.ok(worst < 1e-4, `weights after 20 steps differ by ${worst}`);
  });

  // [loss, NLL weight, how far the reference is off the policy: 0 is DPO's first step, every margin 0]
  const objectives: [DpoLossType, number, number][] = [['sigmoid', 0, 0], ['sigmoid', 1, 2], ['ipo', 0.5, 2]];
  for (const [[family, config], [loss, nllWeight, offset]] of CONFIGS.flatMap((c, i) => [[c, objectives[i]!]] as const)) {
    it(`${family}: DPO (${loss}, NLL weight ${nllWeight}, reference ±${offset}): loss, log-probs and every gradient match the eager tape`, async (t) => {
      if (!graphsAvailable()) return t.diagnostic(`no graphs on ${tf.getBackend()}`);
      const model = DecoderModel.initialise(config, 6);
      const graph = await trainGraph(config, { loss, nll: nllWeight > 0 });
      const part = preferencePairs(3, config.vocabSize, 9);
      const chosen = part.map((p) => ({ prompt: p.prompt, response: p.chosen }));
      const rejected = part.map((p) => ({ prompt: p.prompt, response: p.rejected }));
      // The reference off the policy by up to ±offset, so the margins are neither 0 nor alike, or
      // (offset 0) the policy itself, where softplus's slope must come out 1/2.
      const rng = new Rng(2);
      const logProbs = (rows: typeof chosen) => tf.tidy(() => Array.from(responseLogProbs(model, rows).dataSync()));
      const refChosen = logProbs(chosen).map((x) => x + (rng.next() * 2 - 1) * offset);
      const refRejected = logProbs(rejected).map((x) => x + (rng.next() * 2 - 1) * offset);
      const [beta, scale] = [0.5, 0.5];
      const b = padPromptResponse([...chosen, ...rejected], 0);
      const inputs = {
        ids: tf.tensor2d(b.ids, undefined, 'int32'), mask: tf.tensor2d(b.mask, undefined, 'int32'), targets: tf.tensor2d(b.targets, undefined, 'int32'),
        weights: tf.tensor2d(b.lossMask, undefined, 'float32'), reference: tf.tensor1d([...refChosen, ...refRejected]), beta: tf.scalar(beta), scale: tf.scalar(scale),
        ...(nllWeight ? { nllWeight: tf.scalar(nllWeight), invLengths: tf.tensor1d(part.map((p) => 1 / p.chosen.length)) } : {}),
      };
      const before = tf.memory().numTensors;
      const fromGraph = runTrainGraph(graph, model, inputs);
      const eager = tf.variableGrads(() => {
        const c = responseLogProbs(model, chosen, 0, { training: true });
        const r = responseLogProbs(model, rejected, 0, { training: true });
        const nll = nllWeight ? { weight: nllWeight, chosenLengths: tf.tensor1d(part.map((p) => p.chosen.length)) } : undefined;
        return tf.mul(dpoLoss(c, r, tf.tensor1d(refChosen), tf.tensor1d(refRejected), beta, loss, nll), scale) as tf.Scalar;
      }, model.trainableVariables());
      const value = fromGraph.loss.dataSync()[0]!;
      assert.ok(Math.abs(value - eager.value.dataSync()[0]!) < 1e-5, `loss ${value} vs ${eager.value.dataSync()[0]}`);
      const policy = [...logProbs(chosen), ...logProbs(rejected)];
      const logps = fromGraph.logps!.dataSync();
      assert.equal(logps.length, 6);
      logps.forEach((x, i) => assert.ok(Math.abs(x - policy[i]!) < 1e-4, `log-prob ${i}: ${x} vs ${policy[i]}`));
      for (const [name, v] of model.params) {
        const [diff, size] = gap(fromGraph.grads[v.name]!, eager.grads[v.name]!);
        assert.ok(size > 0, `${name}: an all-zero eager gradient tests nothing`);
        assert.ok(diff <= 1e-5 * Math.max(1, size), `${name}: gradients differ by ${diff} (scale ${size})`);
      }
      tf.dispose([fromGraph.loss, fromGraph.logps!, ...Object.values(fromGraph.grads), eager.value, ...Object.values(eager.grads)]);
      assert.equal(tf.memory().numTensors, before, 'tensors left behind');
      tf.dispose(Object.values(inputs));
      model.dispose();
    });
  }

  it('DPO through the graph ends with the eager run\'s weights and metrics, with a flat tensor count', async (t) => {
    if (!graphsAvailable()) return t.diagnostic(`no graphs on ${tf.getBackend()}`);
    const config = CONFIGS[0]![1];
    const data = preferencePairs(16, config.vocabSize, 11);
    const settings: DpoSettings = {
      lr: 5e-3, lrEnd: 5e-4, schedule: 'cosine', warmupSteps: 2, batchSize: 8, gradientAccumulation: 2, epochs: 100, dropout: 0,
      weightDecay: 0.01, gradClip: 1, checkpointEverySteps: 1000, checkpointEverySeconds: 3600, seed: 2, beta: 0.1, loss: 'sigmoid', nllWeight: 1, maxSteps: 15,
    };
    // Micro-batches of 4 pairs (8 rows) up to 12 tokens: the trainer takes the graph.
    assert.ok(trainGraphUsable(config, 8, 12, 0));
    const { graph, eager, worst } = await bothPaths(config, (model, onProgress) => trainDpo(model, data, settings, { onProgress }));
    const [first, last] = [graph.history[0]!, graph.history.at(-1)!];
    assert.ok(last['rewards/margins'] > first['rewards/margins'] + 0.05, `margins should grow: ${first['rewards/margins']} → ${last['rewards/margins']}`);
    for (const [i, h] of graph.history.entries()) {
      const e = eager.history[i]!;
      for (const key of ['loss', 'rewards/margins', 'logps/chosen', 'logps/rejected', 'grad_norm'] as const) {
        assert.ok(Math.abs(h[key] - e[key]) < 1e-3 * Math.max(1, Math.abs(e[key])), `step ${h.step} ${key}: ${h[key]} vs ${e[key]}`);
      }
    }
    assert.ok(worst < 1e-4, `weights after 15 steps differ by ${worst}`);
  });

  it('seed 0 initialises the same weights every time (tfjs reads a 0 seed as none)', async () => {
    const config = CONFIGS[0]![1];
    const [a, b] = [DecoderModel.initialise(config, 0), DecoderModel.initialise(config, 0)];
    for (const [name, v] of a.params) assert.equal(tf.tidy(() => tf.max(tf.abs(tf.sub(v, b.p(name)))).dataSync()[0]), 0, name);
    a.dispose();
    b.dispose();
  });
});
