/**
 * The two DPO metrics that come from the optimizer rather than the loss: `learning_rate` (the
 * schedule) and `grad_norm` (the global L2 norm of the loss gradient before clipping, as TRL logs
 * it). Both are checked against values worked out here, not through the trainer's own helpers.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../core/compute/backend';
import { ModelConfig } from '../../core/model/config';
import { DecoderModel } from '../../core/model/decoder';
import { trainDpo, type DpoSettings, type PreferencePair } from '../../core/train/dpo';
import { responseLogProbs } from '../../core/train/logprobs';

const config = ModelConfig.parse({
  family: 'llama', vocabSize: 20, hiddenSize: 16, numLayers: 1, numHeads: 2, numKvHeads: 1, headDim: 8,
  intermediateSize: 32, maxPositions: 16, normEps: 1e-5, tieEmbeddings: false, padTokenId: 0, eosTokenId: 1,
});

/** Eight fixed pairs of different lengths: chosen is the prompt's body sorted, rejected a copy of it. */
const PAIRS: PreferencePair[] = [
  { prompt: [5, 3, 9, 19], chosen: [3, 5, 9, 1], rejected: [5, 3, 9, 1] },
  { prompt: [7, 2, 19], chosen: [2, 7, 1], rejected: [7, 2, 7, 2, 1] },
  { prompt: [11, 4, 6, 8, 19], chosen: [4, 6, 8, 11, 1], rejected: [11, 1] },
  { prompt: [12, 10, 19], chosen: [10, 12, 1], rejected: [12, 10, 1] },
  { prompt: [15, 13, 14, 19], chosen: [13, 14, 15, 1], rejected: [15, 13, 14, 1] },
  { prompt: [6, 17, 19], chosen: [6, 17, 1], rejected: [17, 6, 17, 1] },
  { prompt: [9, 8, 2, 3, 19], chosen: [2, 3, 8, 9, 1], rejected: [9, 8, 1] },
  { prompt: [16, 18, 19], chosen: [16, 18, 1], rejected: [18, 16, 1] },
];

const settings = (over: Partial<DpoSettings> = {}): DpoSettings => ({
  lr: 3e-3, lrEnd: 3e-4, schedule: 'cosine', warmupSteps: 3, batchSize: 8, gradientAccumulation: 1, epochs: 100, dropout: 0,
  weightDecay: 0, gradClip: 1e6, checkpointEverySteps: 1000, checkpointEverySeconds: 3600, seed: 5, beta: 0.1, loss: 'sigmoid', maxSteps: 10, ...over,
});

/**
 * The learning rate of optimizer step k (0-based) of `total`, written out: linear warmup
 * lr·(k+1)/W for k < W, then from lr at k = W down to lrEnd at the last step k = total − 1.
 */
function handSchedule(s: DpoSettings, k: number, total: number): number {
  if (k < s.warmupSteps) return s.lr * (k + 1) / s.warmupSteps;
  const x = (k - s.warmupSteps) / (total - 1 - s.warmupSteps);
  if (s.schedule === 'cosine') return s.lrEnd + (s.lr - s.lrEnd) * (1 + Math.cos(Math.PI * x)) / 2;
  if (s.schedule === 'linear') return s.lr - (s.lr - s.lrEnd) * x;
  return s.lr;
}

/**
 * The gradient of the first optimizer batch's loss, computed here: the batch is every pair (batch
 * size = number of pairs, so the shuffle does not matter), the policy is the reference at step 1,
 * and the loss is written out from its definition — mean over pairs of −log σ(β·((πc − ρc) −
 * (πr − ρr))) plus α · mean(−πc/|c|) when an NLL weight is set. Returns the norm of the gradient
 * over every trainable weight, summed on the host in float64.
 */
function independentGradNorm(model: DecoderModel, pairs: PreferencePair[], beta: number, nllWeight = 0): { norm: number; grads: Map<string, Float32Array> } {
  const asBatch = (key: 'chosen' | 'rejected') => pairs.map((p) => ({ prompt: p.prompt, response: p[key] }));
  const refChosen = responseLogProbs(model, asBatch('chosen'));
  const refRejected = responseLogProbs(model, asBatch('rejected'));
  const lengths = tf.tensor1d(pairs.map((p) => p.chosen.length));
  const { grads, value } = tf.variableGrads(() => {
    const c = responseLogProbs(model, asBatch('chosen'), 0, { training: true, dropout: 0 });
    const r = responseLogProbs(model, asBatch('rejected'), 0, { training: true, dropout: 0 });
    const z = tf.mul(beta, tf.sub(tf.sub(c, refChosen), tf.sub(r, refRejected)));
    // −log σ(z) = log(1 + e^(−z)); z is near 0 at step 1, so the plain form is exact enough.
    const dpo = tf.mean(tf.log1p(tf.exp(tf.neg(z))));
    return (nllWeight ? tf.add(dpo, tf.mul(nllWeight, tf.mean(tf.div(tf.neg(c), lengths)))) : dpo) as tf.Scalar;
  }, model.trainableVariables());
  value.dispose();
  tf.dispose([refChosen, refRejected, lengths]);
  const byName = new Map([...model.params].map(([name, v]) => [v.name, name]));
  const out = new Map<string, Float32Array>();
  let squares = 0;
  for (const [varName, g] of Object.entries(grads)) {
    const values = g.dataSync() as Float32Array;
    for (const x of values) squares += x * x;
    out.set(byName.get(varName)!, values);
    g.dispose();
  }
  return { norm: Math.sqrt(squares), grads: out };
}

