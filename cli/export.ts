/**
 * `srlm export RUN_ID --model NAME --format hf|alpaca-eval --out PATH`: one of a finished run's
 * models out of the artifact store — its Hugging Face directory, or its answers to the run's
 * held-out prompts as AlpacaEval `model_outputs.json`. Reads the store only (no Temporal).
 */
import { existsSync, promises as fs, statSync } from 'node:fs';
import * as path from 'node:path';
import { writeAlpacaEvalOutputs } from '../core/data/alpaca-eval';
import { InvalidInputError } from '../core/errors';
import { downloadModelFiles } from '../core/pipeline/artifacts';
import { findStoredModel, readStoredRun, storedAnswers, storedModelRef } from '../core/pipeline/stored-run';
import { openStore } from '../core/store/open';
import { printJson } from './print';
import { resolveRunConfig, type ConfigOptions } from './run-config';

export const EXPORT_FORMATS = ['hf', 'alpaca-eval'] as const;
type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportOptions extends ConfigOptions {
  model: string;
  format: string;
  out: string;
  store?: string;
  generator?: string;
  json?: boolean;
}

async function isEmptyDir(dir: string): Promise<boolean> {
  return (await fs.readdir(dir)).length === 0;
}

export async function exportCommand(runId: string, opts: ExportOptions): Promise<void> {
  if (!(EXPORT_FORMATS as readonly string[]).includes(opts.format)) throw new InvalidInputError(`--format ${opts.format}: expected one of ${EXPORT_FORMATS.join(', ')}`);
  const format = opts.format as ExportFormat;
  const out = path.resolve(opts.out);
  if (format === 'hf' && existsSync(out) && !(statSync(out).isDirectory() && (await isEmptyDir(out)))) {
    throw new InvalidInputError(`--out ${opts.out}: already exists and is not an empty directory (the model directory is written there)`);
  }
  const { config } = resolveRunConfig(opts);
  const store = openStore(opts.store ?? config.store.uri, config.store.s3);
  const run = await readStoredRun(store, runId);
  const model = findStoredModel(run, opts.model);

  if (format === 'hf') {
    // Into a sibling directory first, renamed into place once every file is verified.
    const partial = `${out}.partial-${process.pid}`;
    await fs.rm(partial, { recursive: true, force: true });
    let files: Awaited<ReturnType<typeof downloadModelFiles>>;
    try {
      files = await downloadModelFiles(store, await storedModelRef(store, model), partial);
      await fs.rm(out, { recursive: true, force: true });
      await fs.mkdir(path.dirname(out), { recursive: true });
      await fs.rename(partial, out);
    } catch (err) {
      await fs.rm(partial, { recursive: true, force: true });
      throw err;
    }
    const listed = Object.entries(files).map(([name, ref]) => ({ name, sha256: ref.sha256, bytes: ref.bytes }));
    if (opts.json) return printJson({ runId, model: model.name, format, out, source: model.uri, files: listed });
    process.stdout.write(`${model.name} of run ${runId} → ${out}\n`);
    for (const f of listed) process.stdout.write(`  ${f.name.padEnd(24)} ${String(f.bytes).padStart(10)} B  sha256 ${f.sha256} (verified)\n`);
    return;
  }

  const answers = await storedAnswers(store, run, model);
  const generator = opts.generator ?? model.name;
  const file = existsSync(out) && statSync(out).isDirectory() ? path.join(out, 'model_outputs.json') : out;
  await fs.mkdir(path.dirname(file), { recursive: true });
  const count = await writeAlpacaEvalOutputs(file, answers, generator);
  if (opts.json) return printJson({ runId, model: model.name, format, out: file, generator, rows: count });
  process.stdout.write(`${count} answers of ${model.name} (run ${runId}) to its evaluation prompts → ${file} (generator "${generator}")\n`);
}
