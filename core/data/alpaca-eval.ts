/**
 * Model outputs in AlpacaEval's `model_outputs.json` shape: a JSON array of
 * `{instruction, output, generator, dataset?}`, one per evaluation prompt.
 */
import { writeFile, rename, rm } from 'node:fs/promises';
import { z } from 'zod';
import { InvalidInputError } from '../errors';
import { describeIssue } from './jsonl';
import type { HeadToHeadRow } from './rows';

export const AlpacaEvalOutput = z.strictObject({
  instruction: z.string().min(1),
  output: z.string(),
  generator: z.string().min(1),
  dataset: z.string().min(1).optional(),
});
export type AlpacaEvalOutput = z.infer<typeof AlpacaEvalOutput>;

/** Each row's output, attributed to `generator` (and `dataset`, when given). */
export function toAlpacaEvalOutputs(rows: readonly { instruction: string; output: string }[], generator: string, dataset?: string): AlpacaEvalOutput[] {
  return rows.map((row, i) => checked({ instruction: row.instruction, output: row.output, generator, ...(dataset === undefined ? {} : { dataset }) }, i));
}

/** Model `a`'s or `b`'s response to each head-to-head prompt, with that model's id as the generator. */
export function headToHeadToAlpacaEval(rows: readonly HeadToHeadRow[], model: 'a' | 'b', dataset?: string): AlpacaEvalOutput[] {
  return rows.map((row, i) =>
    checked({ instruction: row.instruction, output: model === 'a' ? row.responseA : row.responseB, generator: model === 'a' ? row.a : row.b, ...(dataset === undefined ? {} : { dataset }) }, i),
  );
}

/**
 * Writes outputs (ready ones, or rows with the generator and dataset to give them) as pretty JSON
 * (2-space indent), to `file + '.tmp'` renamed into place. Returns the count.
 */
export async function writeAlpacaEvalOutputs(file: string, outputs: readonly AlpacaEvalOutput[]): Promise<number>;
export async function writeAlpacaEvalOutputs(file: string, rows: readonly { instruction: string; output: string }[], generator: string, dataset?: string): Promise<number>;
export async function writeAlpacaEvalOutputs(file: string, rows: readonly AlpacaEvalOutput[] | readonly { instruction: string; output: string }[], generator?: string, dataset?: string): Promise<number> {
  const outputs = generator === undefined ? rows.map((row, i) => checked(row as AlpacaEvalOutput, i)) : toAlpacaEvalOutputs(rows, generator, dataset);
  const tmp = `${file}.tmp`;
  try {
    await writeFile(tmp, `${JSON.stringify(outputs, null, 2)}\n`, { encoding: 'utf8', flush: true });
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return outputs.length;
}

function checked(output: AlpacaEvalOutput, index: number): AlpacaEvalOutput {
  const parsed = AlpacaEvalOutput.safeParse(output);
  if (parsed.success) return parsed.data;
  const { field, problem } = describeIssue(parsed.error, [index]);
  throw new InvalidInputError(`AlpacaEval output ${field}: ${problem}`);
}
