/**
 * The decoder's inference forward pass as one graph call on the native backend (see
 * compute/graph.ts): generation's prefill and every cached decode step run as one `TF_SessionRun`
 * each instead of a few hundred eager ops. Both families; the arithmetic is `DecoderModel.forward`'s
 * (the tests hold greedy generations token-identical to transformers through this path).
 *
 * One graph per model shape and kind, built on first use and kept for the process; the model's
 * parameters are inputs, so it serves every model of that shape and never goes stale. Two kinds:
 * the general graph (below) runs any number of new tokens over any past, for prompts and uncached
 * recomputation; the step graph (`buildStep`) runs one new token per row over a past, with fewer
 * ops (`node dist/bench/graph.js` times both as a decode step). The step graph reads its past in
 * pieces, grows only the last, and can run several greedy steps in one call: see `buildStep`.
 *
 * The general graph's inputs:
 *  - `ids`, `positions` [B, T] int32: the new tokens and their positions;
 *  - `mask` [B, ≥ S] float32: 1 for a real token, 0 for padding, over every key position this call
 *    or a later one may see (past + T, and beyond: the graph reads the first S columns);
 *  - `k{i}`, `v{i}` [B, K, P, D]: the past keys and values per layer (P = 0 for none);
 *  - the parameters by our names (hf-weights.ts), and for Llama the RoPE tables `cos`, `sin` [P, 1, D].
 * Outputs: `logits` [B, V] of the last position, `next` [B] their argmax (int32), and `k{i}`, `v{i}`
 * [B, K, P + T, D] to continue from.
 */
import { availableParallelism } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { GraphBuilder, type GraphFunction, type GraphThreads, type Ref } from '../compute/graph';
import type { ModelConfig } from './config';
import { MASKED, type DecoderModel, type LayerCache } from './decoder';
import { graphBlocks } from './graph-blocks';

const graphs = new Map<string, Promise<GraphFunction>>();

/**
 * The forward graph of this kind for this model's shape, compiled once per process per thread
 * count (see `graphThreads` and `stepThreads`).
 */
export function forwardGraph(c: ModelConfig, threads: GraphThreads = 0, kind: 'general' | 'step' = 'general', pieces = 1, steps = 1, lanes = 1): Promise<GraphFunction> {
  if (kind === 'step' && !(Number.isInteger(pieces) && pieces >= 1)) throw new Error(`a step graph reads its past in 1 or more pieces, not ${pieces}`);
  if (kind === 'step' && !(Number.isInteger(steps) && steps >= 1)) throw new Error(`a step graph runs 1 or more steps, not ${steps}`);
  if (kind === 'step' && lanes !== 1 && lanes !== 2) throw new Error(`a step graph runs its rows in 1 or 2 lanes, not ${lanes}`);
  const key = JSON.stringify([kind, kind === 'step' ? pieces : 0, kind === 'step' ? steps : 0, kind === 'step' ? lanes : 0, threads, c.family, c.numLayers, c.numHeads, c.numKvHeads, c.headDim, c.hiddenSize, c.intermediateSize, c.vocabSize, c.normEps, c.tieEmbeddings]);
  let found = graphs.get(key);
  if (!found) {
    const { graph, outputs } = kind === 'step' ? buildStep(c, pieces, steps, lanes) : buildForward(c);
    found = graph.compile(outputs, threads);
    // A failed compile is not kept: the next call tries again.
    found.catch(() => graphs.delete(key));
    graphs.set(key, found);
  }
  return found;
}

/**
 * Threads for a general graph call over `rows` token positions of a model with `parameters`
 * weights: one while the call is small, else libtensorflow's default (two here); below the
 * crossover, two threads cost more in handoffs than they gain. On 2 cores the crossover for
 * prompt calls lies near 4.5·10⁸ parameter × position products (`npm run bench:graph`, section 5,
 * times both sides of it; the note in infra/native-backend.ts).
 */
export function graphThreads(rows: number, parameters: number): number {
  return rows * parameters < 4.5e8 ? 1 : 0;
}

