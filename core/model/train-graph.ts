/**
 * A training micro-step — forward, loss and every parameter's gradient — as one graph call on the
 * native backend (see compute/graph.ts), in place of about a thousand eager ops and their tape.
 *
 * The loss is a function (`GraphBuilder.defineFunction`) and TensorFlow's SymbolicGradient
 * differentiates it with libtensorflow's own registered gradients: nothing here writes a backward
 * pass. Those gradients cover fewer ops than eager autodiff, which shapes the function:
 *  - no Gather (no function gradient): token and position rows come from one-hot matmuls, the
 *    one-hots made outside the function (the graph's int work is all outside: positions, the
 *    attention bias, shape vectors, RoPE factors);
 *  - BatchMatMulV2 for attention (V3 has no function gradient);
 *  - positive axes only (some gradients index shapes by the axis).
 * The function returns loss·(1 + z) with an input z = 0, so the gradient with respect to z is the
 * loss itself and one SymbolicGradient call yields the loss and the gradients together.
 *
 * The arithmetic is `DecoderModel.forward` with `training: true` and no dropout, and the loss is
 * sft.ts's: the masked targets' negative log-likelihood, each token weighted (1 / the optimizer
 * batch's response tokens, or 0). Tests hold loss and gradients to the eager tape's.
 *
 * Inputs: `ids`, `mask`, `targets` [B, T] int32, `weights` [B, T] float32, the parameters by our
 * names, and for Llama the RoPE tables `cos`, `sin` [P, 1, D]. Outputs: `loss` and `grad{i}` for
 * the i-th parameter in `parameterShapes` order.
 *
 * The DPO objective (`DpoObjective`) is the same graph with dpo-loss.ts's loss in the function: the
 * rows are a micro-batch's chosen responses then its rejected ones, `weights` is 1 on response
 * tokens, and each row's summed log-prob π feeds the loss with the stored reference's. The function
 * also adds Σ u·π with an input u = 0, so the gradient with respect to u is π: one call yields the
 * loss, the policy's log-probs (for the metrics) and the gradients. Extra inputs: `reference` [2B]
 * (chosen then rejected), `beta`, `scale` (the micro-batch's share of the optimizer batch) and, with
 * an NLL term, `nllWeight` and `invLengths` [B] (1 / each chosen response's length). Extra output:
 * `logps` [2B].
 */
import * as tf from '@tensorflow/tfjs-core';
import { GraphBuilder, graphsAvailable, type GraphFunction, type Ref } from '../compute/graph';
import type { ModelConfig } from './config';
import { MASKED, type DecoderModel } from './decoder';
import { graphBlocks } from './graph-blocks';
import { parameterShapes } from './hf-weights';
import type { DpoLossType } from '../train/dpo-loss';

const graphs = new Map<string, Promise<GraphFunction>>();

/**
 * The most one-hot elements (token rows × (vocabulary + positions)) a graph step may build: 2²⁶
 * floats, 256 MiB. A larger batch, or a large vocabulary, trains eagerly.
 */
export const MAX_ONE_HOT = 2 ** 26;

/** Whether a micro-batch of B × T tokens can train as a graph here (see MAX_ONE_HOT). */
export function trainGraphUsable(c: ModelConfig, B: number, T: number, dropout: number): boolean {
  const width = c.vocabSize + (c.family === 'gpt2' ? c.maxPositions : 0);
  return dropout === 0 && graphsAvailable() && B * T * width <= MAX_ONE_HOT;
}

/** DPO's loss in the training graph: the loss type, and whether it adds the chosen rows' NLL. */
export interface DpoObjective {
  loss: DpoLossType;
  nll: boolean;
}

/** The training graph for this model's shape and objective (SFT's by default), compiled once per process. */
export function trainGraph(c: ModelConfig, dpo?: DpoObjective): Promise<GraphFunction> {
  const key = JSON.stringify([c.family, c.numLayers, c.numHeads, c.numKvHeads, c.headDim, c.hiddenSize, c.intermediateSize, c.vocabSize, c.maxPositions, c.normEps, c.tieEmbeddings, dpo ?? null]);
  let found = graphs.get(key);
  if (!found) {
    const { graph, outputs } = buildTrain(c, dpo);
    found = graph.compile(outputs);
    found.catch(() => graphs.delete(key));
    graphs.set(key, found);
  }
  return found;
}

