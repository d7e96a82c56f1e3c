/**
 * Translation between transformers' tensor names and layouts and ours.
 *
 * Ours are laid out for 2D matmuls on [B·T, C] activations: every projection weight is [in, out],
 * Llama's q/k/v are fused into one [C, (H + 2K)·D] matrix and gate/up into one [C, 2F], so a block
 * runs few, large ops. transformers stores Llama's nn.Linear weights as [out, in] and GPT-2's
 * Conv1D weights as [in, out] (already ours, q/k/v already fused as c_attn).
 */
import { InvalidInputError } from '../errors';
import type { ModelConfig } from './config';

export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

export type Weights = Map<string, HostTensor>;

function transpose(t: HostTensor): HostTensor {
  const [rows, cols] = t.shape as [number, number];
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = t.data[r * cols + c]!;
  return { shape: [cols, rows], data: out };
}

function concatColumns(parts: HostTensor[]): HostTensor {
  const rows = parts[0]!.shape[0]!;
  const cols = parts.reduce((a, p) => a + p.shape[1]!, 0);
  const out = new Float32Array(rows * cols);
  let offset = 0;
  for (const p of parts) {
    const pc = p.shape[1]!;
    for (let r = 0; r < rows; r++) out.set(p.data.subarray(r * pc, (r + 1) * pc), r * cols + offset);
    offset += pc;
  }
  return { shape: [rows, cols], data: out };
}

function splitColumns(t: HostTensor, widths: number[]): HostTensor[] {
  const [rows, cols] = t.shape as [number, number];
  let offset = 0;
  return widths.map((w) => {
    const out = new Float32Array(rows * w);
    for (let r = 0; r < rows; r++) out.set(t.data.subarray(r * cols + offset, r * cols + offset + w), r * w);
    offset += w;
    return { shape: [rows, w], data: out };
  });
}

/** GPT-2's per-layer modules (each a weight and a bias) and our names for them. */
const GPT2_MODULES: [string, string][] = [
  ['ln_1', 'norm1'], ['attn.c_attn', 'attn.qkv'], ['attn.c_proj', 'attn.out'], ['ln_2', 'norm2'], ['mlp.c_fc', 'mlp.up'], ['mlp.c_proj', 'mlp.down'],
];

/** Our parameter names and shapes for a config (what a fresh model initialises). */
export function parameterShapes(c: ModelConfig): Map<string, number[]> {
  const C = c.hiddenSize;
  const D = c.headDim;
  const qkv = (c.numHeads + 2 * c.numKvHeads) * D;
  const F = c.intermediateSize;
  const shapes = new Map<string, number[]>([['embed', [c.vocabSize, C]]]);
  const gpt2 = c.family === 'gpt2';
  if (gpt2) shapes.set('pos', [c.maxPositions, C]);
  for (let i = 0; i < c.numLayers; i++) {
    const p = `layers.${i}`;
    shapes.set(`${p}.norm1.weight`, [C]);
    shapes.set(`${p}.attn.qkv.weight`, [C, qkv]);
    shapes.set(`${p}.attn.out.weight`, [c.numHeads * D, C]);
    shapes.set(`${p}.norm2.weight`, [C]);
    if (gpt2) {
      shapes.set(`${p}.norm1.bias`, [C]);
      shapes.set(`${p}.attn.qkv.bias`, [qkv]);
      shapes.set(`${p}.attn.out.bias`, [C]);
      shapes.set(`${p}.norm2.bias`, [C]);
      shapes.set(`${p}.mlp.up.weight`, [C, F]);
      shapes.set(`${p}.mlp.up.bias`, [F]);
      shapes.set(`${p}.mlp.down.weight`, [F, C]);
      shapes.set(`${p}.mlp.down.bias`, [C]);
    } else {
      shapes.set(`${p}.mlp.gateUp.weight`, [C, 2 * F]);
      shapes.set(`${p}.mlp.down.weight`, [F, C]);
    }
  }
  shapes.set('norm.weight', [C]);
  if (gpt2) shapes.set('norm.bias', [C]);
  if (!c.tieEmbeddings) shapes.set('lmHead', [C, c.vocabSize]);
  return shapes;
}