/**
 * How many positions the growing piece of a decode step's cache (see `buildStep`) takes before
 * generation freezes it and starts a new one, for a batch of B: at least 32, and as many as make
 * a piece's keys and values 1 MiB a layer. A step then copies at most that much per layer instead
 * of the whole past; each further piece costs a handful of ops a layer, which a small batch (one
 * row: 1,024 positions of the 0.8M model) would pay for nothing. At most `MAX_CACHE_PIECES` pieces:
 * the last then grows as it must.
 */
export function cacheBlock(c: ModelConfig, B: number): number {
  return Math.max(32, Math.ceil(2 ** 20 / (B * c.numKvHeads * c.headDim * 8)));
}

export const MAX_CACHE_PIECES = 8;

/**
 * Threads for a step-graph call: B rows over `past` cached positions, held in pieces (see
 * `buildStep`), so a step copies at most a block of the past and reads the rest once per score and
 * value matmul. The measure is B · (parameters + 2 · layers · heads · D · past), the step's
 * multiply-adds with attention's; one thread is faster below about 2.3·10⁸ (`npm run bench:graph`,
 * section 5: the 0.8M model runs faster on one thread at every shape timed, up to batch 256 over 64
 * past positions at 2.27·10⁸; the 7.2M model runs faster on two at batch 32 over 32, 2.33·10⁸). Below
 * that the 7.2M model's choice is close and moves between runs: at batch 8 and 16 over 64 past, two
 * threads were 10–14% faster in one run of section 5, and one thread 9–13% faster in a throwaway
 * probe of the same shapes shortly before.
 */
export function stepThreads(c: ModelConfig, B: number, past: number, parameters: number): number {
  return stepWork(c, B, past, parameters) < 2.3e8 ? 1 : 0;
}

/** A decode step's measure of work: B · (parameters + 2 · layers · heads · D · past). */
function stepWork(c: ModelConfig, B: number, past: number, parameters: number): number {
  return B * (parameters + 2 * c.numLayers * c.numHeads * c.headDim * past);
}

/**
 * Two lanes from this much work a step (`stepWork`) and two rows (`npm run bench:graph`, section
 * 8, times whole greedy generations both ways; two runs): the 0.8M model gained 1.08–1.18× at
 * batch 32 and 1.30–1.35× at 128, and lost at 2 and 4 (0.89× and 0.94×, one run); batch 8
 * (6.6·10⁶) went either way (0.96×, 1.13×), so the line is above it. The 7.2M model gains from
 * batch 2 (1.4·10⁷: 1.10–1.14×).
 */
export const LANES_FROM = 1e7;

/**
 * How a cached decode step of B rows over `past` positions runs. In one lane, the whole batch
 * on `stepThreads`' count. In two lanes (`buildStep`), each half of the rows runs every op of the
 * step as its own chain, on one intra-op thread, and two inter-op threads run the chains side by
 * side: no op of the few hundred waits on a handoff between threads, and the matmuls, one per core,
 * need no splitting. `lanes` forces one or the other (a single row always runs in one); unforced,
 * two lanes from `LANES_FROM` on a machine of two or more cores.
 */
export function stepPlan(c: ModelConfig, B: number, past: number, parameters: number, lanes?: 1 | 2, cores = availableParallelism()): { threads: GraphThreads; lanes: 1 | 2 } {
  const chosen = B < 2 ? 1 : lanes ?? (cores >= 2 && stepWork(c, B, past, parameters) >= LANES_FROM ? 2 : 1);
  if (chosen === 2) return { threads: [Math.max(1, Math.floor(cores / 2)), 2], lanes: 2 };
  return { threads: stepThreads(c, B, past, parameters), lanes: 1 };
}

type Outputs = Record<string, { ref: Ref; dtype: 'float32' | 'int32' }>;

