/**
 * Text rows to token examples for training: the instruction is formatted with the model's
 * template, the response ends with the model's end-of-sequence token, and a pair longer than the
 * model's positions keeps the end of its prompt and the start of its responses.
 */
import type { PairRow } from '../data/rows';
import { InvalidInputError } from '../errors';
import type { PreferencePair } from '../train/dpo';
import type { SftExample } from '../train/sft';
import type { TextModel } from './text-model';

function eosOf(tm: TextModel): number[] {
  const eos = tm.tokenizer.eosTokenId ?? tm.model.config.eosTokenId;
  return eos === null || eos === undefined ? [] : [eos];
}

function fit(prompt: number[], responses: number[][], limit: number): { prompt: number[]; responses: number[][] } {
  const longest = Math.max(...responses.map((r) => r.length));
  if (prompt.length + longest <= limit) return { prompt, responses };
  // Keep at least half the room for the prompt's end, the rest for the responses' starts.
  const promptRoom = Math.max(Math.floor(limit / 2), limit - longest);
  const p = prompt.slice(Math.max(0, prompt.length - promptRoom));
  return { prompt: p, responses: responses.map((r) => r.slice(0, limit - p.length)) };
}

export function sftExample(tm: TextModel, instruction: string, response: string, maxSeqLen = tm.model.config.maxPositions): SftExample {
  const { prompt, responses } = fit(tm.tokenizer.encode(tm.template.format(instruction)), [[...tm.tokenizer.encode(response), ...eosOf(tm)]], Math.min(maxSeqLen, tm.model.config.maxPositions));
  return { prompt, response: responses[0]! };
}

export function preferencePair(tm: TextModel, row: Pick<PairRow, 'instruction' | 'chosen' | 'rejected'>, maxSeqLen = tm.model.config.maxPositions): PreferencePair {
  const encoded = [row.chosen, row.rejected].map((r) => [...tm.tokenizer.encode(r), ...eosOf(tm)]);
  if (encoded.some((r) => r.length === 0)) throw new InvalidInputError('a pair needs a tokenizer with an end-of-sequence token, or non-empty responses');
  const { prompt, responses } = fit(tm.tokenizer.encode(tm.template.format(row.instruction)), encoded, Math.min(maxSeqLen, tm.model.config.maxPositions));
  return { prompt, chosen: responses[0]!, rejected: responses[1]! };
}
