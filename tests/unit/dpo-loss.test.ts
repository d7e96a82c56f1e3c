import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../core/compute/backend';
import { loadCheckpoint } from '../../core/model/checkpoint';
import { dpoLoss, dpoMetrics } from '../../core/train/dpo-loss';
import { responseLogProbs } from '../../core/train/logprobs';
import { expected, fixtureDir } from '../support/hf-fixtures';

// Summed response log-probs for three pairs: one the policy prefers correctly, one wrongly, one tie.
const pc = [-10.0, -25.5, -7.25];
const pr = [-14.0, -21.0, -9.0];
const rc = [-11.0, -24.0, -8.0];
const rr = [-13.5, -22.0, -9.75];
const beta = 0.1;

describe('DPO loss and metrics', () => {
  before(async () => {
    await initBackend(undefined, () => undefined);
  });

  it('equal a direct computation from summed log-probs (sigmoid and IPO)', () => {
    // Plain arithmetic, written out per pair.
    const h = [0, 1, 2].map((i) => beta * (pc[i]! - rc[i]!) - beta * (pr[i]! - rr[i]!));
    assert.deepEqual(h.map((x) => Math.round(x * 1e6) / 1e6), [0.15, -0.25, 0]); // correct, wrong, tie
    const sigmoidLoss = h.map((x) => -Math.log(1 / (1 + Math.exp(-x)))).reduce((a, b) => a + b) / 3;
    const ipoLoss = h.map((x) => (x / beta - 1 / (2 * beta)) ** 2).reduce((a, b) => a + b) / 3;
    const m = dpoMetrics(pc, pr, rc, rr, beta);
    const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-5, `${what}: ${a} vs ${b}`);
    close(m.loss, sigmoidLoss, 'loss');
    close(m['rewards/chosen'], (beta * (pc[0]! - rc[0]!) + beta * (pc[1]! - rc[1]!) + beta * (pc[2]! - rc[2]!)) / 3, 'rewards/chosen');
    close(m['rewards/rejected'], (beta * (pr[0]! - rr[0]!) + beta * (pr[1]! - rr[1]!) + beta * (pr[2]! - rr[2]!)) / 3, 'rewards/rejected');
    close(m['rewards/margins'], (h[0]! + h[1]! + h[2]!) / 3, 'rewards/margins');
    close(m['rewards/accuracies'], 1 / 3, 'rewards/accuracies'); // a tie is not a correct preference (TRL: chosen > rejected)
    close(m['logps/chosen'], (pc[0]! + pc[1]! + pc[2]!) / 3, 'logps/chosen');
    close(m['logps/rejected'], (pr[0]! + pr[1]! + pr[2]!) / 3, 'logps/rejected');
    close(dpoMetrics(pc, pr, rc, rr, beta, 'ipo').loss, ipoLoss, 'ipo loss');

    const t = (xs: number[]) => tf.tensor1d(xs);
    close(dpoLoss(t(pc), t(pr), t(rc), t(rr), beta).dataSync()[0]!, sigmoidLoss, 'tensor loss');
    close(dpoLoss(t(pc), t(pr), t(rc), t(rr), beta, 'ipo').dataSync()[0]!, ipoLoss, 'tensor ipo loss');
  });

  it('adds the NLL term on chosen responses (RPO) as α · mean(−πc/|c|), by hand', () => {
    const lengths = [5, 10, 4];
    const alpha = 0.5;
    // −πc/|c| = 2.0, 2.55, 1.8125 → mean 6.3625/3 = 2.120833…
    const nll = (10 / 5 + 25.5 / 10 + 7.25 / 4) / 3;
    const h = [0, 1, 2].map((i) => beta * (pc[i]! - rc[i]!) - beta * (pr[i]! - rr[i]!));
    const dpo = h.map((x) => Math.log1p(Math.exp(-x))).reduce((a, b) => a + b) / 3;
    const m = dpoMetrics(pc, pr, rc, rr, beta, 'sigmoid', { weight: alpha, chosenLengths: lengths });
    assert.ok(Math.abs(m.nll_loss! - nll) < 1e-9);
    assert.ok(Math.abs(m.loss - (dpo + alpha * nll)) < 1e-9);
    assert.equal(dpoMetrics(pc, pr, rc, rr, beta, 'sigmoid', { weight: 0, chosenLengths: lengths }).nll_loss, undefined, 'weight 0 is plain DPO');
    const t = (xs: number[]) => tf.tensor1d(xs);
    assert.ok(Math.abs(dpoLoss(t(pc), t(pr), t(rc), t(rr), beta, 'sigmoid', { weight: alpha, chosenLengths: t(lengths) }).dataSync()[0]! - (dpo + alpha * nll)) < 1e-5);
    // ∂/∂πc gains −α/(n·|c|) per pair.
    const grad = tf.grad((x: tf.Tensor) => dpoLoss(x as tf.Tensor1D, t(pr), t(rc), t(rr), beta, 'sigmoid', { weight: alpha, chosenLengths: t(lengths) }))(t(pc));
    const want = h.map((x, i) => (-beta * (1 / (1 + Math.exp(x)))) / 3 - alpha / (3 * lengths[i]!));
    Array.from(grad.dataSync()).forEach((g, i) => assert.ok(Math.abs(g - want[i]!) < 1e-6, `${g} vs ${want[i]}`));
  });

  it('has the analytic gradient: ∂loss/∂πc = −β·σ(−h)/n', () => {
    const grad = tf.grad((x: tf.Tensor) => dpoLoss(x as tf.Tensor1D, tf.tensor1d(pr), tf.tensor1d(rc), tf.tensor1d(rr), beta))(tf.tensor1d(pc));
    const h = [0, 1, 2].map((i) => beta * (pc[i]! - rc[i]!) - beta * (pr[i]! - rr[i]!));
    const want = h.map((x) => (-beta * (1 / (1 + Math.exp(x)))) / 3);
    Array.from(grad.dataSync()).forEach((g, i) => assert.ok(Math.abs(g - want[i]!) < 1e-6, `${g} vs ${want[i]}`));
  });

  it('sums response log-probs over response tokens only, as transformers\' logits give them', () => {
    const { model } = loadCheckpoint(fixtureDir('gpt2'));
    const c = expected('gpt2').logits_cases[0]!; // one unpadded sequence of 12 tokens
    const ids = c.input_ids[0]!;
    const promptLen = 4;
    // Reference: transformers' logits at positions promptLen−1 … 10 predict tokens promptLen … 11.
    let want = 0;
    for (let t = promptLen - 1; t < ids.length - 1; t++) {
      const row = c.logits[0]![t]!;
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
      want += row[ids[t + 1]!]! - lse;
    }
    const shorter = { prompt: ids.slice(0, 3), response: ids.slice(3, 7) };
    const got = responseLogProbs(model, [{ prompt: ids.slice(0, promptLen), response: ids.slice(promptLen) }, shorter]);
    const values = Array.from(got.dataSync());
    assert.ok(Math.abs(values[0]! - want) < 1e-3, `${values[0]} vs ${want}`);
    // Right padding in the batch changes nothing for the shorter pair.
    const alone = responseLogProbs(model, [shorter]).dataSync()[0]!;
    assert.ok(Math.abs(values[1]! - alone) < 1e-4, `${values[1]} vs ${alone}`);
    tf.dispose([got]);
    model.dispose();
  });
});