/** What both graphs start from: the inputs (the parameters become inputs on first use), the blocks. */
function begin(c: ModelConfig) {
  const g = new GraphBuilder();
  const ids = g.input('ids', 'int32');
  const pos = g.input('positions', 'int32');
  const mask = g.input('mask', 'float32');
  const params = new Map<string, Ref>();
  const param = (name: string) => params.get(name) ?? params.set(name, g.input(name, 'float32')).get(name)!;
  const past = Array.from({ length: c.numLayers }, (_, i) => ({ k: g.input(`k${i}`, 'float32'), v: g.input(`v${i}`, 'float32') }));
  return { g, ids, pos, mask, param, past, blocks: graphBlocks(g, c, param) };
}

/** The input names of layer i's frozen cache piece j (the growing piece is `k{i}`, `v{i}`). */
const pieceNames = (i: number, j: number) => ({ k: `k${i}.${j}`, v: `v${i}.${j}` });

/** The logits [B, V] of `last` [B, C] after the final norm. */
function head(c: ModelConfig, g: GraphBuilder, last: Ref, param: (name: string) => Ref, norm: (x: Ref, name: string) => Ref): Ref {
  const final = norm(last, 'norm');
  return c.tieEmbeddings ? g.matMul(final, param('embed'), false, true) : g.matMul(final, param('lmHead'));
}

/** The logits of `last` [B, C] and their argmax, added to `outputs`. */
function finish(c: ModelConfig, g: GraphBuilder, last: Ref, param: (name: string) => Ref, norm: (x: Ref, name: string) => Ref, outputs: Outputs): { graph: GraphBuilder; outputs: Outputs } {
  const logits = head(c, g, last, param, norm);
  outputs.logits = { ref: logits, dtype: 'float32' };
  outputs.next = { ref: g.argMax(logits, 1), dtype: 'int32' };
  return { graph: g, outputs };
}

