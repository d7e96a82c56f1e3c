/**
 * Batched generation: left padding, a KV cache (or full recomputation, to check the cache),
 * greedy or sampled decoding with temperature, top-k and top-p, a seeded RNG (each draw advances
 * it, so every step differs and a saved state resumes exactly), end-of-sequence and stop
 * sequences, and a cap on new tokens.
 *
 * Greedy choice is an argmax on the device (B ints come back per step); sampling happens on the
 * host from the last position's [B, V] logits: exact, backend-independent and reproducible.
 */
import * as tf from '@tensorflow/tfjs-core';
import { InvalidInputError } from '../errors';
import type { Rng } from '../random';
import { graphsAvailable } from '../compute/graph';
import { cacheBlock, forwardGraph, graphThreads, MAX_CACHE_PIECES, runForwardGraph, runStepGraph, stepPlan } from './forward-graph';
import { paddingBias, positionsFromMask, type DecoderModel, type LayerCache } from './decoder';

export interface GenerateOptions {
  maxNewTokens: number;
  /** Greedy (argmax) decoding; otherwise sampling with the settings below. */
  greedy?: boolean;
  temperature?: number;
  /** Keep the k most likely tokens (0 = all). */
  topK?: number;
  /** Keep the smallest set of tokens whose probability reaches p (1 = all). */
  topP?: number;
  /** Required for sampling (unless `rngs` is given). */
  rng?: Rng;
  /** One generator per prompt, so a row's draws do not depend on the rows batched with it. */
  rngs?: Rng[];
  /** Stop a row at this token (default: the model's eos; null: never). */
  eosTokenId?: number | null;
  /** Stop a row when its new tokens end with one of these token sequences (the sequence is kept). */
  stopSequences?: number[][];
  /** Used for left padding (default: the model's pad id, else 0). */
  padTokenId?: number;
  /** Reuse keys and values of earlier positions (default). False recomputes everything each step. */
  useCache?: boolean;
  /**
   * Greedy, cached decoding on the native backend: at most this many steps per graph call
   * (default GREEDY_STEPS; 1: one per call). Tokens are the same either way.
   */
  stepsPerCall?: number;
  /**
   * On the graph path, the lanes a cached decode step runs its rows in (see `stepPlan` in
   * forward-graph.ts; default: what it picks for the shape). Tokens are the same either way.
   */
  stepLanes?: 1 | 2;
}

export type FinishReason = 'length' | 'eos' | 'stop';

export interface GenerateResult {
  /** New tokens per prompt (without the prompt; including the eos or stop sequence that ended it). */
  tokens: number[][];
  finishReasons: FinishReason[];
}

/** Reused by `sortedIds`: two key and id buffers to sort between (grown as needed), and the digit counts. */
let sortBuffers = { keys: [new Uint32Array(0), new Uint32Array(0)], ids: [new Uint32Array(0), new Uint32Array(0)] };
const sortCount = new Uint32Array(257);

/** `sortedIds`' keys: the float bits as unsigned integers that ascend as the logits descend. */
function sortKeys(logits: Float32Array, V: number, keys: Uint32Array, ids: Uint32Array): void {
  const raw = new Uint32Array(logits.buffer, logits.byteOffset, V);
  for (let i = 0; i < V; i++) {
    const u = raw[i]! === 0x80000000 ? 0 : raw[i]!; // −0 → +0
    const ordered = u & 0x80000000 ? ~u >>> 0 : (u | 0x80000000) >>> 0; // ascending like the floats
    keys[i] = ~ordered >>> 0; // descending
    ids[i] = i;
  }
}

/**
 * One stable counting pass of `sortedIds` on the 8 bits of the keys at `shift`, into the spare
 * buffers; false (and nothing moved) when every key has the same digit there.
 */
