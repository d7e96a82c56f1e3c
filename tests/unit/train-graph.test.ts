/**
 * The native backend's training graph (core/model/train-graph.ts) against the eager tape it
 * replaces in SFT: the loss and every parameter's gradient on padded batches of both families
 * (grouped-query attention, tied and untied embeddings), whole training runs through either path
 * ending with the same weights, and no tensors left behind. The gradients are libtensorflow's
 * (SymbolicGradient); the reference is tfjs's own autodiff of `DecoderModel.forward`.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../core/compute/backend';
import { graphsAvailable } from '../../core/compute/graph';
import { fromHfConfig, type ModelConfig } from '../../core/model/config';
import { DecoderModel, positionsFromMask } from '../../core/model/decoder';
import { MAX_ONE_HOT, runTrainGraph, trainGraph, trainGraphUsable } from '../../core/model/train-graph';
import { Rng } from '../../core/random';
import { maskedNll, trainSft, type SftExample } from '../../core/train/sft';
import { withGraphs } from '../support/graphs';

const CONFIGS: [string, ModelConfig][] = [
  ['llama (GQA, untied)', fromHfConfig({ model_type: 'llama', vocab_size: 60, hidden_size: 32, intermediate_size: 40, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64, rms_norm_eps: 1e-5, tie_word_embeddings: false, rope_theta: 500 })],
  ['llama (tied)', fromHfConfig({ model_type: 'llama', vocab_size: 60, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 2, max_position_embeddings: 64, rms_norm_eps: 1e-6, tie_word_embeddings: true, rope_theta: 10000 })],
  ['gpt2', fromHfConfig({ model_type: 'gpt2', vocab_size: 60, n_embd: 32, n_layer: 2, n_head: 4, n_positions: 64, layer_norm_epsilon: 1e-5 })],
];

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
    const run = async (graphs: boolean) => {
      const model = DecoderModel.initialise(config, 8);
      const counts: number[] = [];
      const result = await withGraphs(graphs, () => trainSft(model, examples, settings, { onProgress: () => counts.push(tf.memory().numTensors) }));
      const weights = await model.weights();
      model.dispose();
      return { result, weights, counts };
    };
    const graph = await run(true);
    const eager = await run(false);
    assert.equal(new Set(graph.counts.slice(1)).size, 1, `tensor count per step: ${[...new Set(graph.counts)].join(', ')}`);
    const first = graph.result.losses[0]!.loss;
    const last = graph.result.losses.at(-1)!.loss;
    assert.ok(last < first - 0.5, `the loss should fall: ${first} → ${last}`);
    for (const [i, l] of graph.result.losses.entries()) assert.ok(Math.abs(l.loss - eager.result.losses[i]!.loss) < 1e-3, `step ${l.step}: loss ${l.loss} vs ${eager.result.losses[i]!.loss}`);
    let worst = 0;
    for (const [name, w] of graph.weights) {
      const e = eager.weights.get(name)!.data;
      for (let i = 0; i < w.data.length; i++) worst = Math.max(worst, Math.abs(w.data[i]! - e[i]!));
    }
    assert.ok(worst < 1e-4, `weights after 20 steps differ by ${worst}`);
  });

  it('seed 0 initialises the same weights every time (tfjs reads a 0 seed as none)', async () => {
    const config = CONFIGS[0]![1];
    const [a, b] = [DecoderModel.initialise(config, 0), DecoderModel.initialise(config, 0)];
    for (const [name, v] of a.params) assert.equal(tf.tidy(() => tf.max(tf.abs(tf.sub(v, b.p(name)))).dataSync()[0]), 0, name);
    a.dispose();
    b.dispose();
  });
});