function buildForward(c: ModelConfig): { graph: GraphBuilder; outputs: Outputs } {
  const { numHeads: H, numKvHeads: K, headDim: D, hiddenSize: C } = c;
  const N = H + 2 * K;
  const rep = H / K;
  const llama = c.family === 'llama';
  const { g, ids, pos, mask, param, past, blocks } = begin(c);
  const { norm, linear, mlp, queryKeyValue } = blocks;

  const Bd = g.dim(ids, 0, 'int32');
  const Td = g.dim(ids, 1, 'int32');
  const flatIds = g.reshape(ids, [-1], 'int32');
  const flatPos = g.reshape(pos, [-1], 'int32');

  let h = g.gather(param('embed'), flatIds); // [B·T, C]
  if (!llama) h = g.binary('AddV2', h, g.gather(param('pos'), flatPos));
  // RoPE factors per token [B·T, 1, D], shared by every head.
  const cos = llama ? g.gather(g.input('cos', 'float32'), flatPos) : undefined;
  const sin = llama ? g.gather(g.input('sin', 'float32'), flatPos) : undefined;

  const lastT = g.intOp('Sub', Td, g.constant([1]));
  // Each row's last position of [B·T, width] rows: [B, width].
  const lastPosition = (x: Ref, width: number) => g.reshape(g.slice(g.reshapeTo(x, g.shape([Bd, Td, width])), g.shape([0, lastT, 0]), g.constant([-1, 1, -1])), [-1, width]);
  const outputs: Outputs = {};
  // Query t (key index P + t) sees key s when s ≤ P + t and s is not padding: [B, 1, 1, T, S].
  const bias = (() => {
    const Pd = g.dim(past[0]!.k, 2);
    const Sd = g.intOp('AddV2', Pd, Td);
    const q = g.reshapeTo(g.range(g.scalar(Pd), g.scalar(Sd)), g.shape([-1, 1]), 'int32');
    const k = g.reshapeTo(g.range(g.constant(0), g.scalar(Sd)), g.shape([1, -1]), 'int32');
    const causal = g.cast(g.op('LessEqual', [k, q], { T: { type: 'int32' } }), 'bool', 'float32'); // [T, S]
    const keys = g.slice(mask, g.constant([0, 0]), g.shape([-1, Sd])); // [B, S]
    const allowed = g.binary('Mul', g.reshapeTo(causal, g.shape([1, 1, 1, Td, Sd])), g.reshapeTo(keys, g.shape([Bd, 1, 1, 1, Sd])));
    return g.binary('Mul', g.binary('Sub', g.constant(1, 'float32'), allowed), g.constant(MASKED, 'float32'));
  })();
  const heads = (y: Ref, n: number) => g.transpose(g.reshapeTo(y, g.shape([Bd, Td, n, D])), [0, 2, 1, 3]); // [B, n, T, D]
  // Layer i's q [B·T, H, D] (scaled, RoPE applied) from its input x, and its keys and values
  // [B, K, S, D], which also become outputs.
  const attentionInputs = (i: number, x: Ref) => {
    const qkv = g.reshape(linear(norm(x, `layers.${i}.norm1`), `layers.${i}.attn.qkv`), [-1, N, D]);
    const [q, k, v] = queryKeyValue(qkv, cos, sin);
    const keys = g.concat([past[i]!.k, heads(k, K)], 2);
    const values = g.concat([past[i]!.v, heads(v, K)], 2);
    outputs[`k${i}`] = { ref: keys, dtype: 'float32' };
    outputs[`v${i}`] = { ref: values, dtype: 'float32' };
    return { q, keys, values, Sd: g.dim(keys, 2) };
  };
  for (let i = 0; i < c.numLayers - 1; i++) {
    const l = `layers.${i}`;
    const { q, keys, values, Sd } = attentionInputs(i, h);
    // Grouped queries share their kv head: [B, K, rep·T, D] against [B, K, S, D].
    const grouped = g.reshapeTo(heads(q, H), g.shape([Bd, K, -1, D]));
    const scores = g.reshapeTo(g.batchMatMul(grouped, keys, false, true), g.shape([Bd, K, rep, Td, Sd]));
    const probs = g.reshapeTo(g.unary('Softmax', g.binary('AddV2', scores, bias)), g.shape([Bd, K, -1, Sd]));
    const ctx = g.transpose(g.reshapeTo(g.batchMatMul(probs, values), g.shape([Bd, H, Td, D])), [0, 2, 1, 3]); // [B, T, H, D]
    h = g.binary('AddV2', h, linear(g.reshape(ctx, [-1, H * D]), `${l}.attn.out`));
    h = g.binary('AddV2', h, mlp(norm(h, `${l}.norm2`), l));
  }
  // The last layer: every position's keys and values, but only each row's last position feeds the
  // logits, so its attention, projection and MLP run for that position alone.
  const l = `layers.${c.numLayers - 1}`;
  const { q, keys, values, Sd } = attentionInputs(c.numLayers - 1, h);
  const q1 = g.reshape(lastPosition(g.reshape(q, [-1, H * D]), H * D), [-1, K, rep, D]);
  const bias1 = g.reshapeTo(g.slice(bias, g.shape([0, 0, 0, lastT, 0]), g.constant([-1, -1, -1, 1, -1])), g.shape([Bd, 1, 1, Sd]));
  const probs = g.unary('Softmax', g.binary('AddV2', g.batchMatMul(q1, keys, false, true), bias1)); // [B, K, rep, S]
  const ctx = g.reshape(g.batchMatMul(probs, values), [-1, H * D]); // [B, H·D]
  let last = g.binary('AddV2', lastPosition(h, C), linear(ctx, `${l}.attn.out`));
  last = g.binary('AddV2', last, mlp(norm(last, `${l}.norm2`), l));
  return finish(c, g, last, param, norm, outputs);
}

