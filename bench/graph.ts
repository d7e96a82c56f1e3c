/**
 * What the graph path of generation rests on, measured on the native backend (printed, never
 * asserted; each figure is the median of 15 timed rounds, the variants interleaved round by round
 * so that a busy machine slows them alike):
 *
 *  1. dispatch: 150 elementwise ops on [32, 128], eager ops against one graph call;
 *  2. BatchMatMulV2 against BatchMatMulV3 in a graph (50 chained [32, 128]·[128, 128]);
 *  3. a cached decode step of each bench/configs model at batch 1 and 32 (prefix 32) through the
 *     step graph in a session of one thread and one of libtensorflow's default (what `stepThreads`
 *     chooses between), and through the general forward graph on one thread;
 *  4. sampling one row on the host (`chooseToken`) at three vocabulary sizes, against the comparator
 *     sort of the ids it replaced;
 *  5. the thread crossovers: decode steps over a range of batch sizes and past lengths (the past in
 *     pieces, as generation holds it), and prompt
 *     calls over a range of sizes (up to the judge's 128 prompts of 200 tokens), each on one thread
 *     and on libtensorflow's default, beside what `stepThreads` and `graphThreads` pick;
 *  6. a decode step over a past held in one piece (grown by a copy of the whole past) against the
 *     same past in frozen pieces of `cacheBlock` positions and a growing one (what generation
 *     keeps), at the thread count `stepThreads` picks;
 *  7. greedy generation (prompt 16, 32 new tokens) with one decode step per graph call against
 *     2, 4 (the default, `GREEDY_STEPS`) and 8: the call's and the host's share of a step;
 *  8. the lanes crossover: greedy generation (prompt 16, 32 new tokens) over a range of batch
 *     sizes with every decode step in one lane and in two, beside what `stepPlan` picks.
 *
 *   npm run bench:graph
 *   BENCH_SECTIONS=7,8 BENCH_CONFIGS=llama-7m npm run bench:graph   (some sections, one model)
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { initBackend } from '../core/compute/backend';
import { GraphBuilder, graphsAvailable, type Attr, type GraphFunction } from '../core/compute/graph';
import { fromHfConfig, type ModelConfig } from '../core/model/config';
import { DecoderModel } from '../core/model/decoder';
import { cacheBlock, forwardGraph, graphThreads, MAX_CACHE_PIECES, runForwardGraph, runStepGraph, stepPlan, stepThreads } from '../core/model/forward-graph';
import { chooseToken, generate, GREEDY_STEPS } from '../core/model/generate';
import { Rng } from '../core/random';
import * as tf from '@tensorflow/tfjs-core';

const ROUNDS = 15;

/** Median milliseconds per call of each variant, interleaved round by round. */
function compare(variants: Record<string, () => void>, callsPerRound: number, rounds = ROUNDS): Record<string, number> {
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
  for (const f of Object.values(variants)) for (let i = 0; i < callsPerRound; i++) f(); // warm-up
  for (let r = 0; r < rounds; r++) {
    for (const [name, f] of Object.entries(variants)) {
      const t = performance.now();
      for (let i = 0; i < callsPerRound; i++) f();
      times[name]!.push((performance.now() - t) / callsPerRound);
    }
  }
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, v.sort((a, b) => a - b)[Math.floor(v.length / 2)]!]));
}

const ms = (x: number) => `${x.toFixed(3)} ms`;

/** The sections to run (BENCH_SECTIONS, e.g. "7,8"; default all). */
const SECTIONS = process.env.BENCH_SECTIONS?.split(',').map(Number);
const section = (n: number) => !SECTIONS || SECTIONS.includes(n);

/** The bench/configs models each section runs (BENCH_CONFIGS to choose). */
const CONFIG_NAMES = (process.env.BENCH_CONFIGS ?? 'llama-0.8m,llama-7m').split(',');

