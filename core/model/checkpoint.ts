/**
 * Checkpoints are Hugging Face model directories: config.json, model.safetensors,
 * generation_config.json, and tokenizer.json when the model has one. A directory written here
 * loads in transformers (AutoModelForCausalLM) with the same logits, and a small transformers
 * Llama or GPT-2 directory loads here. A directory without tokenizer.json (what save_pretrained
 * writes for a bare model) still loads for everything that takes token ids.
 */
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { InvalidInputError } from '../errors';
import { fromHfConfig, toHfConfig, type ModelConfig } from './config';
import { DecoderModel } from './decoder';
import { fromHfTensors, toHfTensors } from './hf-weights';
import { readSafetensors, writeSafetensors } from './safetensors';

export interface LoadedCheckpoint {
  model: DecoderModel;
  config: ModelConfig;
  /** tokenizer.json's text, when the directory has one. */
  tokenizerJson?: string;
  /** tokenizer_config.json, when the directory has one (special tokens, chat_template). */
  tokenizerConfig?: Record<string, unknown>;
  /** The stored dtype of the weights (F32, F16 or BF16). */
  storedDtype: string;
}

function readJson(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new InvalidInputError(`cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new InvalidInputError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
}

export function loadCheckpoint(dir: string): LoadedCheckpoint {
  const configFile = path.join(dir, 'config.json');
  if (!existsSync(configFile)) throw new InvalidInputError(`${dir} is not a model directory: it has no config.json`);
  const config = fromHfConfig(readJson(configFile), configFile);
  const weightsFile = path.join(dir, 'model.safetensors');
  if (!existsSync(weightsFile)) {
    const sharded = existsSync(path.join(dir, 'model.safetensors.index.json'));
    throw new InvalidInputError(`${dir} has no model.safetensors${sharded ? ' (sharded checkpoints are not supported yet)' : ''}`);
  }
  const { tensors } = readSafetensors(readFileSync(weightsFile), weightsFile);
  const storedDtype = [...new Set([...tensors.values()].map((t) => t.dtype))].join('+');
  const model = new DecoderModel(config, fromHfTensors(config, tensors, weightsFile));
  const tokenizerFile = path.join(dir, 'tokenizer.json');
  const tokenizerConfigFile = path.join(dir, 'tokenizer_config.json');
  return {
    model,
    config,
    storedDtype,
    ...(existsSync(tokenizerFile) ? { tokenizerJson: readFileSync(tokenizerFile, 'utf8') } : {}),
    ...(existsSync(tokenizerConfigFile) ? { tokenizerConfig: readJson(tokenizerConfigFile) } : {}),
  };
}

export interface SaveOptions {
  dtype?: 'float32' | 'bfloat16';
  tokenizerJson?: string;
  /** Written as tokenizer_config.json (with the prompt template as its chat_template). */
  tokenizerConfig?: Record<string, unknown>;
  /** Recorded in the safetensors metadata (e.g. the compute backend that trained it). */
  metadata?: Record<string, string>;
}

/** Writes a Hugging Face directory; files are written to temp names and renamed into place. */
export async function saveCheckpoint(model: DecoderModel, dir: string, options: SaveOptions = {}): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  const hfConfig = toHfConfig(model.config);
  if (options.dtype === 'bfloat16') hfConfig.torch_dtype = 'bfloat16';
  const files: [string, Buffer | string][] = [
    ['config.json', `${JSON.stringify(hfConfig, null, 2)}\n`],
    ['generation_config.json', `${JSON.stringify({ bos_token_id: model.config.bosTokenId, eos_token_id: model.config.eosTokenId, pad_token_id: model.config.padTokenId }, null, 2)}\n`],
    ['model.safetensors', writeSafetensors(toHfTensors(model.config, await model.weights()), options.dtype === 'bfloat16' ? 'BF16' : 'F32', { format: 'pt', ...options.metadata })],
  ];
  if (options.tokenizerJson) files.push(['tokenizer.json', options.tokenizerJson]);
  if (options.tokenizerConfig) files.push(['tokenizer_config.json', `${JSON.stringify(options.tokenizerConfig, null, 2)}\n`]);
  for (const [name, body] of files) {
    const tmp = path.join(dir, `.${name}.partial`);
    await fs.writeFile(tmp, body);
    await fs.rename(tmp, path.join(dir, name));
  }
}