function radixPass(shift: number, V: number, keys: Uint32Array, ids: Uint32Array, outKeys: Uint32Array, outIds: Uint32Array, count: Uint32Array): boolean {
  count.fill(0);
  for (let i = 0; i < V; i++) count[((keys[i]! >>> shift) & 255) + 1]!++;
  if (count[((keys[0]! >>> shift) & 255) + 1] === V) return false;
  for (let d = 1; d <= 256; d++) count[d]! += count[d - 1]!;
  for (let i = 0; i < V; i++) {
    const at = count[(keys[i]! >>> shift) & 255]!++;
    outKeys[at] = keys[i]!;
    outIds[at] = ids[i]!;
  }
  return true;
}

/**
 * Token ids in order of descending logit, ties by ascending id: the order sampling walks. A
 * comparator sort of the ids costs about 0.03 ms a row at V = 259 and 11 ms at V = 32,000
 * (`npm run bench:graph`), each row and step: at batch 32, a good part of a small model's decode
 * step. So the ids are sorted as integers instead: each logit's float32 bits map to an unsigned
 * integer that orders like the floats (−0 as +0), inverted so that ascending
 * means descending logits, and a least-significant-digit radix sort (four passes of 8 bits, a
 * pass skipped when every key shares its digit) orders the ids by those keys. It is stable and
 * starts from the ids in order, so equal logits keep ascending ids: exactly the comparator's
 * order (sampling.test.ts holds the two equal, ties, zeros and infinities included), in linear
 * time and without a comparison.
 */
export function sortedIds(logits: Float32Array): Uint32Array {
  const V = logits.length;
  if (sortBuffers.keys[0]!.length < V) sortBuffers = { keys: [new Uint32Array(V), new Uint32Array(V)], ids: [new Uint32Array(V), new Uint32Array(V)] };
  let [keys, spareKeys] = sortBuffers.keys as [Uint32Array, Uint32Array];
  let [ids, spareIds] = sortBuffers.ids as [Uint32Array, Uint32Array];
  sortKeys(logits, V, keys, ids);
  for (let shift = 0; shift < 32; shift += 8) {
    if (!radixPass(shift, V, keys, ids, spareKeys, spareIds, sortCount)) continue;
    [keys, spareKeys] = [spareKeys, keys];
    [ids, spareIds] = [spareIds, ids];
  }
  return ids.slice(0, V);
}

/** Chooses a token from one logits row (`rng`: the row's own generator, default options.rng). */
export function chooseToken(logits: Float32Array, options: GenerateOptions, rng: Rng | undefined = options.rng): number {
  if (options.greedy) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
    return best;
  }
  if (!rng) throw new InvalidInputError('sampling needs a seeded rng (or greedy: true)');
  const temperature = options.temperature ?? 1;
  if (!(temperature > 0)) throw new InvalidInputError(`temperature must be > 0 (got ${temperature}); use greedy for argmax`);
  const order = sortedIds(logits);
  const k = options.topK && options.topK > 0 ? Math.min(options.topK, order.length) : order.length;
  // Weights of the k best in order, and their total, summed in that order.
  const maxLogit = logits[order[0]!]! / temperature;
  const weights = new Float64Array(k);
  let total = 0;
  for (let i = 0; i < k; i++) {
    weights[i] = Math.exp(logits[order[i]!]! / temperature - maxLogit);
    total += weights[i]!;
  }
  const topP = options.topP ?? 1;
  let keep = k;
  if (topP < 1) {
    let cumulative = 0;
    for (let i = 0; i < k; i++) {
      cumulative += weights[i]! / total;
      if (cumulative >= topP) {
        keep = i + 1;
        break;
      }
    }
  }
  let keptTotal = 0;
  for (let i = 0; i < keep; i++) keptTotal += weights[i]!;
  let u = rng.next() * keptTotal;
  for (let i = 0; i < keep; i++) {
    u -= weights[i]!;
    if (u < 0) return order[i]!;
  }
  return order[keep - 1]!;
}

function endsWith(tokens: number[], suffix: number[]): boolean {
  if (suffix.length === 0 || suffix.length > tokens.length) return false;
  for (let i = 1; i <= suffix.length; i++) if (tokens[tokens.length - i] !== suffix[suffix.length - i]) return false;
  return true;
}

