import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../core/compute/backend';
import { ModelConfig } from '../../core/model/config';
import { DecoderModel } from '../../core/model/decoder';
import { LocalStore } from '../../core/store/local';
import { learningRate } from '../../core/train/schedule';
import { maskedNll, trainSft, type SftExample, type SftSettings } from '../../core/train/sft';
import { TrainingStateStore } from '../../core/train/state';
import { tempDir } from '../support/servers';

const config = (family: 'llama' | 'gpt2') =>
  ModelConfig.parse({
    family, vocabSize: 24, hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: family === 'llama' ? 2 : 4, headDim: 8,
    intermediateSize: 64, maxPositions: 32, normEps: 1e-5, tieEmbeddings: family === 'gpt2', padTokenId: 0, eosTokenId: 1,
  });

/** A toy task: the response is the prompt reversed, then eos. */
function examples(n: number, seed: number): SftExample[] {
  let x = seed;
  const rand = () => ((x = (x * 1103515245 + 12345) % 2147483648) / 2147483648);
  return Array.from({ length: n }, () => {
    const prompt = Array.from({ length: 3 + Math.floor(rand() * 4) }, () => 2 + Math.floor(rand() * 20));
    return { prompt: [...prompt, 23], response: [...prompt].reverse().concat([1]) };
  });
}

const settings = (over: Partial<SftSettings> = {}): SftSettings => ({
  lr: 1e-2, lrEnd: 1e-3, schedule: 'cosine', warmupSteps: 5, batchSize: 8, gradientAccumulation: 1, epochs: 1, dropout: 0,
  weightDecay: 0.01, gradClip: 1, maxSeqLen: 24, checkpointEverySteps: 1000, checkpointEverySeconds: 3600, seed: 3, ...over,
});

async function weightsOf(model: DecoderModel): Promise<Float32Array> {
  const parts = await Promise.all([...model.params.values()].map((v) => v.data() as Promise<Float32Array>));
  return Float32Array.from(parts.flatMap((p) => Array.from(p)));
}

describe('SFT trainer', () => {
  before(async () => {
    await initBackend(undefined, () => undefined);
  });

  it('computes the loss on response tokens only (hand-computed)', () => {
    // Two positions, vocab 3. Position 0 is prompt (masked out), position 1 is response with target 2.
    const logits = tf.tensor3d([[[5, 1, 0], [1, 2, 3]]]);
    const targets = tf.tensor2d([[0, 2]], undefined, 'int32');
    const mask = tf.tensor2d([[0, 1]]);
    const expected = -(3 - Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3)));
    assert.ok(Math.abs(maskedNll(logits, targets, mask).dataSync()[0]! - expected) < 1e-5);
    tf.dispose([logits, targets, mask]);
  });

  it('follows warmup then cosine or linear decay', () => {
    const s = { lr: 1, lrEnd: 0.1, warmupSteps: 2, schedule: 'cosine' as const };
    assert.deepEqual([0, 1].map((i) => learningRate(s, i, 12)), [0.5, 1]);
    assert.ok(Math.abs(learningRate(s, 2, 12) - 1) < 1e-12);
    assert.ok(Math.abs(learningRate(s, 11, 12) - 0.1) < 1e-12);
    assert.ok(Math.abs(learningRate({ ...s, schedule: 'linear' }, 6.5, 12) - 0.55) < 1e-12);
    assert.equal(learningRate({ ...s, schedule: 'constant' }, 9, 12), 1);
  });

  for (const family of ['llama', 'gpt2'] as const) {
    it(`${family}: drives the training loss near zero on a small set, with a flat tensor count`, async () => {
      const model = DecoderModel.initialise(config(family), 1);
      const counts: number[] = [];
      const result = await trainSft(model, examples(16, 5), settings({ epochs: 100, maxSteps: 150, lr: 5e-3, lrEnd: 5e-4 }), {
        onProgress: () => counts.push(tf.memory().numTensors),
      });
      const first = result.losses[0]!.loss;
      const last = result.losses.at(-1)!.loss;
      assert.ok(first > 2, `initial loss ${first}`);
      assert.ok(last < 0.05, `final loss ${last} after ${result.step} steps`);
      assert.equal(new Set(counts.slice(1)).size, 1, `tensor count per step: ${[...new Set(counts)].join(', ')}`);
      model.dispose();
    });
  }

  it('gradient accumulation gives the same update as one big batch', async () => {
    const a = DecoderModel.initialise(config('llama'), 2);
    const b = DecoderModel.initialise(config('llama'), 2);
    await trainSft(a, examples(16, 9), settings({ maxSteps: 3, gradientAccumulation: 1 }));
    await trainSft(b, examples(16, 9), settings({ maxSteps: 3, gradientAccumulation: 4 }));
    const [wa, wb] = [await weightsOf(a), await weightsOf(b)];
    const diff = Math.max(...wa.map((v, i) => Math.abs(v - wb[i]!)));
    assert.ok(diff < 1e-5, `max weight difference ${diff}`);
    a.dispose();
    b.dispose();
  });

  // Dropout trains eagerly; without it, on the native backend, through the training graph.
  for (const dropout of [0.1, 0]) {
    it(`resumes exactly (dropout ${dropout}): stopped after step k and resumed, it ends with the weights of an uninterrupted run`, async () => {
      const tmp = tempDir('sft-resume');
      try {
        const data = examples(24, 11);
        const s = settings({ maxSteps: 12, dropout, checkpointEverySteps: 4 });
        const straight = DecoderModel.initialise(config('gpt2'), 4);
        await trainSft(straight, data, s);

        const store = new LocalStore(tmp.dir);
        const first = DecoderModel.initialise(config('gpt2'), 4);
        const stop = new AbortController();
        const interrupted = await trainSft(first, data, s, {
          state: new TrainingStateStore(store, 'runs/r/sft/state'),
          onProgress: (p) => { if (p.step === 6) stop.abort(); },
          signal: stop.signal,
        });
        assert.equal(interrupted.stopped, true);
        assert.equal(interrupted.step, 6);
        first.dispose();

        // A new process would start from the same initial weights and find the saved state.
        const second = DecoderModel.initialise(config('gpt2'), 4);
        const resumed = await trainSft(second, data, s, { state: new TrainingStateStore(store, 'runs/r/sft/state') });
        assert.equal(resumed.resumedFrom, 6);
        assert.equal(resumed.step, 12);
        const [w1, w2] = [await weightsOf(straight), await weightsOf(second)];
        const diff = Math.max(...w1.map((v, i) => Math.abs(v - w2[i]!)));
        assert.ok(diff < 1e-6, `resumed weights differ by ${diff}`);
        // Old states are pruned: only the latest two remain.
        const states = new Set((await store.list('runs/r/sft/state/step-')).map((l) => l.key.split('/')[4]));
        assert.ok(states.size <= 2, [...states].join(','));
        straight.dispose();
        second.dispose();
      } finally {
        tmp.remove();
      }
    });
  }
});
