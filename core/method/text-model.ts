/**
 * A model as the method uses it: a decoder, its tokenizer and its prompt template, loaded from and
 * saved to a Hugging Face directory together, and text completion in batches with one seeded
 * random stream per completion (so a completion does not depend on what it was batched with, and a
 * shard recomputed on another worker gives the same text).
 */
import * as path from 'node:path';
import { InvalidInputError } from '../errors';
import { loadCheckpoint, saveCheckpoint, type SaveOptions } from '../model/checkpoint';
import type { DecoderModel } from '../model/decoder';
import { generate, type FinishReason } from '../model/generate';
import { Rng } from '../random';
import { INSTRUCTION_TEMPLATE, templateFromTokenizerConfig, type PromptTemplate } from '../tokenizer/template';
import { ByteTokenizer, HfTokenizer, type TextTokenizer } from '../tokenizer/tokenizer';

export interface TextModel {
  model: DecoderModel;
  tokenizer: TextTokenizer;
  template: PromptTemplate;
}

/** Loads a checkpoint with its tokenizer (required) and template (its chat_template, else the instruction template). */
export function loadTextModel(dir: string, options: { tokenizer?: 'bytes' } = {}): TextModel {
  const ckpt = loadCheckpoint(dir);
  let tokenizer: TextTokenizer;
  if (options.tokenizer === 'bytes') tokenizer = new ByteTokenizer();
  else if (ckpt.tokenizerJson) tokenizer = new HfTokenizer(ckpt.tokenizerJson, ckpt.tokenizerConfig ?? {}, path.join(dir, 'tokenizer.json'));
  else {
    ckpt.model.dispose();
    throw new InvalidInputError(`${dir} has no tokenizer.json: text needs a tokenizer (pass a model directory that has one, or use --tokenizer bytes for a byte-level model)`);
  }
  if (tokenizer.vocabSize > ckpt.config.vocabSize) {
    ckpt.model.dispose();
    throw new InvalidInputError(`${dir}: the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${ckpt.config.vocabSize}`);
  }
  const template = (ckpt.tokenizerConfig && templateFromTokenizerConfig(ckpt.tokenizerConfig, path.join(dir, 'tokenizer_config.json'))) ?? INSTRUCTION_TEMPLATE;
  return { model: ckpt.model, tokenizer, template };
}

/** Saves the model, its tokenizer and its template (as tokenizer_config.json's chat_template). */
export async function saveTextModel(tm: TextModel, dir: string, options: Omit<SaveOptions, 'tokenizerJson' | 'tokenizerConfig'> = {}): Promise<void> {
  const token = (id: number | null) => (id === null ? undefined : tm.tokenizer.decode([id], { skipSpecialTokens: false }));
  await saveCheckpoint(tm.model, dir, {
    ...options,
    tokenizerJson: tm.tokenizer.toJson(),
    tokenizerConfig: {
      chat_template: tm.template.jinja,
      ...(token(tm.tokenizer.eosTokenId) ? { eos_token: token(tm.tokenizer.eosTokenId) } : {}),
      ...(token(tm.tokenizer.bosTokenId) ? { bos_token: token(tm.tokenizer.bosTokenId) } : {}),
      ...(token(tm.tokenizer.padTokenId) ? { pad_token: token(tm.tokenizer.padTokenId) } : {}),
      tokenizer_class: 'PreTrainedTokenizerFast',
    },
  });
}

/**
 * The token sequences a stop string can be generated as: alone, and after other text (a tokenizer
 * that marks a leading space, like sentencepiece's or the word tokenizer's `▁`, encodes "\n" alone
 * as ["▁", "\n"] but writes a bare "\n" after a word).
 */
export function stopTokenSequences(tokenizer: TextTokenizer, stop: string): number[][] {
  const out = [tokenizer.encode(stop)];
  const context = tokenizer.encode('a');
  const after = tokenizer.encode(`a${stop}`);
  if (context.every((id, i) => after[i] === id)) out.push(after.slice(context.length));
  const seen = new Set<string>();
  return out.filter((ids) => ids.length > 0 && !seen.has(ids.join(',')) && (seen.add(ids.join(',')), true));
}

export interface CompletionRequest {
  /** The full prompt text (already formatted with the template where one applies). */
  prompt: string;
  /** Seed of this completion's own random stream (ignored when greedy). */
  seed: number;
}

export interface CompletionOptions {
  maxNewTokens: number;
  greedy?: boolean;
  temperature?: number;
  topP?: number;
  topK?: number;
  /** Completions per generate call. */
  batchSize?: number;
  /** Cut the text at the first of these strings (generation also stops there when it tokenizes alone). */
  stop?: string[];
  /** Longest prompt in tokens; longer prompts keep their end (the part next to the response). */
  maxPromptTokens?: number;
}

export interface Completion {
  text: string;
  finishReason: FinishReason;
  /** New tokens generated (including the end-of-sequence token). */
  tokens: number;
}

/**
 * Completes each prompt. Prompts are sorted by length into batches (less padding), results come
 * back in request order. `onProgress(done, total)` is called after each batch.
 */
export async function complete(tm: TextModel, requests: CompletionRequest[], options: CompletionOptions, onProgress?: (done: number, total: number) => void | Promise<void>): Promise<Completion[]> {
  const { tokenizer, model } = tm;
  const limit = options.maxPromptTokens ?? model.config.maxPositions - options.maxNewTokens;
  if (limit < 1) throw new InvalidInputError(`maxNewTokens ${options.maxNewTokens} leaves no room for a prompt in the model's ${model.config.maxPositions} positions`);
  const encoded = requests.map((r) => {
    const ids = tokenizer.encode(r.prompt);
    if (ids.length === 0) throw new InvalidInputError('an empty prompt cannot be completed');
    return ids.length > limit ? ids.slice(ids.length - limit) : ids;
  });
  const order = encoded.map((_, i) => i).sort((a, b) => encoded[a]!.length - encoded[b]!.length || a - b);
  const batchSize = options.batchSize ?? 16;
  const stopIds = (options.stop ?? []).flatMap((s) => stopTokenSequences(tokenizer, s));
  const results: Completion[] = new Array(requests.length);
  for (let start = 0; start < order.length; start += batchSize) {
    const batch = order.slice(start, start + batchSize);
    const out = await generate(
      model,
      batch.map((i) => encoded[i]!),
      {
        maxNewTokens: options.maxNewTokens,
        greedy: options.greedy ?? false,
        temperature: options.temperature ?? 1,
        topP: options.topP ?? 1,
        topK: options.topK ?? 0,
        ...(options.greedy ? {} : { rngs: batch.map((i) => new Rng(requests[i]!.seed)) }),
        eosTokenId: tokenizer.eosTokenId ?? model.config.eosTokenId,
        padTokenId: tokenizer.padTokenId ?? model.config.padTokenId ?? 0,
        stopSequences: stopIds,
      },
    );
    batch.forEach((i, j) => {
      let text = tokenizer.decode(out.tokens[j]!, { skipSpecialTokens: true });
      let finishReason = out.finishReasons[j]!;
      for (const s of options.stop ?? []) {
        const at = text.indexOf(s);
        if (at >= 0) {
          text = text.slice(0, at);
          finishReason = 'stop';
        }
      }
      results[i] = { text, finishReason, tokens: out.tokens[j]!.length };
    });
    await onProgress?.(Math.min(start + batchSize, order.length), order.length);
    await new Promise((resolve) => setImmediate(resolve));
  }
  return results;
}