function disposeCache(cache: LayerCache[] | undefined): void {
  if (cache) for (const c of cache) tf.dispose([c.k, c.v]);
}

/**
 * How the tokens' logits are computed: `start` runs the prompts, `next` one more token per row.
 * Each returns the last position's choice material: argmax ids [B] (greedy) or logits [B·V].
 */
interface Stepper {
  start(): Promise<Float32Array | Int32Array>;
  next(chosen: number[], step: number): Promise<Float32Array | Int32Array>;
  dispose(): void;
}

interface StepInput {
  model: DecoderModel;
  rows: number[][];
  maskRows: number[][];
  B: number;
  L: number;
  padded: boolean;
  options: GenerateOptions;
  useCache: boolean;
}

/** Greedy: argmax on the device, B ints per step; sampling: the last position's [B, V] logits. */
async function readLast(logits: tf.Tensor, greedy: boolean | undefined): Promise<Float32Array | Int32Array> {
  try {
    if (!greedy) return (await logits.data()) as Float32Array;
    const best = tf.argMax(logits, -1);
    try {
      return (await best.data()) as Int32Array;
    } finally {
      best.dispose();
    }
  } finally {
    logits.dispose();
  }
}

/**
 * The native backend's path: the prompts and each step as one graph call (forward-graph.ts). The
 * cache is kept in pieces per layer: the piece the steps grow, after the frozen ones. The prompt's
 * keys and values are the first growing piece; one that reaches `cacheBlock` positions is frozen
 * and a new, empty one started (up to MAX_CACHE_PIECES pieces).
 */
async function graphStepper({ model, rows, maskRows, B, L, options, useCache }: StepInput): Promise<Stepper> {
  const c = model.config;
  const parameters = [...model.params.values()].reduce((a, v) => a + v.size, 0);
  const graphFor = (positions: number) => forwardGraph(c, graphThreads(positions, parameters));
  const prompts = await graphFor(B * L);
  // Over the keys of the prompt and every new token: [B, L + maxNewTokens].
  const mask = tf.tensor2d(maskRows.map((r) => [...r, ...new Array<number>(options.maxNewTokens).fill(1)]), [B, L + options.maxNewTokens], 'float32');
  const nextPos = maskRows.map((r) => r.reduce((a, b) => a + b, 0));
  // Per layer: the frozen pieces and the growing piece, of `grown` positions (0: the shared empty one).
  const frozen: LayerCache[][] = Array.from({ length: c.numLayers }, () => []);
  const empty = tf.zeros([B, c.numKvHeads, 0, c.headDim]) as tf.Tensor4D;
  let growing: LayerCache[] = [];
  let grown = 0;
  const block = cacheBlock(c, B);
  const buffered: Int32Array[] = [];
  const freezeIfFull = () => {
    if (grown < block || frozen[0]!.length >= MAX_CACHE_PIECES - 1) return;
    growing.forEach((p, i) => frozen[i]!.push(p));
    growing = growing.map(() => ({ k: empty, v: empty }));
    grown = 0;
  };
  const read = async (res: { logits: tf.Tensor; next: tf.Tensor }) => {
    try {
      return options.greedy ? ((await res.next.data()) as Int32Array) : ((await res.logits.data()) as Float32Array);
    } finally {
      tf.dispose([res.next, res.logits]);
    }
  };
  const all = () => {
    const ids = tf.tensor2d(rows, undefined, 'int32');
    const live = tf.tensor2d(maskRows.map((r, b) => [...r, ...new Array<number>(rows[b]!.length - L).fill(1)]), undefined, 'int32');
    const positions = positionsFromMask(live);
    live.dispose();
    return { ids, positions };
  };
  return {
    start: () => {
      const { ids, positions } = all();
      const res = runForwardGraph(prompts, model, ids, positions, mask, undefined);
      tf.dispose([ids, positions]);
      if (useCache) {
        growing = res.present;
        grown = L;
        freezeIfFull();
      } else disposeCache(res.present);
      return read(res);
    },
    next: async (chosen, step) => {
      if (!useCache) {
        for (let b = 0; b < B; b++) rows[b]!.push(chosen[b]!);
        const { ids, positions } = all();
        const res = runForwardGraph(await graphFor(B * rows[0]!.length), model, ids, positions, mask, undefined);
        tf.dispose([ids, positions]);
        disposeCache(res.present);
        return read(res);
      }
      // Greedy tokens computed ahead by the last call, one step's [B] at a time.
      const ahead = buffered.shift();
      if (ahead) return ahead;
      // The cache holds the prompt and `step` new tokens. Greedy decoding runs up to stepsPerCall
      // steps in one call (a power of two, so few graphs serve every count, and no more than the
      // tokens still wanted).
      const wanted = options.maxNewTokens - 1 - step;
      let steps = 1;
      while (options.greedy && steps * 2 <= Math.min(options.stepsPerCall ?? GREEDY_STEPS, wanted)) steps *= 2;
      const { threads, lanes } = stepPlan(c, B, L + step, parameters, options.stepLanes);
      const graph = await forwardGraph(c, threads, 'step', frozen[0]!.length + 1, steps, lanes);
      const ids = tf.tensor1d(chosen, 'int32');
      const positions = tf.tensor1d(nextPos, 'int32');
      for (let b = 0; b < B; b++) nextPos[b]! += steps;
      const res = runStepGraph(graph, model, ids, positions, mask, frozen.map((f, i) => [...f, growing[i]!]));
      tf.dispose([ids, positions]);
      if (grown > 0) disposeCache(growing);
      growing = res.tail;
      grown += steps;
      freezeIfFull();
      if (!res.tokens) return read(res);
      try {
        const all = (await res.tokens.data()) as Int32Array; // [B, steps]
        for (let s = 0; s < steps; s++) buffered.push(Int32Array.from({ length: B }, (_, b) => all[b * steps + s]!));
      } finally {
        tf.dispose([res.tokens, res.logits, res.next]);
      }
      return buffered.shift()!;
    },
    dispose: () => {
      for (const f of frozen) disposeCache(f);
      if (grown > 0) disposeCache(growing);
      tf.dispose([mask, empty]);
    },
  };
}

