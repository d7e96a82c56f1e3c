import { z } from 'zod';
import { initBackend } from '../core/compute/backend';
import { readAllJsonl, writeJsonl } from '../core/data/jsonl';
import { HeadToHeadRow, PromptRow, RankedSetRow } from '../core/data/rows';
import { InvalidInputError } from '../core/errors';
import { evaluateJudge, headToHead, modelJudge, respond, type PointwiseJudge } from '../core/eval/head-to-head';
import { loadTextModel, type TextModel } from '../core/method/text-model';
import { printJson } from './print';

/** Prompt files: PromptRow JSONL, or any rows with an `instruction` (IFT and Alpaca rows too; other fields ignored). */
const PromptInput = z.union([PromptRow, z.looseObject({ id: z.string().min(1).optional(), instruction: z.string().min(1) })]);

async function readPrompts(file: string): Promise<{ id: string; instruction: string }[]> {
  const rows = await readAllJsonl(file, PromptInput);
  if (rows.length === 0) throw new InvalidInputError(`${file} has no prompts`);
  return rows.map((r, i) => ({ id: r.id ?? `prompt-${i + 1}`, instruction: r.instruction }));
}

const progress = (label: string) => (done: number, total: number) => {
  process.stderr.write(`\r${label} ${done}/${total}${done === total ? '\n' : ''}`);
};

interface JudgeOptions {
  judge: string;
  samples?: string;
  judgeMaxNewTokens?: string;
  seed?: string;
}

function openJudge(spec: string, self: TextModel, opts: JudgeOptions): { judge: PointwiseJudge; owned?: TextModel } {
  const settings = { samples: Number(opts.samples ?? 3), temperature: 0.7, topP: 0.9, maxNewTokens: Number(opts.judgeMaxNewTokens ?? 128) };
  if (!Number.isInteger(settings.samples) || settings.samples < 1) throw new InvalidInputError('--samples must be a positive integer');
  const seed = Number(opts.seed ?? 0);
  if (spec === 'oracle') {
    // Oracles belong to built-in task worlds (the tiny preset's); none is wired to this command yet.
    throw new InvalidInputError('--judge oracle needs a built-in task world, which this command does not take yet; use --judge self or --judge DIR');
  }
  if (spec === 'self') return { judge: modelJudge(self, 'self', settings, seed) };
  const tm = loadTextModel(spec);
  return { judge: modelJudge(tm, spec, settings, seed), owned: tm };
}

export interface HeadToHeadCliOptions extends JudgeOptions {
  a: string;
  b: string;
  prompts: string;
  maxNewTokens?: string;
  out?: string;
  json?: boolean;
}

/** `srlm eval head-to-head`: both models answer the prompts (greedy), the judge compares them. */
export async function headToHeadCommand(opts: HeadToHeadCliOptions): Promise<void> {
  const prompts = await readPrompts(opts.prompts);
  await initBackend();
  const maxNewTokens = Number(opts.maxNewTokens ?? 256);
  const a = loadTextModel(opts.a);
  const aResponses = await respond(a, prompts, maxNewTokens, progress('a answers'));
  const b = loadTextModel(opts.b);
  const bResponses = await respond(b, prompts, maxNewTokens, progress('b answers'));
  b.model.dispose();
  // `self`: model a (the newer model, by convention) judges both.
  const { judge, owned } = openJudge(opts.judge, a, opts);
  const result = await headToHead(prompts, { name: opts.a, responses: aResponses }, { name: opts.b, responses: bResponses }, judge);
  a.model.dispose();
  owned?.model.dispose();
  if (opts.out) await writeJsonl(opts.out, result.rows, HeadToHeadRow);
  const s = result.summary;
  if (opts.json) printJson({ ...s, ...(opts.out ? { out: opts.out } : {}) });
  else process.stdout.write(`${s.a} vs ${s.b} (judge ${s.judge}): ${s.wins} wins, ${s.ties} ties, ${s.losses} losses of ${s.n}; win rate ${(100 * s.winRate).toFixed(1)}% [${(100 * s.ci95[0]).toFixed(1)}, ${(100 * s.ci95[1]).toFixed(1)}]\n`);
}

export interface JudgeEvalCliOptions extends JudgeOptions {
  model: string;
  ranked: string;
  json?: boolean;
}

/** `srlm eval judge`: a judge's scores against reference rankings (pairwise accuracy, 5-best, exact match, Spearman, Kendall). */
export async function judgeEvalCommand(opts: JudgeEvalCliOptions): Promise<void> {
  const sets = await readAllJsonl(opts.ranked, RankedSetRow);
  if (sets.length === 0) throw new InvalidInputError(`${opts.ranked} has no ranked sets`);
  await initBackend();
  const tm = loadTextModel(opts.model);
  const { judge, owned } = openJudge(opts.judge, tm, opts);
  const metrics = await evaluateJudge(judge, sets);
  tm.model.dispose();
  owned?.model.dispose();
  if (opts.json) printJson({ judge: judge.name, ...metrics });
  else process.stdout.write(`${Object.entries(metrics).map(([k, v]) => `${k}: ${typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(3) : v}`).join('\n')}\n`);
}