/**
 * One cached decode step, one new token per row, as few ops as that allows: with T = 1 the heads
 * need reshapes, not transposes; every past key is causally visible, so only the padding mask
 * applies; there is no last position to pick. Shapes are fixed but for B and the past length.
 *
 * The past comes in `pieces` per layer: `pieces - 1` frozen ones (`k{i}.{j}`, `v{i}.{j}`, each
 * [B, K, P_j, D]) and the growing one (`k{i}`, `v{i}` [B, K, P_t, D], P_t ≥ 0), to which the new
 * token's key and value are appended; that grown piece is the output. A step so copies only the
 * growing piece, not the whole cache (a concatenation of every past key at every step cost a
 * quarter of a 7.2M model's step at 32 past positions, more as the past grows). Attention spans
 * the pieces: one score matmul per piece, one softmax over the scores side by side, the
 * probabilities split back and each piece's values weighted and summed. With one piece this is the
 * plain cached step. Inputs also: `ids`, `positions` [B] int32, `mask` [B, ≥ P + steps] float32
 * over the pieces' positions in order, the parameters, and for Llama `cos`, `sin`. Outputs:
 * `logits`, `next` as `buildForward`'s, and `k{i}`, `v{i}` [B, K, P_t + steps, D].
 *
 * With `steps` > 1 the graph runs that many greedy steps: each step's argmax is the next step's
 * token, at the next position, and `tokens` [B, steps] int32 holds every step's argmax (`logits`
 * and `next` are the last step's). One call then serves several tokens, for the call's and the
 * host's share of a step (`GREEDY_STEPS` in generate.ts).
 *
 * With `lanes` = 2 the rows run in two lanes: the first ⌈B/2⌉ and the rest each run every op of
 * every step as a chain of their own, from inputs split along rows (views) to outputs joined along
 * rows at the end, so a session of one intra-op and two inter-op threads runs them side by side
 * (`stepPlan`). Rows are independent: the outputs are one lane's.
 */