/**
 * Greedy decoding on the graph path runs this many steps per graph call (fewer for the last
 * tokens): each step's argmax feeds the next inside the graph, so a call and the host's round trip
 * are paid once per GREEDY_STEPS tokens. Rows are independent, so a row that ends inside a call
 * (eos or a stop sequence) leaves the others' tokens as they would be step by step; its own extra
 * tokens are dropped, as are a call's steps after every row has ended (at most GREEDY_STEPS − 1).
 */
export const GREEDY_STEPS = 4;

/** Eager ops on any backend (Llama with folded inference weights). */
function eagerStepper({ model, rows, maskRows, B, L, padded, options, useCache }: StepInput): Stepper {
  const inference = model.inferenceWeights();
  let cache: LayerCache[] | undefined;
  let mask = tf.tensor2d(maskRows, [B, L], 'int32');
  // Cached decoding: the padding bias of every key position, sliced per step (new tokens are real).
  let keyBias: tf.Tensor4D | undefined;
  let nextPos = maskRows.map((r) => r.reduce((a, b) => a + b, 0)); // the next token's position per row
  return {
    start: async () => {
      const ids = tf.tensor2d(rows, [B, L], 'int32');
      const positions = positionsFromMask(mask);
      const { logits, present } = model.forward(ids, positions, mask, { cache: useCache, inference, lastOnly: true, attentionBias: padded ? undefined : null });
      tf.dispose([ids, positions]);
      if (useCache) cache = present;
      if (useCache && padded) keyBias = tf.tidy(() => paddingBias(tf.concat([mask, tf.ones([B, options.maxNewTokens], 'int32')], 1) as tf.Tensor2D));
      return readLast(logits, options.greedy);
    },
    next: async (chosen, step) => {
      let logits: tf.Tensor3D;
      if (useCache) {
        const S = L + step + 1;
        const ids = tf.tensor2d(chosen, [B, 1], 'int32');
        const positions = tf.tensor2d(nextPos, [B, 1], 'int32');
        const bias = keyBias ? (tf.slice(keyBias, [0, 0, 0, 0], [B, 1, 1, S]) as tf.Tensor4D) : null;
        const res = model.forward(ids, positions, mask, { past: cache!, inference, attentionBias: bias });
        tf.dispose([ids, positions]);
        if (bias) bias.dispose();
        disposeCache(cache);
        ({ logits } = res);
        cache = res.present;
      } else {
        for (let b = 0; b < B; b++) rows[b]!.push(chosen[b]!);
        const grown = tf.tidy(() => tf.concat([mask, tf.ones([B, 1], 'int32')], 1) as tf.Tensor2D);
        mask.dispose();
        mask = grown;
        const ids = tf.tensor2d(rows, undefined, 'int32');
        const positions = positionsFromMask(mask);
        ({ logits } = model.forward(ids, positions, mask, { inference, lastOnly: true, attentionBias: padded ? undefined : null }));
        tf.dispose([ids, positions]);
      }
      nextPos = nextPos.map((p) => p + 1);
      return readLast(logits, options.greedy);
    },
    dispose: () => {
      disposeCache(cache);
      mask.dispose();
      keyBias?.dispose();
      inference?.dispose();
    },
  };
}