/** transformers' tensor names and shapes for a config, as save_pretrained writes them. */
export function hfTensorShapes(c: ModelConfig): Map<string, number[]> {
  const C = c.hiddenSize;
  const D = c.headDim;
  const F = c.intermediateSize;
  const shapes = new Map<string, number[]>();
  if (c.family === 'llama') {
    shapes.set('model.embed_tokens.weight', [c.vocabSize, C]);
    for (let i = 0; i < c.numLayers; i++) {
      const p = `model.layers.${i}`;
      shapes.set(`${p}.input_layernorm.weight`, [C]);
      shapes.set(`${p}.self_attn.q_proj.weight`, [c.numHeads * D, C]);
      shapes.set(`${p}.self_attn.k_proj.weight`, [c.numKvHeads * D, C]);
      shapes.set(`${p}.self_attn.v_proj.weight`, [c.numKvHeads * D, C]);
      shapes.set(`${p}.self_attn.o_proj.weight`, [C, c.numHeads * D]);
      shapes.set(`${p}.post_attention_layernorm.weight`, [C]);
      shapes.set(`${p}.mlp.gate_proj.weight`, [F, C]);
      shapes.set(`${p}.mlp.up_proj.weight`, [F, C]);
      shapes.set(`${p}.mlp.down_proj.weight`, [C, F]);
    }
    shapes.set('model.norm.weight', [C]);
    if (!c.tieEmbeddings) shapes.set('lm_head.weight', [c.vocabSize, C]);
    return shapes;
  }
  shapes.set('transformer.wte.weight', [c.vocabSize, C]);
  shapes.set('transformer.wpe.weight', [c.maxPositions, C]);
  for (let i = 0; i < c.numLayers; i++) {
    const p = `transformer.h.${i}`;
    shapes.set(`${p}.ln_1.weight`, [C]);
    shapes.set(`${p}.ln_1.bias`, [C]);
    shapes.set(`${p}.attn.c_attn.weight`, [C, 3 * C]);
    shapes.set(`${p}.attn.c_attn.bias`, [3 * C]);
    shapes.set(`${p}.attn.c_proj.weight`, [C, C]);
    shapes.set(`${p}.attn.c_proj.bias`, [C]);
    shapes.set(`${p}.ln_2.weight`, [C]);
    shapes.set(`${p}.ln_2.bias`, [C]);
    shapes.set(`${p}.mlp.c_fc.weight`, [C, F]);
    shapes.set(`${p}.mlp.c_fc.bias`, [F]);
    shapes.set(`${p}.mlp.c_proj.weight`, [F, C]);
    shapes.set(`${p}.mlp.c_proj.bias`, [C]);
  }
  shapes.set('transformer.ln_f.weight', [C]);
  shapes.set('transformer.ln_f.bias', [C]);
  return shapes;
}

/** Tensors transformers may store that carry no parameters (buffers, or the tied head's duplicate). */
function ignorable(name: string, c: ModelConfig): boolean {
  if (/\.attn\.(masked_)?bias$/.test(name) && c.family === 'gpt2') return true; // old GPT-2 causal-mask buffers
  if (/rotary_emb\.inv_freq$/.test(name)) return true;
  return c.tieEmbeddings && name === 'lm_head.weight';
}