function buildStep(c: ModelConfig, pieces: number, steps: number, lanes: number): { graph: GraphBuilder; outputs: Outputs } {
  const { numHeads: H, numKvHeads: K, headDim: D } = c;
  const N = H + 2 * K;
  const rep = H / K;
  const llama = c.family === 'llama';
  const { g, ids, pos, mask, param, past, blocks } = begin(c);
  const { norm, linear, mlp, queryKeyValue } = blocks;
  const frozen = Array.from({ length: c.numLayers }, (_, i) =>
    Array.from({ length: pieces - 1 }, (_, j) => ({ k: g.input(pieceNames(i, j).k, 'float32'), v: g.input(pieceNames(i, j).v, 'float32') })),
  );
  const frozenLengths = frozen[0]!.map((p) => g.dim(p.k, 2));
  const grownLength = g.dim(past[0]!.k, 2);
  const cosTable = llama ? g.input('cos', 'float32') : undefined;
  const sinTable = llama ? g.input('sin', 'float32') : undefined;
  // Per step: each piece's length with that step's token in the last, and all of them together.
  const lengths = Array.from({ length: steps }, (_, s) => g.shape([...frozenLengths, g.intOp('AddV2', grownLength, g.constant([s + 1]))]));
  const totals = lengths.map((l) => (pieces === 1 ? l : g.op('Sum', [l, g.constant(0)], { T: { type: 'int32' }, Tidx: { type: 'int32' }, keep_dims: { bool: true } })));

  // The rows of each lane: with two, the first ⌈B/2⌉ and the rest. A split along rows, the first
  // axis, is a view: no input is copied.
  const rows = lanes === 1 ? undefined : g.shape([g.intOp('FloorDiv', g.intOp('AddV2', g.dim(ids, 0, 'int32'), g.constant([1])), g.constant([2])), -1]);
  const byLane = (x: Ref, dtype: 'float32' | 'int32' = 'float32'): Ref[] => (rows ? g.splitBy(x, rows, lanes, 0, dtype) : [x]);
  const laneIds = byLane(ids, 'int32');
  const lanePos = byLane(pos, 'int32');
  const laneMask = byLane(mask);
  const laneFrozen = frozen.map((layer) => layer.map((p) => ({ k: byLane(p.k), v: byLane(p.v) })));
  const laneGrowing = past.map((p) => ({ k: byLane(p.k), v: byLane(p.v) }));

  // One lane's `steps` steps over its rows: every step's argmax, the last logits and the grown pieces.
  const lane = (n: number) => {
    const growing = laneGrowing.map((p) => ({ k: p.k[n]!, v: p.v[n]! }));
    let tokens = laneIds[n]!;
    const chosen: Ref[] = [];
    let logits = '';
    for (let s = 0; s < steps; s++) {
      const position = s === 0 ? lanePos[n]! : g.intOp('AddV2', lanePos[n]!, g.constant([s]));
      let h = g.gather(param('embed'), tokens); // [B, C]
      if (!llama) h = g.binary('AddV2', h, g.gather(param('pos'), position));
      const cos = cosTable ? g.gather(cosTable, position) : undefined; // [B, 1, D]
      const sin = sinTable ? g.gather(sinTable, position) : undefined;
      // The padding bias of all S keys: [B, 1, 1, S].
      const keysBias = g.slice(laneMask[n]!, g.constant([0, 0]), g.shape([-1, totals[s]!]));
      const bias = g.reshapeTo(g.binary('Mul', g.binary('Sub', g.constant(1, 'float32'), keysBias), g.constant(MASKED, 'float32')), g.shape([-1, 1, 1, totals[s]!]));
      for (let i = 0; i < c.numLayers; i++) {
        const l = `layers.${i}`;
        const qkv = g.reshape(linear(norm(h, `${l}.norm1`), `${l}.attn.qkv`), [-1, N, D]); // [B, N, D]
        const [q, k, v] = queryKeyValue(qkv, cos, sin); // [B, n, D], q scaled, RoPE applied
        const keys = g.concat([growing[i]!.k, g.reshape(k, [-1, K, 1, D])], 2); // [B, K, P_t + s + 1, D]
        const values = g.concat([growing[i]!.v, g.reshape(v, [-1, K, 1, D])], 2);
        growing[i] = { k: keys, v: values };
        const allKeys = [...laneFrozen[i]!.map((p) => p.k[n]!), keys];
        const allValues = [...laneFrozen[i]!.map((p) => p.v[n]!), values];
        // Grouped queries share their kv head: [B, K, rep, D] against each piece's [B, K, P_j, D].
        const grouped = g.reshape(q, [-1, K, rep, D]);
        const scores = allKeys.map((x) => g.batchMatMul(grouped, x, false, true));
        const probs = g.unary('Softmax', g.binary('AddV2', pieces === 1 ? scores[0]! : g.concat(scores, 3), bias));
        let ctx: Ref;
        if (pieces === 1) ctx = g.batchMatMul(probs, values);
        else {
          const split = g.op('SplitV', [probs, lengths[s]!, g.constant(3)], { T: { type: 'float32' }, Tlen: { type: 'int32' }, num_split: { int: pieces } });
          const parts = allValues.map((x, j) => g.batchMatMul(j === 0 ? split : `${split}:${j}`, x));
          ctx = g.op('AddN', parts, { T: { type: 'float32' }, N: { int: pieces } });
        }
        ctx = g.reshape(ctx, [-1, H * D]); // heads in order h = k·rep + r
        h = g.binary('AddV2', h, linear(ctx, `${l}.attn.out`));
        h = g.binary('AddV2', h, mlp(norm(h, `${l}.norm2`), l));
      }
      logits = head(c, g, h, param, norm);
      tokens = g.argMax(logits, 1);
      chosen.push(tokens);
    }
    return { logits, next: tokens, growing, tokens: steps > 1 ? g.op('Pack', chosen, { T: { type: 'int32' }, N: { int: steps }, axis: { int: 1 } }) : undefined };
  };
  const results = Array.from({ length: lanes }, (_, n) => lane(n));
  // The lanes' rows back together, in order.
  const rejoin = (refs: Ref[], dtype: 'float32' | 'int32' = 'float32') => (refs.length === 1 ? refs[0]! : g.concat(refs, 0, dtype));
  const outputs: Outputs = {};
  for (let i = 0; i < c.numLayers; i++) {
    outputs[`k${i}`] = { ref: rejoin(results.map((r) => r.growing[i]!.k)), dtype: 'float32' };
    outputs[`v${i}`] = { ref: rejoin(results.map((r) => r.growing[i]!.v)), dtype: 'float32' };
  }
  outputs.logits = { ref: rejoin(results.map((r) => r.logits)), dtype: 'float32' };
  outputs.next = { ref: rejoin(results.map((r) => r.next), 'int32'), dtype: 'int32' };
  if (steps > 1) outputs.tokens = { ref: rejoin(results.map((r) => r.tokens!), 'int32'), dtype: 'int32' };
  return { graph: g, outputs };
}