export async function generate(model: DecoderModel, prompts: number[][], options: GenerateOptions): Promise<GenerateResult> {
  if (prompts.length === 0) return { tokens: [], finishReasons: [] };
  if (prompts.some((p) => p.length === 0)) throw new InvalidInputError('every prompt needs at least one token');
  const { vocabSize, maxPositions } = model.config;
  for (const p of prompts) for (const id of p) if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new InvalidInputError(`token id ${id} is outside the vocabulary [0, ${vocabSize})`);
  const B = prompts.length;
  const L = Math.max(...prompts.map((p) => p.length));
  if (L + options.maxNewTokens > maxPositions) {
    throw new InvalidInputError(`prompt length ${L} + ${options.maxNewTokens} new tokens exceeds the model's ${maxPositions} positions`);
  }
  if (options.rngs && options.rngs.length !== prompts.length) throw new InvalidInputError(`rngs has ${options.rngs.length} generators for ${prompts.length} prompts`);
  const pad = options.padTokenId ?? model.config.padTokenId ?? 0;
  const eos = options.eosTokenId === undefined ? model.config.eosTokenId : options.eosTokenId;
  const useCache = options.useCache !== false;

  const rows = prompts.map((p) => [...new Array<number>(L - p.length).fill(pad), ...p]);
  const maskRows = prompts.map((p) => [...new Array<number>(L - p.length).fill(0), ...new Array<number>(p.length).fill(1)]);
  const out: number[][] = prompts.map(() => []);
  const reasons: (FinishReason | undefined)[] = prompts.map(() => undefined);
  const input: StepInput = { model, rows, maskRows, B, L, padded: prompts.some((p) => p.length < L), options, useCache };
  const stepper = graphsAvailable() ? await graphStepper(input) : eagerStepper(input);
  try {
    let last = await stepper.start();
    for (let step = 0; step < options.maxNewTokens; step++) {
      const chosen = prompts.map((_, b) => {
        if (reasons[b]) return pad;
        const token = options.greedy ? last[b]! : chooseToken(last.subarray(b * vocabSize, (b + 1) * vocabSize) as Float32Array, options, options.rngs?.[b] ?? options.rng);
        out[b]!.push(token);
        if (eos !== null && eos !== undefined && token === eos) reasons[b] = 'eos';
        else if (options.stopSequences?.some((s) => endsWith(out[b]!, s))) reasons[b] = 'stop';
        return token;
      });
      if (reasons.every(Boolean) || step === options.maxNewTokens - 1) break;
      last = await stepper.next(chosen, step);
    }
  } finally {
    stepper.dispose();
  }
  return { tokens: out, finishReasons: reasons.map((r) => r ?? 'length') };
}