/** The mean sigmoid DPO loss at the model's current weights against fixed reference log-probs (host side, float64). */
function lossAt(model: DecoderModel, pairs: PreferencePair[], ref: { chosen: number[]; rejected: number[] }, beta: number): number {
  const lp = (key: 'chosen' | 'rejected') => Array.from(tf.tidy(() => responseLogProbs(model, pairs.map((p) => ({ prompt: p.prompt, response: p[key] })))).dataSync());
  const [c, r] = [lp('chosen'), lp('rejected')];
  const losses = c.map((pc, i) => Math.log1p(Math.exp(-beta * ((pc - ref.chosen[i]!) - (r[i]! - ref.rejected[i]!)))));
  return losses.reduce((a, b) => a + b, 0) / losses.length;
}

describe('DPO logged learning_rate and grad_norm', () => {
  before(async () => {
    await initBackend(undefined, () => undefined);
  });

  for (const schedule of ['cosine', 'linear', 'constant'] as const) {
    it(`learning_rate at every step follows warmup then ${schedule} decay, computed by hand`, async () => {
      const s = settings({ schedule, maxSteps: 10 });
      const model = DecoderModel.initialise(config, 11);
      const result = await trainDpo(model, PAIRS.slice(0, 4), { ...s, batchSize: 2 });
      model.dispose();
      assert.equal(result.history.length, 10);
      result.history.forEach((h, k) => {
        assert.equal(h.step, k + 1);
        const expected = handSchedule(s, k, 10);
        assert.ok(Math.abs(h.learning_rate - expected) <= 1e-12 * s.lr, `step ${h.step}: logged ${h.learning_rate}, expected ${expected}`);
      });
      // The ends of the schedule, spelled out for the cosine and linear cases.
      assert.ok(Math.abs(result.history[0]!.learning_rate - s.lr / 3) < 1e-15);
      assert.ok(Math.abs(result.history[2]!.learning_rate - s.lr) < 1e-15);
      if (schedule !== 'constant') assert.ok(Math.abs(result.history[9]!.learning_rate - s.lrEnd) < 1e-15);
    });
  }

  it('learning_rate without warmup starts at the peak and the whole run decays to lrEnd', async () => {
    const s = settings({ warmupSteps: 0, schedule: 'cosine', maxSteps: 5 });
    const model = DecoderModel.initialise(config, 12);
    const result = await trainDpo(model, PAIRS, s);
    model.dispose();
    const expected = [0, 1, 2, 3, 4].map((k) => s.lrEnd + (s.lr - s.lrEnd) * (1 + Math.cos((Math.PI * k) / 4)) / 2);
    assert.deepEqual(result.history.map((h) => h.step), [1, 2, 3, 4, 5]);
    result.history.forEach((h, k) => assert.ok(Math.abs(h.learning_rate - expected[k]!) < 1e-15, `step ${h.step}: ${h.learning_rate} vs ${expected[k]}`));
  });

  const cases: { name: string; over: Partial<DpoSettings> }[] = [
    { name: 'no clipping, one micro-batch', over: {} },
    { name: 'clipping active (gradClip far below the norm): the pre-clip norm is logged', over: { gradClip: 1e-6 } },
    { name: 'accumulated over four micro-batches', over: { gradientAccumulation: 4 } },
    { name: 'with an NLL term on the chosen responses', over: { nllWeight: 0.5 } },
  ];
  for (const { name, over } of cases) {
    it(`grad_norm at step 1 equals the L2 norm of the loss gradient computed independently (${name})`, async () => {
      const s = settings({ maxSteps: 2, ...over });
      const probe = DecoderModel.initialise(config, 21);
      const { norm: expected } = independentGradNorm(probe, PAIRS, s.beta, s.nllWeight ?? 0);
      probe.dispose();
      const model = DecoderModel.initialise(config, 21);
      const result = await trainDpo(model, PAIRS, s);
      model.dispose();
      const logged = result.history[0]!.grad_norm;
      assert.ok(expected > 1e-4, `a gradient to measure (norm ${expected})`);
      const rel = Math.abs(logged - expected) / expected;
      assert.ok(rel < 1e-4, `logged grad_norm ${logged} vs independent ${expected} (relative difference ${rel})`);
      // The second step's norm is another batch after an update: it exists and is finite.
      assert.ok(Number.isFinite(result.history[1]!.grad_norm) && result.history[1]!.grad_norm > 0);
    });
  }

  it('the independent gradient is the loss gradient: a central difference along it has slope ‖g‖', () => {
    const beta = 0.1;
    const model = DecoderModel.initialise(config, 21);
    const { norm, grads } = independentGradNorm(model, PAIRS, beta);
    const lp = (key: 'chosen' | 'rejected') => Array.from(tf.tidy(() => responseLogProbs(model, PAIRS.map((p) => ({ prompt: p.prompt, response: p[key] })))).dataSync());
    const ref = { chosen: lp('chosen'), rejected: lp('rejected') };
    const original = new Map([...model.params].map(([name, v]) => [name, v.dataSync().slice() as Float32Array]));
    // Move every weight by ±h along the unit gradient direction; (L(w + h·u) − L(w − h·u)) / 2h ≈ u·∇L = ‖∇L‖.
    const h = 1e-2;
    const shift = (sign: number) => {
      for (const [name, v] of model.params) {
        const g = grads.get(name);
        if (!g) continue;
        const w = original.get(name)!;
        v.assign(tf.tensor(w.map((x, i) => x + (sign * h * g[i]!) / norm), v.shape));
      }
    };
    shift(1);
    const up = lossAt(model, PAIRS, ref, beta);
    shift(-1);
    const down = lossAt(model, PAIRS, ref, beta);
    model.dispose();
    const slope = (up - down) / (2 * h);
    assert.ok(Math.abs(slope - norm) / norm < 2e-2, `directional slope ${slope} vs gradient norm ${norm}`);
  });
});
