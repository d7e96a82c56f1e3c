import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../core/compute/backend';
import { loadCheckpoint, saveCheckpoint } from '../../core/model/checkpoint';
import { ModelConfig } from '../../core/model/config';
import { DecoderModel } from '../../core/model/decoder';
import { LocalStore } from '../../core/store/local';
import { trainDpo, type DpoSettings, type PreferencePair } from '../../core/train/dpo';
import { dpoMetrics } from '../../core/train/dpo-loss';
import { responseLogProbs } from '../../core/train/logprobs';
import { TrainingStateStore } from '../../core/train/state';
import { tempDir } from '../support/servers';

const config = ModelConfig.parse({
  family: 'llama', vocabSize: 24, hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 8,
  intermediateSize: 64, maxPositions: 32, normEps: 1e-5, tieEmbeddings: false, padTokenId: 0, eosTokenId: 1,
});

/** Chosen: the prompt reversed; rejected: the prompt repeated. */
function pairs(n: number): PreferencePair[] {
  return Array.from({ length: n }, (_, i) => {
    const prompt = [2 + (i % 7), 3 + ((i * 5) % 11), 4 + ((i * 3) % 13), 23];
    const body = prompt.slice(0, 3);
    return { prompt, chosen: [...body].reverse().concat([1]), rejected: [...body, 1] };
  });
}

const settings = (over: Partial<DpoSettings> = {}): DpoSettings => ({
  lr: 2e-3, lrEnd: 2e-4, schedule: 'cosine', warmupSteps: 2, batchSize: 8, gradientAccumulation: 2, epochs: 100, dropout: 0,
  weightDecay: 0, gradClip: 1, checkpointEverySteps: 1000, checkpointEverySeconds: 3600, seed: 1, beta: 0.1, loss: 'sigmoid', maxSteps: 30, ...over,
});

async function weightsOf(model: DecoderModel): Promise<number[]> {
  const parts = await Promise.all([...model.params.values()].map((v) => v.data()));
  return parts.flatMap((p) => Array.from(p));
}

describe('DPO trainer', () => {
  let tmp: ReturnType<typeof tempDir>;
  before(async () => {
    await initBackend(undefined, () => undefined);
    tmp = tempDir('dpo');
  });
  after(() => tmp.remove());

  it('raises rewards/accuracies and rewards/margins, and the implied rewards recomputed from saved checkpoints agree with the log', async () => {
    const data = pairs(16);
    const policy = DecoderModel.initialise(config, 7);
    const refDir = path.join(tmp.dir, 'reference');
    await saveCheckpoint(policy, refDir);
    const counts: number[] = [];
    const result = await trainDpo(policy, data, settings({ lr: 5e-3, lrEnd: 5e-4 }), { onMetrics: () => counts.push(tf.memory().numTensors) });
    const first = result.history[0]!;
    const last = result.history.at(-1)!;
    assert.ok(last['rewards/margins'] > first['rewards/margins'] + 0.5, `margins ${first['rewards/margins']} → ${last['rewards/margins']}`);
    assert.equal(result.final!['rewards/accuracies'], 1);
    assert.ok(result.final!.loss < first.loss, `loss ${first.loss} → ${result.final!.loss}`);
    assert.equal(new Set(counts.slice(1)).size, 1, 'flat tensor count');

    // Independently of the trainer: reload policy and reference from disk, recompute log-probs and rewards.
    const policyDir = path.join(tmp.dir, 'policy');
    await saveCheckpoint(policy, policyDir);
    const [p, r] = [loadCheckpoint(policyDir).model, loadCheckpoint(refDir).model];
    const lp = (m: DecoderModel, key: 'chosen' | 'rejected') => Array.from(responseLogProbs(m, data.map((x) => ({ prompt: x.prompt, response: x[key] }))).dataSync());
    const recomputed = dpoMetrics(lp(p, 'chosen'), lp(p, 'rejected'), lp(r, 'chosen'), lp(r, 'rejected'), 0.1);
    for (const key of Object.keys(recomputed) as (keyof typeof recomputed)[]) {
      assert.ok(Math.abs(recomputed[key]! - result.final![key]!) < 1e-4, `${key}: recomputed ${recomputed[key]} vs logged ${result.final![key]}`);
    }
    for (const m of [policy, p, r]) m.dispose();
  });

  it('resumes exactly from saved state, reading the stored reference instead of recomputing it', async () => {
    const data = pairs(16);
    const s = settings({ maxSteps: 10, dropout: 0.1 });
    const straight = DecoderModel.initialise(config, 3);
    const full = await trainDpo(straight, data, s);

    const store = new LocalStore(path.join(tmp.dir, 'state'));
    const first = DecoderModel.initialise(config, 3);
    const stop = new AbortController();
    const part = await trainDpo(first, data, s, { state: new TrainingStateStore(store, 'dpo'), signal: stop.signal, onMetrics: (m) => { if (m.step === 4) stop.abort(); } });
    assert.equal(part.stopped, true);
    first.dispose();
    const second = DecoderModel.initialise(config, 3);
    const resumed = await trainDpo(second, data, s, { state: new TrainingStateStore(store, 'dpo') });
    assert.equal(resumed.resumedFrom, 4);
    assert.deepEqual(resumed.reference, full.reference);
    const [a, b] = [await weightsOf(straight), await weightsOf(second)];
    const diff = Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
    assert.ok(diff < 1e-6, `resumed weights differ by ${diff}`);
    straight.dispose();
    second.dispose();
  });
});
