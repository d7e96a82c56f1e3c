/**
 * The decoder's blocks as graph ops, shared by the inference graph (forward-graph.ts) and the
 * training graph's loss function (train-graph.ts): norms, projections, the MLP and RoPE, the
 * arithmetic of `DecoderModel`'s eager ones. Every op here has a libtensorflow function gradient
 * (positive axes only), so the training graph can differentiate them.
 */
import type { GraphBuilder, Ref } from '../compute/graph';
import type { ModelConfig } from './config';

export interface GraphBlocks {
  /** RMSNorm (Llama) or LayerNorm (GPT-2) of [rows, C]. */
  norm(x: Ref, name: string): Ref;
  /** x·W, plus the bias for GPT-2. */
  linear(x: Ref, name: string): Ref;
  /** SwiGLU (Llama) or tanh-GELU (GPT-2) MLP, without the down projection's residual. */
  mlp(x: Ref, layer: string): Ref;
  /**
   * q (scaled by 1/√D), k and v [rows, n, D] from the fused projection [rows, H + 2K, D]; for Llama
   * with RoPE, applied to q and k in one go (they are adjacent in the fused layout).
   */
  queryKeyValue(qkv: Ref, cos?: Ref, sin?: Ref): [Ref, Ref, Ref];
}

export function graphBlocks(g: GraphBuilder, c: ModelConfig, param: (name: string) => Ref): GraphBlocks {
  const llama = c.family === 'llama';
  const { headDim: D, intermediateSize: F } = c;
  const eps = g.constant(c.normEps, 'float32');
  const mean = (x: Ref) => g.op('Mean', [x, g.constant(1)], { T: { type: 'float32' }, Tidx: { type: 'int32' }, keep_dims: { bool: true } });
  const linear = (x: Ref, name: string): Ref => {
    const y = g.matMul(x, param(`${name}.weight`));
    return llama ? y : g.binary('AddV2', y, param(`${name}.bias`));
  };
  // RoPE on [rows, heads, D] with cos and sin [rows, 1, D].
  const rotary = (x: Ref, cos: Ref, sin: Ref): Ref => {
    const [x1, x2] = g.split(x, [D / 2, D / 2], 2);
    const half = g.concat([g.unary('Neg', x2!), x1!], 2);
    return g.binary('AddV2', g.binary('Mul', x, cos), g.binary('Mul', half, sin));
  };
  return {
    norm(x, name) {
      if (llama) return g.binary('Mul', g.binary('Mul', x, g.unary('Rsqrt', g.binary('AddV2', mean(g.unary('Square', x)), eps))), param(`${name}.weight`));
      const centred = g.binary('Sub', x, mean(x));
      const normed = g.binary('Mul', centred, g.unary('Rsqrt', g.binary('AddV2', mean(g.unary('Square', centred)), eps)));
      return g.binary('AddV2', g.binary('Mul', normed, param(`${name}.weight`)), param(`${name}.bias`));
    },
    linear,
    mlp(y, l) {
      let act: Ref;
      if (llama) {
        const [gate, up] = g.split(g.matMul(y, param(`${l}.mlp.gateUp.weight`)), [F, F], 1);
        act = g.binary('Mul', g.binary('Mul', gate!, g.unary('Sigmoid', gate!)), up!);
      } else {
        // GPT-2's tanh GELU.
        const u = linear(y, `${l}.mlp.up`);
        const cube = g.binary('Mul', g.binary('Mul', u, u), u);
        const inner = g.binary('Mul', g.binary('AddV2', u, g.binary('Mul', cube, g.constant(0.044715, 'float32'))), g.constant(Math.sqrt(2 / Math.PI), 'float32'));
        act = g.binary('Mul', g.binary('Mul', u, g.constant(0.5, 'float32')), g.binary('AddV2', g.unary('Tanh', inner), g.constant(1, 'float32')));
      }
      return linear(act, `${l}.mlp.down`);
    },
    queryKeyValue(qkv, cos, sin) {
      const { numHeads: H, numKvHeads: K } = c;
      let q: Ref, k: Ref, v: Ref;
      if (llama) {
        const [qk, values] = g.split(qkv, [H + K, K], 1);
        [q, k] = g.split(rotary(qk!, cos!, sin!), [H, K], 1) as [Ref, Ref];
        v = values!;
      } else [q, k, v] = g.split(qkv, [H, K, K], 1) as [Ref, Ref, Ref];
      return [g.binary('Mul', q, g.constant(1 / Math.sqrt(D), 'float32')), k, v];
    },
  };
}