/**
 * Runs a forward graph on `inputs` (ids, positions, mask and the cache) with the model's parameters
 * and RoPE tables added; returns the logits, their argmax and per layer the `k{i}`, `v{i}` outputs.
 */
function callGraph(graph: GraphFunction, model: DecoderModel, inputs: Record<string, tf.Tensor>): { logits: tf.Tensor2D; next: tf.Tensor1D; present: LayerCache[]; tokens?: tf.Tensor2D } {
  for (const [name, v] of model.params) inputs[name] = v;
  const rope = model.ropeTables();
  if (rope) Object.assign(inputs, rope);
  const out = graph.run(inputs);
  return {
    logits: out.logits as tf.Tensor2D,
    next: out.next as tf.Tensor1D,
    present: Array.from({ length: model.config.numLayers }, (_, i) => ({ k: out[`k${i}`] as tf.Tensor4D, v: out[`v${i}`] as tf.Tensor4D })),
    ...(out.tokens ? { tokens: out.tokens as tf.Tensor2D } : {}),
  };
}

/**
 * One forward call through a graph: `ids`/`positions` [B, T] (the step graph of one piece: [B]),
 * `mask` [B, ≥ P + T] (float32), `past` per layer or undefined for none (the step graph needs one).
 * The caller disposes every returned tensor.
 */
export function runForwardGraph(
  graph: GraphFunction, model: DecoderModel, ids: tf.Tensor, positions: tf.Tensor, mask: tf.Tensor2D, past: LayerCache[] | undefined,
): { logits: tf.Tensor2D; next: tf.Tensor1D; present: LayerCache[] } {
  const c = model.config;
  const inputs: Record<string, tf.Tensor> = { ids, positions, mask };
  const empty = past ? undefined : tf.zeros([ids.shape[0], c.numKvHeads, 0, c.headDim]);
  for (let i = 0; i < c.numLayers; i++) {
    inputs[`k${i}`] = past ? past[i]!.k : empty!;
    inputs[`v${i}`] = past ? past[i]!.v : empty!;
  }
  try {
    return callGraph(graph, model, inputs);
  } finally {
    empty?.dispose();
  }
}

/**
 * One call of a step graph compiled for `pieces[i].length` pieces (and some number of steps):
 * `ids`, `positions` [B] (the first step's), `mask` [B, ≥ P + steps], and per layer the cache
 * pieces in position order, the last the one that grows. Returns the last step's logits and
 * argmax, per layer the grown last piece, and for a graph of several steps every step's argmax as
 * `tokens` [B, steps]; the caller disposes them (the pieces passed in stay the caller's).
 */
export function runStepGraph(
  graph: GraphFunction, model: DecoderModel, ids: tf.Tensor, positions: tf.Tensor, mask: tf.Tensor2D, pieces: LayerCache[][],
): { logits: tf.Tensor2D; next: tf.Tensor1D; tail: LayerCache[]; tokens?: tf.Tensor2D } {
  const inputs: Record<string, tf.Tensor> = { ids, positions, mask };
  pieces.forEach((layer, i) => {
    layer.forEach((p, j) => {
      const names = j === layer.length - 1 ? { k: `k${i}`, v: `v${i}` } : pieceNames(i, j);
      inputs[names.k] = p.k;
      inputs[names.v] = p.v;
    });
  });
  const { logits, next, present, tokens } = callGraph(graph, model, inputs);
  return { logits, next, tail: present, ...(tokens ? { tokens } : {}) };
}
