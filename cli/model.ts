import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../core/compute/backend';
import { InvalidInputError } from '../core/errors';
import { loadCheckpoint, saveCheckpoint } from '../core/model/checkpoint';
import { fromHfConfig } from '../core/model/config';
import { DecoderModel, positionsFromMask } from '../core/model/decoder';
import { generate } from '../core/model/generate';
import { Rng } from '../core/random';
import { ByteTokenizer, HfTokenizer } from '../core/tokenizer/tokenizer';
import { printJson } from './print';

export function parseIds(text: string): number[] {
  if (!/^\s*\d+(\s*,\s*\d+)*\s*$/.test(text)) throw new InvalidInputError(`--ids ${text}: expected comma-separated token ids, e.g. --ids 1,2,3`);
  return text.split(',').map((x) => Number(x.trim()));
}

function checkIds(ids: number[], vocab: number): void {
  const bad = ids.find((i) => i >= vocab);
  if (bad !== undefined) throw new InvalidInputError(`--ids: token id ${bad} is outside the model's vocabulary [0, ${vocab})`);
}

/** `srlm model logits`: one row of logits per input position (JSON). */
export async function logitsCommand(opts: { model: string; ids: string }): Promise<void> {
  await initBackend();
  const ids = parseIds(opts.ids);
  const { model } = loadCheckpoint(opts.model);
  checkIds(ids, model.config.vocabSize);
  const rows = tf.tidy(() => {
    const t = tf.tensor2d([ids], undefined, 'int32');
    const mask = tf.onesLike(t) as tf.Tensor2D;
    const { logits } = model.forward(t, positionsFromMask(mask), mask);
    return logits.arraySync()[0]!;
  });
  model.dispose();
  printJson({ logits: rows });
}

export interface GenerateCliOptions {
  model: string;
  ids?: string;
  prompt?: string;
  maxNewTokens: string;
  greedy?: boolean;
  cache?: boolean;
  temperature?: string;
  topP?: string;
  topK?: string;
  seed?: string;
  json?: boolean;
}

/** `srlm model generate`: continue token ids (or text, with the model's tokenizer). */
export async function generateCommand(opts: GenerateCliOptions): Promise<void> {
  await initBackend();
  const ckpt = loadCheckpoint(opts.model);
  const tokenizer = ckpt.tokenizerJson ? new HfTokenizer(ckpt.tokenizerJson, {}, `${opts.model}/tokenizer.json`) : undefined;
  let ids: number[];
  if (opts.ids) ids = parseIds(opts.ids);
  else if (opts.prompt !== undefined) {
    if (!tokenizer) throw new InvalidInputError(`${opts.model} has no tokenizer.json; pass --ids instead of --prompt`);
    ids = tokenizer.encode(opts.prompt);
  } else throw new InvalidInputError('give --ids 1,2,3 or --prompt TEXT');
  checkIds(ids, ckpt.config.vocabSize);
  const maxNewTokens = Number(opts.maxNewTokens);
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) throw new InvalidInputError(`--max-new-tokens ${opts.maxNewTokens}: expected a positive integer`);
  const result = await generate(ckpt.model, [ids], {
    maxNewTokens,
    greedy: opts.greedy === true,
    temperature: opts.temperature ? Number(opts.temperature) : 0.7,
    topP: opts.topP ? Number(opts.topP) : 0.9,
    topK: opts.topK ? Number(opts.topK) : 0,
    rng: new Rng(opts.seed ? Number(opts.seed) : 0),
    useCache: opts.cache !== false,
  });
  ckpt.model.dispose();
  const newIds = result.tokens[0]!;
  // Like transformers' generate(): the prompt followed by the new tokens.
  const out = { ids: [...ids, ...newIds], newIds, finishReason: result.finishReasons[0], ...(tokenizer ? { text: tokenizer.decode(newIds) } : {}) };
  if (opts.json) printJson(out);
  else process.stdout.write(`${tokenizer ? out.text : newIds.join(',')}\n`);
}

/** `srlm model init`: a freshly initialised model from a transformers config.json (for from-scratch presets). */
export async function initCommand(opts: { config: string; out: string; seed: string; tokenizer?: string }): Promise<void> {
  await initBackend();
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(opts.config, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new InvalidInputError(`cannot read model config ${opts.config}: ${(err as Error).message}`);
  }
  const tokenizer = opts.tokenizer === 'bytes' ? new ByteTokenizer() : undefined;
  if (tokenizer) Object.assign(json, { vocab_size: json.vocab_size ?? tokenizer.vocabSize, eos_token_id: tokenizer.eosTokenId, pad_token_id: tokenizer.padTokenId, bos_token_id: tokenizer.bosTokenId });
  const config = fromHfConfig(json, opts.config);
  if (tokenizer && config.vocabSize < tokenizer.vocabSize) throw new InvalidInputError(`${opts.config}: vocab_size ${config.vocabSize} is smaller than the byte tokenizer's ${tokenizer.vocabSize}`);
  const model = DecoderModel.initialise(config, Number(opts.seed));
  await saveCheckpoint(model, opts.out, tokenizer ? { tokenizerJson: tokenizer.toJson() } : {});
  const params = [...model.params.values()].reduce((a, v) => a + v.size, 0);
  model.dispose();
  printJson({ out: opts.out, family: config.family, parameters: params });
}
