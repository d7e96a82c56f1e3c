import { readFileSync } from 'node:fs';
import * as path from 'node:path';

/** The reference fixtures made by tests/fixtures/hf/make_fixtures.py with transformers. */
export const HF_FIXTURES = path.join(__dirname, '..', '..', '..', 'tests', 'fixtures', 'hf');
export const MODEL_FIXTURES = ['llama-gqa', 'llama-tied', 'gpt2', 'llama-gqa-bf16', 'gpt2-f16'] as const;

export interface LogitsCase {
  name: string;
  input_ids: number[][];
  attention_mask: number[][];
  position_ids: number[][];
  logits: number[][][];
}

export interface GreedyCase {
  name: string;
  max_new_tokens: number;
  input_ids: number[][];
  attention_mask: number[][];
  new_tokens: number[][];
}

export interface Expected {
  logits_cases: LogitsCase[];
  greedy_cases: GreedyCase[];
}

export function fixtureDir(name: string): string {
  return path.join(HF_FIXTURES, name);
}

export function expected(name: string): Expected {
  return JSON.parse(readFileSync(path.join(fixtureDir(name), 'expected.json'), 'utf8')) as Expected;
}

/** Max |a − b| over positions where the mask is 1. */
export function maxAbsDiff(got: number[][][], want: number[][][], mask: number[][]): number {
  let max = 0;
  mask.forEach((row, b) =>
    row.forEach((m, t) => {
      if (!m) return;
      const g = got[b]![t]!;
      const w = want[b]![t]!;
      for (let k = 0; k < w.length; k++) max = Math.max(max, Math.abs(g[k]! - w[k]!));
    }),
  );
  return max;
}