/** Checks names and shapes, then converts transformers' tensors to our parameters. */
export function fromHfTensors(c: ModelConfig, tensors: Map<string, HostTensor>, source: string): Weights {
  const expected = hfTensorShapes(c);
  const problems: string[] = [];
  for (const [name, shape] of expected) {
    const t = tensors.get(name);
    if (!t) problems.push(`missing tensor ${name} [${shape}]`);
    else if (t.shape.join(',') !== shape.join(',')) problems.push(`tensor ${name} has shape [${t.shape}], expected [${shape}]`);
  }
  for (const name of tensors.keys()) if (!expected.has(name) && !ignorable(name, c)) problems.push(`unexpected tensor ${name}`);
  if (problems.length) throw new InvalidInputError(`${source}: does not match its config.json: ${problems.slice(0, 10).join('; ')}${problems.length > 10 ? `; and ${problems.length - 10} more` : ''}`);
  const get = (name: string) => tensors.get(name)!;
  const w: Weights = new Map();
  if (c.family === 'llama') {
    w.set('embed', get('model.embed_tokens.weight'));
    for (let i = 0; i < c.numLayers; i++) {
      const p = `model.layers.${i}`;
      const q = `layers.${i}`;
      w.set(`${q}.norm1.weight`, get(`${p}.input_layernorm.weight`));
      w.set(`${q}.attn.qkv.weight`, concatColumns(['q', 'k', 'v'].map((x) => transpose(get(`${p}.self_attn.${x}_proj.weight`)))));
      w.set(`${q}.attn.out.weight`, transpose(get(`${p}.self_attn.o_proj.weight`)));
      w.set(`${q}.norm2.weight`, get(`${p}.post_attention_layernorm.weight`));
      w.set(`${q}.mlp.gateUp.weight`, concatColumns([transpose(get(`${p}.mlp.gate_proj.weight`)), transpose(get(`${p}.mlp.up_proj.weight`))]));
      w.set(`${q}.mlp.down.weight`, transpose(get(`${p}.mlp.down_proj.weight`)));
    }
    w.set('norm.weight', get('model.norm.weight'));
    if (!c.tieEmbeddings) w.set('lmHead', transpose(get('lm_head.weight')));
    return w;
  }
  w.set('embed', get('transformer.wte.weight'));
  w.set('pos', get('transformer.wpe.weight'));
  for (let i = 0; i < c.numLayers; i++) {
    for (const [hf, ours] of GPT2_MODULES) {
      w.set(`layers.${i}.${ours}.weight`, get(`transformer.h.${i}.${hf}.weight`));
      w.set(`layers.${i}.${ours}.bias`, get(`transformer.h.${i}.${hf}.bias`));
    }
  }
  w.set('norm.weight', get('transformer.ln_f.weight'));
  w.set('norm.bias', get('transformer.ln_f.bias'));
  return w;
}

/** Our parameters as transformers' tensors (for model.safetensors). */
export function toHfTensors(c: ModelConfig, w: Weights): Map<string, HostTensor> {
  const get = (name: string) => {
    const t = w.get(name);
    if (!t) throw new Error(`parameter ${name} is missing`);
    return t;
  };
  const out = new Map<string, HostTensor>();
  if (c.family === 'llama') {
    const D = c.headDim;
    out.set('model.embed_tokens.weight', get('embed'));
    for (let i = 0; i < c.numLayers; i++) {
      const p = `model.layers.${i}`;
      const q = `layers.${i}`;
      out.set(`${p}.input_layernorm.weight`, get(`${q}.norm1.weight`));
      const [wq, wk, wv] = splitColumns(get(`${q}.attn.qkv.weight`), [c.numHeads * D, c.numKvHeads * D, c.numKvHeads * D]);
      out.set(`${p}.self_attn.q_proj.weight`, transpose(wq!));
      out.set(`${p}.self_attn.k_proj.weight`, transpose(wk!));
      out.set(`${p}.self_attn.v_proj.weight`, transpose(wv!));
      out.set(`${p}.self_attn.o_proj.weight`, transpose(get(`${q}.attn.out.weight`)));
      out.set(`${p}.post_attention_layernorm.weight`, get(`${q}.norm2.weight`));
      const [gate, up] = splitColumns(get(`${q}.mlp.gateUp.weight`), [c.intermediateSize, c.intermediateSize]);
      out.set(`${p}.mlp.gate_proj.weight`, transpose(gate!));
      out.set(`${p}.mlp.up_proj.weight`, transpose(up!));
      out.set(`${p}.mlp.down_proj.weight`, transpose(get(`${q}.mlp.down.weight`)));
    }
    out.set('model.norm.weight', get('norm.weight'));
    if (!c.tieEmbeddings) out.set('lm_head.weight', transpose(get('lmHead')));
    return out;
  }
  out.set('transformer.wte.weight', get('embed'));
  out.set('transformer.wpe.weight', get('pos'));
  for (let i = 0; i < c.numLayers; i++) {
    for (const [hf, ours] of GPT2_MODULES) {
      out.set(`transformer.h.${i}.${hf}.weight`, get(`layers.${i}.${ours}.weight`));
      out.set(`transformer.h.${i}.${hf}.bias`, get(`layers.${i}.${ours}.bias`));
    }
  }
  out.set('transformer.ln_f.weight', get('norm.weight'));
  out.set('transformer.ln_f.bias', get('norm.bias'));
  return out;
}
