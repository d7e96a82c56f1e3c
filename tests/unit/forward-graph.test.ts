/**
 * The native backend's forward graph (core/model/forward-graph.ts) against the eager decoder it
 * replaces in generation: prompts then cached steps on a left-padded batch with grouped-query
 * attention, sampled generations draw for draw, and no tensors left behind. transformers itself
 * is the reference in model-reference.test.ts; here the eager path is, on more shapes.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../core/compute/backend';
import { GraphBuilder, graphsAvailable, withGraphs } from '../../core/compute/graph';
import { fromHfConfig } from '../../core/model/config';
import { DecoderModel, positionsFromMask, type LayerCache } from '../../core/model/decoder';
import { cacheBlock, forwardGraph, LANES_FROM, runForwardGraph, runStepGraph, stepPlan } from '../../core/model/forward-graph';
import { generate, GREEDY_STEPS } from '../../core/model/generate';
import { Rng } from '../../core/random';

const LLAMA = fromHfConfig({ model_type: 'llama', vocab_size: 50, hidden_size: 32, intermediate_size: 40, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64, rms_norm_eps: 1e-5, tie_word_embeddings: false, rope_theta: 500 });
const GPT2 = fromHfConfig({ model_type: 'gpt2', vocab_size: 50, n_embd: 32, n_layer: 2, n_head: 4, n_positions: 64, layer_norm_epsilon: 1e-5 });

function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

describe('forward graph', () => {
  before(async () => {
    await initBackend(undefined, () => undefined);
  });
  it('runs wherever the native backend does (and says why not elsewhere)', async () => {
    if (process.env.SRLM_EXPECT_NATIVE === '1') assert.equal(graphsAvailable(), tf.getBackend() === 'tensorflow');
    if (graphsAvailable()) return;
    const g = new GraphBuilder();
    const x = g.input('x', 'float32');
    await assert.rejects(g.compile({ y: { ref: g.unary('Square', x), dtype: 'float32' } }), /native TensorFlow backend/);
  });

  it('runs decode steps in two lanes from LANES_FROM of work and two rows, on two or more cores', () => {
    // Work is B · (parameters + 2 · layers · heads · D · past): 2 · 2 · 4 · 8 · 10 = 1,280 a row here.
    const plan = (B: number, parameters: number, cores: number, lanes?: 1 | 2) => stepPlan(LLAMA, B, 10, parameters, lanes, cores);
    // At 8 rows: parameters that put the work exactly at LANES_FROM, and one below.
    const at = LANES_FROM / 8 - 1280;
    assert.deepEqual(plan(8, at, 2), { threads: [1, 2], lanes: 2 });
    assert.deepEqual(plan(8, at - 1, 2), { threads: 1, lanes: 1 }, 'just under LANES_FROM');
    assert.deepEqual(plan(2, 1e7, 2), { threads: [1, 2], lanes: 2 });
    assert.deepEqual(plan(8, 2e6, 8), { threads: [4, 2], lanes: 2 }, 'each lane takes half the cores');
    assert.deepEqual(plan(8, 2e6, 1), { threads: 1, lanes: 1 }, 'one core');
    assert.deepEqual(plan(1, 1e9, 2), { threads: 0, lanes: 1 }, 'one row, past stepThreads\' crossover');
    assert.deepEqual(plan(8, 2e6, 2, 1), { threads: 1, lanes: 1 }, 'one lane forced');
    assert.deepEqual(plan(4, 1e6, 2, 2), { threads: [1, 2], lanes: 2 }, 'two lanes forced');
    assert.deepEqual(plan(1, 1e6, 2, 2), { threads: 1, lanes: 1 }, 'a single row runs in one lane, forced or not');
  });

  for (const [family, config] of [['llama (GQA, untied)', LLAMA], ['gpt2', GPT2]] as const) {
    it(`${family}: prompts and three cached steps, through the general graph, the step graph, and the step graph on a cache in pieces, give the eager decoder's logits and cache`, async (t) => {
      if (!graphsAvailable()) return t.diagnostic(`no graphs on ${tf.getBackend()}`);
      const model = DecoderModel.initialise(config, 3);
      const graph = await forwardGraph(config);
      const stepGraph = await forwardGraph(config, 0, 'step');
      // Left padding: rows of 7, 4 and 1 real tokens.
      const lengths = [7, 4, 1];
      const B = lengths.length;
      const L = 7;
      const rng = new Rng(5);
      const maskRows = lengths.map((n) => [...new Array<number>(L - n).fill(0), ...new Array<number>(n).fill(1)]);
      const idRows = lengths.map((n) => [...new Array<number>(L - n).fill(0), ...Array.from({ length: n }, () => 1 + rng.int(49))]);
      const steps = 3;
      const fullMask = tf.tensor2d(maskRows.map((r) => [...r, ...new Array<number>(steps).fill(1)]), undefined, 'float32');
      let keyMask = tf.tensor2d(maskRows, undefined, 'int32');
      let ids = tf.tensor2d(idRows, undefined, 'int32');
      let positions = positionsFromMask(keyMask);
      let eager = model.forward(ids, positions, keyMask, { cache: true, lastOnly: true });
      let fromGraph = runForwardGraph(graph, model, ids, positions, fullMask, undefined);
      // The step graph continues from the same prompt call, on its own cache.
      let fromStep = { ...fromGraph, present: fromGraph.present.map((p) => ({ k: tf.clone(p.k), v: tf.clone(p.v) })) };
      // And on a cache in pieces, as generation keeps it: the prompt's frozen, then a new growing
      // piece, itself frozen after two steps (so the third step reads three pieces).
      const frozen: LayerCache[][] = fromGraph.present.map((p) => [{ k: tf.clone(p.k), v: tf.clone(p.v) }]);
      const empty = tf.zeros([B, config.numKvHeads, 0, config.headDim]) as tf.Tensor4D;
      let growing: LayerCache[] = frozen.map(() => ({ k: empty, v: empty }));
      let fromPieces = { logits: fromGraph.logits, next: fromGraph.next };
      const joined = () => frozen.map((f, i) => ({ k: tf.concat([...f.map((p) => p.k), growing[i]!.k], 2), v: tf.concat([...f.map((p) => p.v), growing[i]!.v], 2) }));
      let worst = 0;
      const compare = (what: string, a: tf.Tensor, b: tf.Tensor) => {
        const d = maxDiff(a, b);
        worst = Math.max(worst, d);
        assert.ok(d <= 1e-5, `${what}: max |Δ| = ${d}`);
      };
      let next = lengths.slice();
      for (let step = 0; ; step++) {
        const argmax = Array.from(await tf.argMax(tf.reshape(eager.logits, [B, -1]), 1).data());
        const pieces = { ...fromPieces, present: joined() };
        for (const [path, out] of [['general', fromGraph], ['step', fromStep], ['pieces', pieces]] as const) {
          compare(`${path} graph, step ${step} logits`, tf.reshape(eager.logits, [B, -1]), out.logits);
          eager.present.forEach((p, i) => {
            compare(`${path} graph, step ${step} layer ${i} keys`, p.k, out.present[i]!.k);
            compare(`${path} graph, step ${step} layer ${i} values`, p.v, out.present[i]!.v);
          });
          assert.deepEqual(Array.from(await out.next.data()), argmax);
        }
        tf.dispose([ids, positions, eager.logits, fromGraph.logits, fromGraph.next, ...pieces.present.flatMap((p) => [p.k, p.v])]);
        if (step > 0) tf.dispose([fromStep.logits, fromStep.next, fromPieces.logits, fromPieces.next]);
        if (step === steps) break;
        const chosen = Array.from({ length: B }, () => 1 + rng.int(49));
        ids = tf.tensor2d(chosen, [B, 1], 'int32');
        positions = tf.tensor2d(next, [B, 1], 'int32');
        next = next.map((p) => p + 1);
        const grown = tf.concat([keyMask, tf.ones([B, 1], 'int32')], 1) as tf.Tensor2D;
        keyMask.dispose();
        keyMask = grown;
        const pastEager: LayerCache[] = eager.present;
        const pastGraph: LayerCache[] = fromGraph.present;
        const pastStep: LayerCache[] = fromStep.present;
        eager = model.forward(ids, positions, keyMask, { past: pastEager });
        fromGraph = runForwardGraph(graph, model, ids, positions, fullMask, pastGraph);
        const [rowIds, rowPositions] = [tf.reshape(ids, [B]), tf.reshape(positions, [B])];
        fromStep = runForwardGraph(stepGraph, model, rowIds, rowPositions, fullMask, pastStep);
        const piecesGraph = await forwardGraph(config, 0, 'step', frozen[0]!.length + 1);
        const res = runStepGraph(piecesGraph, model, rowIds, rowPositions, fullMask, frozen.map((f, i) => [...f, growing[i]!]));
        if (step > 0) tf.dispose(growing.flatMap((p) => [p.k, p.v]));
        growing = res.tail;
        fromPieces = { logits: res.logits, next: res.next };
        if (step === 1) {
          growing.forEach((p, i) => frozen[i]!.push(p));
          growing = frozen.map(() => ({ k: empty, v: empty }));
        }
        tf.dispose([rowIds, rowPositions, ...[...pastEager, ...pastGraph, ...pastStep].flatMap((p) => [p.k, p.v])]);
      }
      assert.equal(frozen[0]!.length, 2, 'the last step read three pieces');
      tf.dispose([...eager.present, ...fromGraph.present, ...fromStep.present, ...growing, ...frozen.flat()].flatMap((p) => [p.k, p.v]));
      tf.dispose([empty, fromPieces.logits, fromPieces.next]);
      tf.dispose([keyMask, fullMask]);
      model.dispose();
      t.diagnostic(`${family}: largest difference ${worst.toExponential(2)}`);
    });
  }

  for (const [family, config] of [['llama (GQA, untied)', LLAMA], ['gpt2', GPT2]] as const) {
    it(`${family}: a step graph of four greedy steps gives the tokens, last logits and grown cache of four one-step calls, on a cache in pieces, in one lane or two`, async (t) => {
      if (!graphsAvailable()) return t.diagnostic(`no graphs on ${tf.getBackend()}`);
      const model = DecoderModel.initialise(config, 6);
      const before = tf.memory().numTensors;
      const rng = new Rng(2);
      const lengths = [6, 3, 1];
      const B = lengths.length;
      const L = 6;
      const maskRows = lengths.map((n) => [...new Array<number>(L - n).fill(0), ...new Array<number>(n).fill(1)]);
      const idRows = lengths.map((n) => [...new Array<number>(L - n).fill(0), ...Array.from({ length: n }, () => 1 + rng.int(49))]);
      const mask = tf.tensor2d(maskRows.map((r) => [...r, ...new Array<number>(8).fill(1)]), undefined, 'float32');
      const keyMask = tf.tensor2d(maskRows, undefined, 'int32');
      const [ids, positions] = [tf.tensor2d(idRows, undefined, 'int32'), positionsFromMask(keyMask)];
      const prompt = runForwardGraph(await forwardGraph(config), model, ids, positions, mask, undefined);
      // The prompt's cache frozen, then a growing piece of one token: the calls read two pieces.
      const first = Array.from(await prompt.next.data());
      const frozen = prompt.present.map((p) => [p]);
      const [firstIds, firstPos] = [tf.tensor1d(first, 'int32'), tf.tensor1d(lengths, 'int32')];
      const empty = tf.zeros([B, config.numKvHeads, 0, config.headDim]) as tf.Tensor4D;
      const start = runStepGraph(await forwardGraph(config, 0, 'step', 2), model, firstIds, firstPos, mask, frozen.map((f) => [...f, { k: empty, v: empty }]));
      const fed = Array.from(await start.next.data());
      // Two lanes (rows 0–1 and row 2, side by side on two threads) give the call's logits and cache.
      const sameCall = (what: string, a: { logits: tf.Tensor; tail: LayerCache[] }, b: { logits: tf.Tensor; tail: LayerCache[] }) => {
        assert.ok(maxDiff(a.logits, b.logits) <= 1e-5, `two lanes: the ${what} call's logits`);
        a.tail.forEach((p, i) => {
          assert.deepEqual(p.k.shape, b.tail[i]!.k.shape);
          assert.ok(maxDiff(p.k, b.tail[i]!.k) <= 1e-5 && maxDiff(p.v, b.tail[i]!.v) <= 1e-5, `two lanes: the ${what} call's layer ${i} piece`);
        });
      };
      const lanedStart = runStepGraph(await forwardGraph(config, [1, 2], 'step', 2, 1, 2), model, firstIds, firstPos, mask, frozen.map((f) => [...f, { k: empty, v: empty }]));
      assert.deepEqual(Array.from(await lanedStart.next.data()), fed);
      sameCall('first', lanedStart, start);
      const [fedIds, pos] = [tf.tensor1d(fed, 'int32'), tf.tensor1d(lengths.map((n) => n + 1), 'int32')];
      // Four one-step calls, each fed the last argmax.
      let growing = start.tail;
      let single = { logits: start.logits, next: start.next };
      const tokens: number[][] = [];
      let token = tf.tensor1d(fed, 'int32');
      for (let s = 0; s < 4; s++) {
        const p = tf.tensor1d(lengths.map((n) => n + 1 + s), 'int32');
        const res = runStepGraph(await forwardGraph(config, 0, 'step', 2), model, token, p, mask, frozen.map((f, i) => [...f, growing[i]!]));
        tf.dispose([p, token, single.logits, ...(s > 0 ? [single.next] : []), ...(s > 0 ? growing.flatMap((x) => [x.k, x.v]) : [])]);
        growing = res.tail;
        single = res;
        token = res.next;
        tokens.push(Array.from(await res.next.data()));
      }
      // One call of four steps from the same start.
      const multi = runStepGraph(await forwardGraph(config, 0, 'step', 2, 4), model, fedIds, pos, mask, frozen.map((f, i) => [...f, start.tail[i]!]));
      assert.ok(multi.tokens, 'a multi-step graph returns its tokens');
      assert.deepEqual(multi.tokens.shape, [B, 4]);
      const together = (await multi.tokens.array()) as number[][];
      assert.deepEqual(together, lengths.map((_, b) => tokens.map((row) => row[b]!)));
      assert.deepEqual(Array.from(await multi.next.data()), tokens[3]);
      assert.ok(maxDiff(multi.logits, single.logits) <= 1e-5, 'the last step\'s logits');
      multi.tail.forEach((p, i) => {
        assert.deepEqual(p.k.shape, growing[i]!.k.shape);
        assert.ok(maxDiff(p.k, growing[i]!.k) <= 1e-5 && maxDiff(p.v, growing[i]!.v) <= 1e-5, `layer ${i}'s grown piece`);
      });
      // The same calls with the rows in two lanes (rows 0–1 and row 2), side by side on two threads.
      const laned = runStepGraph(await forwardGraph(config, [1, 2], 'step', 2, 4, 2), model, fedIds, pos, mask, frozen.map((f, i) => [...f, start.tail[i]!]));
      assert.deepEqual(await laned.tokens!.array(), together);
      assert.deepEqual(Array.from(await laned.next.data()), tokens[3]);
      sameCall('four-step', laned, multi);
      tf.dispose([keyMask, ids, positions, mask, firstIds, firstPos, empty, fedIds, pos, prompt.logits, prompt.next, start.logits, start.next, single.logits, single.next, multi.logits, multi.next, multi.tokens]);
      tf.dispose([lanedStart.logits, lanedStart.next, laned.logits, laned.next, laned.tokens!]);
      tf.dispose([...prompt.present, ...start.tail, ...growing, ...multi.tail, ...lanedStart.tail, ...laned.tail].flatMap((p) => [p.k, p.v]));
      assert.equal(tf.memory().numTensors, before, 'no tensors left behind');
      model.dispose();
    });
  }

  it(`greedy generation, ${GREEDY_STEPS} steps per graph call, ends rows at eos, stop sequences and the token cap where the eager path does`, async (t) => {
    if (!graphsAvailable()) return t.diagnostic(`no graphs on ${tf.getBackend()}`);
    const model = DecoderModel.initialise(LLAMA, 11);
    const rng = new Rng(4);
    const prompts = Array.from({ length: 6 }, (_, i) => Array.from({ length: 2 + i }, () => 3 + rng.int(47)));
    // What each row generates with nothing to stop it, on the eager path.
    const free = await withGraphs(false, () => generate(model, prompts, { maxNewTokens: 11, greedy: true, eosTokenId: null }));
    // An eos that row 0 reaches at its sixth token and a stop sequence that row 1 ends with at its
    // third: both inside a call of four steps, not at its edge (unless the token came earlier).
    const eos = free.tokens[0]![5]!;
    const stop = free.tokens[1]!.slice(1, 3);
    const options = { maxNewTokens: 11, greedy: true, eosTokenId: eos, stopSequences: [stop] };
    const eager = await withGraphs(false, () => generate(model, prompts, options));
    const before = tf.memory().numTensors;
    const graph = await withGraphs(true, () => generate(model, prompts, options));
    assert.equal(tf.memory().numTensors, before);
    assert.deepEqual(graph, eager);
    assert.ok(eager.finishReasons.includes('eos') && eager.finishReasons.includes('stop'), `reasons ${eager.finishReasons.join(', ')}`);
    // Rows that no stop reached run to the cap, 11 tokens: two calls of four, then two and one.
    assert.deepEqual(await withGraphs(true, () => generate(model, prompts, { maxNewTokens: 11, greedy: true, eosTokenId: null })), free);
    // Any number of steps per call gives the same tokens (3 runs as 2, 2, ...: powers of two), in
    // one lane or two (rows 0–2 and 3–5).
    for (const stepsPerCall of [1, 2, 3, 8]) {
      assert.deepEqual(await withGraphs(true, () => generate(model, prompts, { ...options, stepsPerCall })), eager, `${stepsPerCall} steps per call`);
    }
    for (const stepLanes of [1, 2] as const) {
      assert.deepEqual(await withGraphs(true, () => generate(model, prompts, { ...options, stepLanes })), eager, `${stepLanes} lanes`);
    }
    model.dispose();
  });

  it('generates with the cache in frozen pieces (cacheBlock) the tokens the eager path does, draw for draw', async (t) => {
    if (!graphsAvailable()) return t.diagnostic(`no graphs on ${tf.getBackend()}`);
    // Wide heads, so that 16 rows reach a piece's 1 MiB a layer at 32 positions.
    const config = fromHfConfig({ model_type: 'llama', vocab_size: 50, hidden_size: 256, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 4, max_position_embeddings: 128, rms_norm_eps: 1e-5, tie_word_embeddings: true, rope_theta: 500 });
    const B = 16;
    assert.equal(cacheBlock(config, B), 32);
    const model = DecoderModel.initialise(config, 4);
    const rng = new Rng(8);
    // Prompts of 3 to 40 tokens: the longest is frozen at once, the others grow into their first piece.
    const prompts = Array.from({ length: B }, (_, i) => Array.from({ length: i === 0 ? 40 : 3 + rng.int(10) }, () => 3 + rng.int(47)));
    const options = (seed: number) => ({ maxNewTokens: 80, temperature: 1.5, eosTokenId: null, rngs: prompts.map((_, i) => new Rng(seed + i)) });
    const eager = await withGraphs(false, () => generate(model, prompts, options(1)));
    const before = tf.memory().numTensors;
    const graph = await withGraphs(true, () => generate(model, prompts, options(1)));
    assert.equal(tf.memory().numTensors, before);
    assert.deepEqual(graph, eager);
    const greedy = { maxNewTokens: 80, greedy: true, eosTokenId: null };
    const eagerGreedy = await withGraphs(false, () => generate(model, prompts, greedy));
    assert.deepEqual(await withGraphs(true, () => generate(model, prompts, greedy)), eagerGreedy);
    // In two lanes of 8 rows, through the same pieces.
    assert.deepEqual(await withGraphs(true, () => generate(model, prompts, { ...options(1), stepLanes: 2 })), eager);
    assert.deepEqual(await withGraphs(true, () => generate(model, prompts, { ...greedy, stepLanes: 2 })), eagerGreedy);
    model.dispose();
  });

  it('samples the same tokens as the eager path, draw for draw, and leaves no tensors behind', async (t) => {
    if (!graphsAvailable()) return t.diagnostic(`no graphs on ${tf.getBackend()}`);
    const model = DecoderModel.initialise(LLAMA, 9);
    const prompts = [[3, 4, 5, 6, 7], [8, 9], [10, 11, 12]];
    const options = (seed: number) => ({ maxNewTokens: 12, temperature: 1.3, topK: 20, topP: 0.95, eosTokenId: 2, rngs: prompts.map((_, i) => new Rng(seed + i)) });
    for (const seed of [1, 2, 3]) {
      const eager = await withGraphs(false, () => generate(model, prompts, options(seed)));
      const graph = await withGraphs(true, () => generate(model, prompts, options(seed)));
      assert.deepEqual(graph, eager, `seed ${seed}`);
      assert.deepEqual(await withGraphs(true, () => generate(model, prompts, { ...options(seed), stepLanes: 2 })), eager, `seed ${seed}, two lanes`);
    }
    const before = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) {
      await generate(model, prompts, options(i));
      await generate(model, prompts, { ...options(i), stepLanes: 2 });
      await generate(model, prompts, { maxNewTokens: 5, greedy: true, useCache: false });
    }
    assert.equal(tf.memory().numTensors, before);
    model.dispose();
  });
});