/** A bench/configs model, initialised, with its parameter count. */
function benchModel(name: string): { config: ModelConfig; model: DecoderModel; parameters: number } {
  const config = fromHfConfig(JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'bench', 'configs', `${name}.json`), 'utf8')), name);
  const model = DecoderModel.initialise(config, 0);
  return { config, model, parameters: [...model.params.values()].reduce((a, v) => a + v.size, 0) };
}

/** The pieces a past of P positions comes in (as generation holds it): full blocks, then the rest growing. */
function pieceSizes(config: ModelConfig, B: number, P: number): number[] {
  const block = cacheBlock(config, B);
  const sizes: number[] = [];
  for (let left = P; left > 0; left -= block) sizes.push(Math.min(block, left));
  if (sizes.at(-1) === block) sizes.push(0);
  while (sizes.length > MAX_CACHE_PIECES) sizes.splice(-2, 2, sizes.at(-2)! + sizes.at(-1)!);
  return sizes;
}

async function main(): Promise<void> {
  await initBackend(undefined, () => undefined);
  if (!graphsAvailable()) {
    console.log(`graphs need the native backend (this process has ${tf.getBackend()}); run npm run setup`);
    return;
  }
  console.log('graph path of generation, on the native backend (median of 15 interleaved rounds)');

  if (section(1)) {
    // 1. Dispatch.
    {
      const g = new GraphBuilder();
      let x = g.input('x', 'float32');
      const y = g.input('y', 'float32');
      for (let i = 0; i < 150; i++) x = g.binary(i % 2 ? 'Mul' : 'AddV2', x, y);
      const f = await g.compile({ out: { ref: x, dtype: 'float32' } });
      const xs = tf.randomNormal([32, 128]);
      const ys = tf.fill([32, 128], 1.0001);
      const t = compare({
        eager: () => tf.tidy(() => {
          let z = xs;
          for (let i = 0; i < 150; i++) z = i % 2 ? tf.mul(z, ys) : tf.add(z, ys);
          z.dataSync();
        }),
        graph: () => {
          const out = f.run({ x: xs, y: ys });
          out.out!.dataSync();
          tf.dispose(out);
        },
      }, 20);
      console.log(`150 elementwise ops on [32, 128]: eager ${ms(t.eager!)}, one graph call ${ms(t.graph!)} (${(t.eager! / t.graph!).toFixed(1)}×)`);
      tf.dispose([xs, ys]);
      f.dispose();
    }
  }

  if (section(2)) {
    // 2. BatchMatMulV2 against V3.
    {
      const fns: Record<string, GraphFunction> = {};
      for (const version of ['BatchMatMulV2', 'BatchMatMulV3']) {
        const g = new GraphBuilder();
        let x = g.input('x', 'float32');
        const w = g.input('w', 'float32');
        const f = { type: 'float32' } as const;
        const attrs: Record<string, Attr> = version === 'BatchMatMulV2' ? { T: f, adj_x: { bool: false }, adj_y: { bool: false } } : { Ta: f, Tb: f, Tout: f, adj_x: { bool: false }, adj_y: { bool: false } };
        for (let i = 0; i < 50; i++) x = g.op(version, [x, w], attrs);
        fns[version] = await g.compile({ out: { ref: x, dtype: 'float32' } });
      }
      const xs = tf.randomNormal([32, 128], 0, 0.05);
      const ws = tf.randomNormal([128, 128], 0, 0.05);
      const call = (f: GraphFunction) => () => {
        const out = f.run({ x: xs, w: ws });
        out.out!.dataSync();
        tf.dispose(out);
      };
      const t = compare({ v2: call(fns.BatchMatMulV2!), v3: call(fns.BatchMatMulV3!) }, 20);
      console.log(`[32, 128]·[128, 128] in a graph: BatchMatMulV2 ${(t.v2! * 20).toFixed(1)} µs, BatchMatMulV3 ${(t.v3! * 20).toFixed(1)} µs per matmul`);
      tf.dispose([xs, ws]);
      Object.values(fns).forEach((f) => f.dispose());
    }
  }

  if (section(3)) {
    // 3. A cached decode step: the step graph on one thread and on the default, and the general
    // forward graph (what steps used before the step graph) on one thread.
    for (const name of CONFIG_NAMES) {
      const { config, model, parameters } = benchModel(name);
      const sessions = { one: await forwardGraph(config, 1, 'step'), default: await forwardGraph(config, 0, 'step'), general: await forwardGraph(config, 1) };
      for (const B of [1, 32]) {
        const P = 32;
        const kv = () => tf.randomNormal([B, config.numKvHeads, P, config.headDim]) as tf.Tensor4D;
        const past = Array.from({ length: config.numLayers }, () => ({ k: kv(), v: kv() }));
        // The step graph takes ids and positions [B]; the general graph [B, T].
        const ids = tf.zeros([B], 'int32');
        const positions = tf.fill([B], P, 'int32');
        const ids2 = tf.zeros([B, 1], 'int32');
        const positions2 = tf.fill([B, 1], P, 'int32');
        const mask = tf.ones([B, P + 1]) as tf.Tensor2D;
        const step = (graph: GraphFunction, x = ids, at = positions) => () => {
          const r = runForwardGraph(graph, model, x, at, mask, past);
          r.next.dataSync();
          tf.dispose([r.logits, r.next, ...r.present.flatMap((p) => [p.k, p.v])]);
        };
        const t = compare({ one: step(sessions.one), default: step(sessions.default), general: step(sessions.general, ids2, positions2) }, 20);
        const chosen = stepThreads(config, B, P, parameters) === 1 ? 'one' : 'default';
        console.log(`${name} decode step, batch ${B}: step graph one thread ${ms(t.one!)}, default threads ${ms(t.default!)} (generate uses: ${chosen}); general forward graph, one thread ${ms(t.general!)}`);
        tf.dispose([ids, positions, ids2, positions2, mask, ...past.flatMap((p) => [p.k, p.v])]);
      }
      model.dispose();
    }
  }

  if (section(4)) {
    // 4. Host sampling per row (after each step's logits come back): chooseToken at T 0.7, top-p 0.9,
    // against the comparator sort of the ids alone, which is what it used to do first.
    for (const V of [259, 32000, 128256]) {
      const rng = new Rng(V);
      const logits = Float32Array.from({ length: V }, () => (rng.next() * 2 - 1) * 8);
      const draws = new Rng(1);
      const calls = V < 1000 ? 200 : 3;
      const t = compare({
        chooseToken: () => chooseToken(logits, { maxNewTokens: 1, temperature: 0.7, topP: 0.9 }, draws),
        comparatorSort: () => Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]! || a - b),
      }, calls);
      console.log(`sampling one row, vocabulary ${V}: chooseToken ${ms(t.chooseToken!)}, a comparator sort of the ids alone ${ms(t.comparatorSort!)}`);
    }
  }

  if (section(5)) {
    // 5. Thread crossovers: [B, T, past] per model; T = 1 with a past is a decode step (step graph,
    // the past in pieces as generation holds it), past 0 a prompt call (general graph).
    const shapes: Record<string, [number, number, number][]> = {
      'llama-0.8m': [[32, 1, 32], [128, 1, 32], [128, 1, 192], [256, 1, 64], [8, 16, 0], [32, 16, 0], [128, 200, 0]],
      'llama-7m': [[8, 1, 64], [16, 1, 64], [16, 1, 192], [32, 1, 32], [32, 1, 64], [2, 16, 0], [4, 16, 0], [8, 16, 0]],
    };
    for (const name of CONFIG_NAMES) {
      const { config, model, parameters } = benchModel(name);
      for (const [B, T, P] of shapes[name] ?? []) {
        const step = P > 0;
        const sizes = step ? pieceSizes(config, B, P) : [0];
        const sessions = step
          ? { one: await forwardGraph(config, 1, 'step', sizes.length), default: await forwardGraph(config, 0, 'step', sizes.length) }
          : { one: await forwardGraph(config, 1), default: await forwardGraph(config, 0) };
        const kv = (n: number) => tf.randomNormal([B, config.numKvHeads, n, config.headDim]) as tf.Tensor4D;
        const pieces = Array.from({ length: config.numLayers }, () => sizes.map((n) => ({ k: kv(n), v: kv(n) })));
        const ids = step ? tf.zeros([B], 'int32') : tf.zeros([B, T], 'int32');
        const positions = step ? tf.fill([B], P, 'int32') : tf.tile(tf.range(0, T, 1, 'int32').reshape([1, T]), [B, 1]);
        const mask = tf.ones([B, P + T]) as tf.Tensor2D;
        const call = (graph: GraphFunction) => () => {
          const r = step ? runStepGraph(graph, model, ids, positions, mask, pieces) : runForwardGraph(graph, model, ids, positions, mask, pieces.map((p) => p[0]!));
          r.next.dataSync();
          tf.dispose([r.logits, r.next, ...('tail' in r ? r.tail : r.present).flatMap((p) => [p.k, p.v])]);
        };
        const big = B * T > 1000;
        const t = compare({ one: call(sessions.one), default: call(sessions.default) }, big ? 1 : 5, big ? 5 : ROUNDS);
        const picked = (step ? stepThreads(config, B, P, parameters) : graphThreads(B * T, parameters)) === 1 ? 'one' : 'default';
        console.log(`${name} ${step ? `decode step, batch ${B} over ${P} past` : `prompt call, ${B} × ${T} tokens`}: one thread ${ms(t.one!)}, default threads ${ms(t.default!)} (picked: ${picked})`);
        tf.dispose([ids, positions, mask, ...pieces.flat().flatMap((p) => [p.k, p.v])]);
      }
      model.dispose();
    }
  }

  if (section(6)) {
    // 6. The cache in one piece against pieces: [B, past] per model.
    const pieceShapes: Record<string, [number, number][]> = {
      'llama-0.8m': [[32, 32], [32, 128], [32, 224], [128, 64], [128, 192]],
      'llama-7m': [[32, 32], [32, 128], [32, 224]],
    };
    for (const name of CONFIG_NAMES) {
      const { config, model, parameters } = benchModel(name);
      for (const [B, P] of pieceShapes[name] ?? []) {
        const threads = stepThreads(config, B, P, parameters);
        const sizes = pieceSizes(config, B, P);
        const kv = (n: number) => tf.randomNormal([B, config.numKvHeads, n, config.headDim]) as tf.Tensor4D;
        const pieces = Array.from({ length: config.numLayers }, () => sizes.map((n) => ({ k: kv(n), v: kv(n) })));
        const whole = pieces.map((ps) => ({ k: tf.concat(ps.map((p) => p.k), 2) as tf.Tensor4D, v: tf.concat(ps.map((p) => p.v), 2) as tf.Tensor4D }));
        const sessions = { one: await forwardGraph(config, threads, 'step'), pieces: await forwardGraph(config, threads, 'step', sizes.length) };
        const ids = tf.zeros([B], 'int32');
        const positions = tf.fill([B], P, 'int32');
        const mask = tf.ones([B, P + 1]) as tf.Tensor2D;
        const t = compare({
          one: () => {
            const r = runForwardGraph(sessions.one, model, ids, positions, mask, whole);
            r.next.dataSync();
            tf.dispose([r.logits, r.next, ...r.present.flatMap((p) => [p.k, p.v])]);
          },
          pieces: () => {
            const r = runStepGraph(sessions.pieces, model, ids, positions, mask, pieces);
            r.next.dataSync();
            tf.dispose([r.logits, r.next, ...r.tail.flatMap((p) => [p.k, p.v])]);
          },
        }, 10);
        console.log(`${name} decode step, batch ${B} over ${P} past (${threads === 1 ? 'one thread' : 'default threads'}): one piece ${ms(t.one!)}, pieces ${sizes.join('+')} ${ms(t.pieces!)} (${(t.one! / t.pieces!).toFixed(2)}×)`);
        tf.dispose([ids, positions, mask, ...whole.flatMap((p) => [p.k, p.v]), ...pieces.flat().flatMap((p) => [p.k, p.v])]);
      }
      model.dispose();
    }
  }

  if (section(7)) {
    // 7. Greedy steps per graph call, whole generate calls (the bench:model shape), interleaved.
    for (const name of CONFIG_NAMES) {
      const { config, model } = benchModel(name);
      const rng = new Rng(3);
      for (const B of [1, 32]) {
        const prompts = Array.from({ length: B }, () => Array.from({ length: 16 }, () => 3 + rng.int(config.vocabSize - 3)));
        const counts = [1, 2, GREEDY_STEPS, 8].filter((n, i, all) => all.indexOf(n) === i);
        const times: number[][] = counts.map(() => []);
        const tokens: string[] = [];
        const call = (n: number) => generate(model, prompts, { maxNewTokens: 32, greedy: true, eosTokenId: null, stepsPerCall: n });
        for (const n of counts) tokens.push(JSON.stringify((await call(n)).tokens)); // warm-up (and the graphs)
        for (let r = 0; r < ROUNDS; r++) {
          for (const [i, n] of counts.entries()) {
            const t = performance.now();
            await call(n);
            times[i]!.push(performance.now() - t);
          }
        }
        const med = times.map((ts) => ts.sort((a, b) => a - b)[Math.floor(ts.length / 2)]!);
        const same = tokens.every((x) => x === tokens[0]);
        console.log(`${name} greedy generate, batch ${B}, 32 new tokens: ${counts.map((n, i) => `${n} step${n > 1 ? 's' : ''} per call ${ms(med[i]!)}${i ? ` (${(med[0]! / med[i]!).toFixed(2)}×)` : ''}`).join(', ')}; tokens ${same ? 'identical' : 'DIFFER'}`);
      }
      model.dispose();
    }
  }

  if (section(8)) {
    // 8. One lane against two, whole greedy generate calls, interleaved: batch sizes per model.
    const laneBatches: Record<string, number[]> = { 'llama-0.8m': [2, 4, 8, 32, 128], 'llama-7m': [2, 4, 8, 32] };
    for (const name of CONFIG_NAMES) {
      const { config, model, parameters } = benchModel(name);
      const rng = new Rng(4);
      for (const B of laneBatches[name] ?? []) {
        const prompts = Array.from({ length: B }, () => Array.from({ length: 16 }, () => 3 + rng.int(config.vocabSize - 3)));
        const call = (stepLanes: 1 | 2) => generate(model, prompts, { maxNewTokens: 32, greedy: true, eosTokenId: null, stepLanes });
        const tokens = [JSON.stringify((await call(1)).tokens), JSON.stringify((await call(2)).tokens)];
        const times: [number[], number[]] = [[], []];
        for (let r = 0; r < ROUNDS; r++) {
          for (const lanes of [1, 2] as const) {
            const t = performance.now();
            await call(lanes);
            times[lanes - 1]!.push(performance.now() - t);
          }
        }
        const [one, two] = times.map((ts) => ts.sort((a, b) => a - b)[Math.floor(ts.length / 2)]!) as [number, number];
        // What the plan picks for the step at the middle of the generation (past 16 + 16).
        const picked = stepPlan(config, B, 32, parameters).lanes;
        console.log(`${name} greedy generate, batch ${B}, 32 new tokens: one lane ${ms(one)}, two lanes ${ms(two)} (${(one / two).toFixed(2)}×); picked: ${picked === 1 ? 'one' : 'two'}; tokens ${tokens[0] === tokens[1] ? 'identical' : 'DIFFER'}`);
      }
      model.dispose();
    }
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