function buildTrain(c: ModelConfig, dpo?: DpoObjective): { graph: GraphBuilder; outputs: Record<string, { ref: Ref; dtype: 'float32' | 'int32' }> } {
  const { numHeads: H, numKvHeads: K, headDim: D, vocabSize: V } = c;
  const N = H + 2 * K;
  const rep = H / K;
  const llama = c.family === 'llama';
  const names = [...parameterShapes(c).keys()];
  const g = new GraphBuilder();
  const f32 = { type: 'float32' } as const;
  const i32 = { type: 'int32' } as const;

  // Outside the function: everything integer, and what has no function gradient.
  const ids = g.input('ids', 'int32');
  const mask = g.input('mask', 'int32');
  const targets = g.input('targets', 'int32');
  const weights = g.input('weights', 'float32');
  const params = names.map((name) => g.input(name, 'float32'));
  const oneHot = (indices: Ref, depth: number) =>
    g.op('OneHot', [indices, g.constant(depth), g.constant(1, 'float32'), g.constant(0, 'float32')], { T: f32, TI: i32, axis: { int: -1 } });
  const Bd = g.dim(ids, 0, 'int32');
  const Td = g.dim(ids, 1, 'int32');
  const flat = (x: Ref) => g.reshape(x, [-1], 'int32');
  // Positions as positionsFromMask: cumsum − 1, at least 0.
  const cumsum = g.op('Cumsum', [mask, g.constant(1)], { T: i32, Tidx: i32, exclusive: { bool: false }, reverse: { bool: false } });
  const positions = flat(g.op('Maximum', [g.intOp('Sub', cumsum, g.constant(1)), g.constant(0)], { T: i32 }));
  const tokenHot = oneHot(flat(ids), V); // [B·T, V]
  const targetWeights = g.binary('Mul', oneHot(flat(targets), V), g.reshape(weights, [-1, 1])); // [B·T, V]
  // Query t sees key s when s ≤ t and s is not padding: [B, 1, 1, T, T] (scores are [B, K, rep, T, T]).
  const bias = (() => {
    const range = g.range(g.constant(0), g.scalar(Td));
    const causal = g.cast(g.op('LessEqual', [g.reshape(range, [1, -1], 'int32'), g.reshape(range, [-1, 1], 'int32')], { T: i32 }), 'bool', 'float32'); // [T, T]
    const keys = g.reshapeTo(g.cast(mask, 'int32', 'float32'), g.shape([Bd, 1, 1, 1, Td]));
    const allowed = g.binary('Mul', g.reshapeTo(causal, g.shape([1, 1, 1, Td, Td])), keys);
    return g.binary('Mul', g.binary('Sub', g.constant(1, 'float32'), allowed), g.constant(MASKED, 'float32'));
  })();
  const shapes = {
    btKD: g.shape([Bd, Td, K, D]),
    btHD: g.shape([Bd, Td, H, D]),
    bKrTT: g.shape([Bd, K, rep, Td, Td]),
    bHTD: g.shape([Bd, H, Td, D]),
    bKmD: g.shape([Bd, K, -1, D]),
    bKmT: g.shape([Bd, K, -1, Td]),
    ...(dpo ? { bT: g.shape([Bd, Td]) } : {}),
  };
  const extra: [string, Ref][] = llama
    ? [['cos', g.gather(g.input('cos', 'float32'), positions)], ['sin', g.gather(g.input('sin', 'float32'), positions)]] // [B·T, 1, D]
    : [['posHot', oneHot(positions, c.maxPositions)]];
  const z = g.constant(0, 'float32');
  // DPO's inputs, each passed to the function under its own name; u = 0 (see the header).
  const dpoInputs: [string, Ref][] = [];
  if (dpo) {
    const reference = g.input('reference', 'float32');
    dpoInputs.push(['reference', reference], ['beta', g.input('beta', 'float32')], ['scale', g.input('scale', 'float32')]);
    if (dpo.nll) dpoInputs.push(['nllWeight', g.input('nllWeight', 'float32')], ['invLengths', g.input('invLengths', 'float32')]);
    dpoInputs.push(['u', g.op('ZerosLike', [reference], { T: f32 })]);
  }

  const { args } = g.defineFunction('loss', (f) => {
    const param = new Map(names.map((name) => [name, f.input(name, 'float32')]));
    const p = (name: string) => param.get(name)!;
    const tokens = f.input('tokenHot', 'float32');
    const target = f.input('targetWeights', 'float32');
    const attnBias = f.input('bias', 'float32');
    const more = new Map(extra.map(([name]) => [name, f.input(name, 'float32')]));
    const shape = Object.fromEntries(Object.keys(shapes).map((k) => [k, f.input(`shape_${k}`, 'int32')])) as Record<keyof typeof shapes, Ref>;
    const zero = f.input('z', 'float32');
    const d = new Map(dpoInputs.map(([name]) => [name, f.input(name, 'float32')]));
    const bmm = (a: Ref, b: Ref, adjY = false) => f.op('BatchMatMulV2', [a, b], { T: f32, adj_x: { bool: false }, adj_y: { bool: adjY } });
    const { norm, linear, mlp, queryKeyValue } = graphBlocks(f, c, p);
    let h = f.matMul(tokens, p('embed')); // [B·T, C]
    if (!llama) h = f.binary('AddV2', h, f.matMul(more.get('posHot')!, p('pos')));
    for (let i = 0; i < c.numLayers; i++) {
      const l = `layers.${i}`;
      const qkv = f.reshape(linear(norm(h, `${l}.norm1`), `${l}.attn.qkv`), [-1, N, D]);
      const [q, k, v] = queryKeyValue(qkv, more.get('cos'), more.get('sin'));
      const heads = (y: Ref, s: Ref) => f.transpose(f.reshapeTo(y, s), [0, 2, 1, 3]); // [B, n, T, D]
      const keys = heads(k, shape.btKD);
      const values = heads(v, shape.btKD);
      // Grouped queries share their kv head: [B, K, rep·T, D] against [B, K, T, D].
      const grouped = f.reshapeTo(heads(q, shape.btHD), shape.bKmD);
      const scores = f.reshapeTo(bmm(grouped, keys, true), shape.bKrTT);
      const probs = f.reshapeTo(f.unary('Softmax', f.binary('AddV2', scores, attnBias)), shape.bKmT);
      const ctx = f.transpose(f.reshapeTo(bmm(probs, values), shape.bHTD), [0, 2, 1, 3]); // [B, T, H, D]
      h = f.binary('AddV2', h, linear(f.reshape(ctx, [-1, H * D]), `${l}.attn.out`));
      h = f.binary('AddV2', h, mlp(norm(h, `${l}.norm2`), l));
    }
    const final = norm(h, 'norm');
    const logits = c.tieEmbeddings ? f.matMul(final, p('embed'), false, true) : f.matMul(final, p('lmHead'));
    const sum = (x: Ref, axes: number[]) => f.op('Sum', [x, f.constant(axes)], { T: f32, Tidx: i32, keep_dims: { bool: false } });
    const mean = (x: Ref) => f.op('Mean', [x, f.constant([0, 1])], { T: f32, Tidx: i32, keep_dims: { bool: false } });
    const picked = f.binary('Mul', f.unary('LogSoftmax', logits), target); // weighted target log-probs [B·T, V]
    const withLoss = (loss: Ref) => f.binary('Mul', loss, f.binary('AddV2', zero, f.constant(1, 'float32')));
    if (!dpo) return { ref: withLoss(f.unary('Neg', sum(picked, [0, 1]))), dtype: 'float32' };
    // π per row [2B], and the rows as [2, B] (chosen, rejected) less the reference's.
    const pi = sum(f.reshapeTo(sum(picked, [1]), shape.bT!), [1]);
    const pairs = f.reshape(f.binary('Sub', pi, d.get('reference')!), [2, -1]);
    const row = (a: number, b: number) => f.reshape(f.constant([a, b], 'float32'), [1, 2]);
    const margin = f.matMul(row(1, -1), pairs); // [1, B]: (πc − ρc) − (πr − ρr)
    let loss: Ref;
    if (dpo.loss === 'ipo') {
      // (h − 1/(2β))²
      const shift = f.unary('Reciprocal', f.binary('Mul', d.get('beta')!, f.constant(2, 'float32')));
      loss = mean(f.unary('Square', f.binary('Sub', margin, shift)));
    } else {
      // −log σ(βh) = softplus(y), y = −βh, as (y + |y|)/2 + log(1 + e^(−|y|)): stable, and with the
      // right slope (1/2) at y = 0, where every pair starts (the reference is the initial policy).
      // max(y, 0) in place of (y + |y|)/2 would give slope 1 there: TensorFlow's Maximum gradient
      // sends a tie to its first input, and Abs's is sign(0) = 0.
      const y = f.unary('Neg', f.binary('Mul', margin, d.get('beta')!));
      const size = f.unary('Abs', y);
      const tail = f.unary('Log', f.binary('AddV2', f.constant(1, 'float32'), f.unary('Exp', f.unary('Neg', size))));
      loss = mean(f.binary('AddV2', f.binary('Mul', f.binary('AddV2', y, size), f.constant(0.5, 'float32')), tail));
    }
    if (dpo.nll) {
      // α · mean(−πc / |c|)
      const chosen = f.matMul(row(1, 0), f.reshape(pi, [2, -1])); // [1, B]
      const perToken = f.binary('Mul', f.unary('Neg', chosen), f.reshape(d.get('invLengths')!, [1, -1]));
      loss = f.binary('AddV2', loss, f.binary('Mul', mean(perToken), d.get('nllWeight')!));
    }
    const logps = sum(f.binary('Mul', d.get('u')!, pi), [0]);
    return { ref: f.binary('AddV2', withLoss(f.binary('Mul', loss, d.get('scale')!)), logps), dtype: 'float32' };
  });
  const inputs = [...params, tokenHot, targetWeights, bias, ...extra.map(([, ref]) => ref), ...Object.values(shapes), z, ...dpoInputs.map(([, ref]) => ref)];
  const grads = g.symbolicGradient('loss', args, inputs, g.constant(1, 'float32'));
  // The gradients come in input order: z's is the loss, u's (the last input, for DPO) π.
  const at = (ref: Ref) => grads[inputs.indexOf(ref)]!;
  const outputs: Record<string, { ref: Ref; dtype: 'float32' | 'int32' }> = { loss: { ref: at(z), dtype: 'float32' } };
  if (dpo) outputs.logps = { ref: at(dpoInputs[dpoInputs.length - 1]![1]), dtype: 'float32' };
  names.forEach((_, i) => (outputs[`grad${i}`] = { ref: grads[i]!, dtype: 'float32' }));
  return { graph: g, outputs };
}

/**
 * One micro-batch through the training graph: the loss (a scalar) and each parameter's gradient,
 * keyed by the tfjs variable's name (as `tf.variableGrads` returns them), and for DPO the rows'
 * log-probs. `batch` holds the graph's inputs besides the parameters and RoPE tables. The caller
 * disposes what comes back.
 */
export function runTrainGraph(
  graph: GraphFunction, model: DecoderModel,
  batch: { ids: tf.Tensor2D; mask: tf.Tensor2D; targets: tf.Tensor2D; weights: tf.Tensor2D } & Record<string, tf.Tensor>,
): { loss: tf.Scalar; grads: tf.NamedTensorMap; logps?: tf.Tensor1D } {
  const inputs: Record<string, tf.Tensor> = { ...batch };
  for (const [name, v] of model.params) inputs[name] = v;
  const rope = model.ropeTables();
  if (rope) Object.assign(inputs, rope);
  const out = graph.run(inputs);
  const grads: tf.NamedTensorMap = {};
  [...parameterShapes(model.config).keys()].forEach((name, i) => (grads[model.p(name).name] = out[`grad${i}`]!));
  return { loss: out.loss as tf.Scalar, grads, ...(out.logps ? { logps: out.logps as tf.Tensor1D } : {}) };
}
