/**
 * Self-evaluation (the paper's step 3): the model judges each candidate with the additive
 * 5-point rubric, k times (paper: 3) with sampling, and the parsed scores are averaged. A reply
 * with no valid score is kept with `score: null` and counted, never guessed.
 */
import type { CandidateRow, JudgmentRow } from '../data/rows';
import { judgePrompt } from '../judge/prompt';
import { parseJudgeScore } from '../judge/parse';
import { deriveSeed } from '../random';
import { complete, type TextModel } from './text-model';

export interface JudgingSettings {
  samples: number;
  temperature: number;
  topP: number;
  maxNewTokens: number;
  /** Judge prompt template text with {instruction} and {response} slots (default: the additive rubric). */
  template?: string;
  batchSize?: number;
}

export interface JudgingStats {
  judgments: number;
  parsed: number;
  failed: number;
  /** failed / judgments */
  failureRate: number;
}

export async function judgeCandidates(
  tm: TextModel,
  candidates: CandidateRow[],
  s: JudgingSettings,
  seed: number,
  onProgress?: (done: number, total: number) => void | Promise<void>,
): Promise<{ judgments: JudgmentRow[]; stats: JudgingStats }> {
  const requests = candidates.flatMap((c) =>
    Array.from({ length: s.samples }, (_, k) => ({
      prompt: tm.template.format(judgePrompt(c.instruction, c.response, s.template)),
      seed: deriveSeed(seed, 'judge', c.promptId, c.index, k),
      candidate: c,
      sample: k,
    })),
  );
  const out = await complete(tm, requests, { maxNewTokens: s.maxNewTokens, temperature: s.temperature, topP: s.topP, batchSize: s.batchSize ?? 32 }, onProgress);
  const judgments = requests.map((r, i) => {
    const reply = out[i]!.text;
    const parsed = parseJudgeScore(reply);
    return { promptId: r.candidate.promptId, candidate: r.candidate.index, sample: r.sample, reply, score: parsed.ok ? parsed.score : null };
  });
  const failed = judgments.filter((j) => j.score === null).length;
  return { judgments, stats: { judgments: judgments.length, parsed: judgments.length - failed, failed, failureRate: judgments.length ? failed / judgments.length : 0 } };
}
