import { z } from 'zod';
import { InvalidInputError } from '../errors';

/**
 * One config for both decoder families. Field names are ours; `fromHfConfig` and `toHfConfig`
 * translate from and to transformers' LlamaConfig and GPT2Config (config.json).
 */
export const ModelConfig = z.strictObject({
  family: z.enum(['llama', 'gpt2']),
  vocabSize: z.number().int().positive(),
  hiddenSize: z.number().int().positive(),
  numLayers: z.number().int().positive(),
  numHeads: z.number().int().positive(),
  /** Key/value heads: fewer than numHeads is grouped-query attention. */
  numKvHeads: z.number().int().positive(),
  headDim: z.number().int().positive(),
  intermediateSize: z.number().int().positive(),
  maxPositions: z.number().int().positive(),
  /** RoPE base (Llama). */
  ropeTheta: z.number().positive().default(10000),
  normEps: z.number().positive(),
  tieEmbeddings: z.boolean(),
  bosTokenId: z.number().int().nonnegative().nullable().default(null),
  eosTokenId: z.number().int().nonnegative().nullable().default(null),
  padTokenId: z.number().int().nonnegative().nullable().default(null),
});
export type ModelConfig = z.infer<typeof ModelConfig>;

type Json = Record<string, unknown>;

const num = (cfg: Json, key: string, source: string, fallback?: number): number => {
  const v = cfg[key] ?? fallback;
  if (typeof v !== 'number') throw new InvalidInputError(`${source}: field ${key} is missing or not a number`);
  return v;
};
const tokenId = (v: unknown): number | null => (typeof v === 'number' ? v : Array.isArray(v) && typeof v[0] === 'number' ? v[0] : null);

/** Reads a transformers config.json (LlamaForCausalLM or GPT2LMHeadModel). */
export function fromHfConfig(cfg: Json, source = 'config.json'): ModelConfig {
  const type = cfg.model_type;
  if (type === 'llama') {
    // transformers ≥ 5 writes rope_parameters {rope_theta, rope_type}; earlier versions rope_theta and rope_scaling.
    const rope = (cfg.rope_parameters ?? {}) as Json;
    const ropeType = rope.rope_type ?? (cfg.rope_scaling as Json | null | undefined)?.rope_type ?? (cfg.rope_scaling ? 'scaled' : 'default');
    if (ropeType !== 'default') throw new InvalidInputError(`${source}: RoPE type ${String(ropeType)} (rope scaling) is not supported yet`);
    const hidden = num(cfg, 'hidden_size', source);
    const heads = num(cfg, 'num_attention_heads', source);
    return ModelConfig.parse({
      family: 'llama',
      vocabSize: num(cfg, 'vocab_size', source),
      hiddenSize: hidden,
      numLayers: num(cfg, 'num_hidden_layers', source),
      numHeads: heads,
      numKvHeads: num(cfg, 'num_key_value_heads', source, heads),
      headDim: num(cfg, 'head_dim', source, hidden / heads),
      intermediateSize: num(cfg, 'intermediate_size', source),
      maxPositions: num(cfg, 'max_position_embeddings', source),
      ropeTheta: num(cfg, 'rope_theta', source, typeof rope.rope_theta === 'number' ? rope.rope_theta : 10000),
      normEps: num(cfg, 'rms_norm_eps', source, 1e-6),
      tieEmbeddings: cfg.tie_word_embeddings === true,
      bosTokenId: tokenId(cfg.bos_token_id),
      eosTokenId: tokenId(cfg.eos_token_id),
      padTokenId: tokenId(cfg.pad_token_id),
    });
  }
  if (type === 'gpt2') {
    const hidden = num(cfg, 'n_embd', source);
    const heads = num(cfg, 'n_head', source);
    const act = cfg.activation_function ?? 'gelu_new';
    if (act !== 'gelu_new' && act !== 'gelu_pytorch_tanh') throw new InvalidInputError(`${source}: activation_function ${String(act)} is not supported (gelu_new)`);
    return ModelConfig.parse({
      family: 'gpt2',
      vocabSize: num(cfg, 'vocab_size', source),
      hiddenSize: hidden,
      numLayers: num(cfg, 'n_layer', source),
      numHeads: heads,
      numKvHeads: heads,
      headDim: hidden / heads,
      intermediateSize: typeof cfg.n_inner === 'number' ? cfg.n_inner : 4 * hidden,
      maxPositions: num(cfg, 'n_positions', source),
      normEps: num(cfg, 'layer_norm_epsilon', source, 1e-5),
      tieEmbeddings: cfg.tie_word_embeddings !== false,
      bosTokenId: tokenId(cfg.bos_token_id),
      eosTokenId: tokenId(cfg.eos_token_id),
      padTokenId: tokenId(cfg.pad_token_id),
    });
  }
  throw new InvalidInputError(`${source}: model_type ${JSON.stringify(type)} is not supported; use llama or gpt2`);
}

/** Writes a config.json that transformers loads with AutoModelForCausalLM. */
export function toHfConfig(c: ModelConfig): Json {
  const ids = { bos_token_id: c.bosTokenId, eos_token_id: c.eosTokenId, pad_token_id: c.padTokenId };
  if (c.family === 'llama') {
    return {
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      vocab_size: c.vocabSize,
      hidden_size: c.hiddenSize,
      num_hidden_layers: c.numLayers,
      num_attention_heads: c.numHeads,
      num_key_value_heads: c.numKvHeads,
      head_dim: c.headDim,
      intermediate_size: c.intermediateSize,
      max_position_embeddings: c.maxPositions,
      rope_theta: c.ropeTheta,
      rms_norm_eps: c.normEps,
      tie_word_embeddings: c.tieEmbeddings,
      hidden_act: 'silu',
      attention_bias: false,
      mlp_bias: false,
      torch_dtype: 'float32',
      ...ids,
    };
  }
  return {
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    vocab_size: c.vocabSize,
    n_embd: c.hiddenSize,
    n_layer: c.numLayers,
    n_head: c.numHeads,
    n_inner: c.intermediateSize,
    n_positions: c.maxPositions,
    layer_norm_epsilon: c.normEps,
    activation_function: 'gelu_new',
    tie_word_embeddings: true,
    torch_dtype: 'float32',
    ...ids,
  };
}
