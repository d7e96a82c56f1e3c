/**
 * Candidate responses (the paper's step 2): N sampled responses per prompt (paper: N = 4, T = 0.7,
 * p = 0.9). Each candidate has its own random stream, derived from the seed, the prompt's ID and
 * the candidate's index, so the same prompt gives the same candidates in any shard or batch.
 */
import type { CandidateRow, PromptRow } from '../data/rows';
import { deriveSeed } from '../random';
import { complete, type TextModel } from './text-model';

export interface CandidateGenerationSettings {
  n: number;
  temperature: number;
  topP: number;
  topK: number;
  maxNewTokens: number;
  /** Completions per generate call. */
  batchSize?: number;
}

export async function generateCandidates(
  tm: TextModel,
  prompts: PromptRow[],
  s: CandidateGenerationSettings,
  seed: number,
  onProgress?: (done: number, total: number) => void | Promise<void>,
): Promise<CandidateRow[]> {
  const requests = prompts.flatMap((p) =>
    Array.from({ length: s.n }, (_, k) => ({ prompt: tm.template.format(p.instruction), seed: deriveSeed(seed, 'candidate', p.id, k), promptId: p.id, instruction: p.instruction, index: k })),
  );
  const out = await complete(tm, requests, { maxNewTokens: s.maxNewTokens, temperature: s.temperature, topP: s.topP, topK: s.topK, batchSize: s.batchSize ?? 32 }, onProgress);
  return requests.map((r, i) => ({ promptId: r.promptId, instruction: r.instruction, index: r.index, response: out[i]!.text.trim(), finishReason: out[i]!.finishReason, tokens: out[i]!.tokens }));
}
