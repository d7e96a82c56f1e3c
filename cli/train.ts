import * as path from 'node:path';
import { initBackend } from '../core/compute/backend';
import { SftSettings as SftConfig } from '../core/config/schema';
import { readAllJsonl } from '../core/data/jsonl';
import { SftTextRow } from '../core/data/sft-rows';
import { InvalidInputError } from '../core/errors';
import { loadCheckpoint, saveCheckpoint } from '../core/model/checkpoint';
import { LocalStore } from '../core/store/local';
import { openStore } from '../core/store/open';
import { INSTRUCTION_TEMPLATE, formatPrompt } from '../core/tokenizer/template';
import { ByteTokenizer, HfTokenizer, type TextTokenizer } from '../core/tokenizer/tokenizer';
import { trainSft, type SftExample } from '../core/train/sft';
import { TrainingStateStore } from '../core/train/state';
import { printJson } from './print';

export interface TrainSftCliOptions {
  model: string;
  data: string;
  out: string;
  lr?: string;
  lrEnd?: string;
  schedule?: string;
  warmupSteps?: string;
  batchSize?: string;
  gradientAccumulation?: string;
  epochs?: string;
  maxSteps?: string;
  dropout?: string;
  weightDecay?: string;
  gradClip?: string;
  maxSeqLen?: string;
  checkpointEverySteps?: string;
  checkpointEverySeconds?: string;
  seed?: string;
  state?: string;
  tokenizer?: string;
  saveDtype?: string;
  json?: boolean;
}

const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));

/** `srlm train sft`: fine-tune a checkpoint on JSONL rows; resumable (run it again after a crash). */
export async function trainSftCommand(opts: TrainSftCliOptions): Promise<void> {
  const settingsInput = Object.fromEntries(
    Object.entries({
      lr: num(opts.lr), lrEnd: num(opts.lrEnd), schedule: opts.schedule, warmupSteps: num(opts.warmupSteps), batchSize: num(opts.batchSize),
      gradientAccumulation: num(opts.gradientAccumulation), epochs: num(opts.epochs), dropout: num(opts.dropout), weightDecay: num(opts.weightDecay),
      gradClip: num(opts.gradClip), maxSeqLen: num(opts.maxSeqLen), checkpointEverySteps: num(opts.checkpointEverySteps), checkpointEverySeconds: num(opts.checkpointEverySeconds),
    }).filter(([, v]) => v !== undefined),
  );
  const parsed = SftConfig.safeParse(settingsInput);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new InvalidInputError(`--${String(issue.path[0] ?? '').replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: ${issue.message}`);
  }
  const seed = num(opts.seed) ?? 0;
  const maxSteps = num(opts.maxSteps);
  const backend = await initBackend();
  const ckpt = loadCheckpoint(opts.model);
  let tokenizer: TextTokenizer | undefined;
  if (opts.tokenizer === 'bytes') tokenizer = new ByteTokenizer();
  else if (ckpt.tokenizerJson) tokenizer = new HfTokenizer(ckpt.tokenizerJson, {}, path.join(opts.model, 'tokenizer.json'));
  const rows = await readAllJsonl(opts.data, SftTextRow);
  const eos = tokenizer?.eosTokenId ?? ckpt.config.eosTokenId;
  const examples: SftExample[] = rows.map((row, i) => {
    if ('prompt_ids' in row) return { prompt: row.prompt_ids, response: row.response_ids };
    if (!tokenizer) throw new InvalidInputError(`${opts.data}: row ${i + 1} is text but ${opts.model} has no tokenizer.json; pass --tokenizer bytes or use prompt_ids/response_ids rows`);
    const prompt = 'prompt' in row ? row.prompt : formatPrompt(INSTRUCTION_TEMPLATE, 'input' in row && row.input ? `${row.instruction}\n\n${row.input}` : row.instruction);
    const response = 'output' in row ? row.output : row.response;
    return { prompt: tokenizer.encode(prompt), response: [...tokenizer.encode(response), ...(eos !== null && eos !== undefined ? [eos] : [])] };
  });
  for (const [i, e] of examples.entries()) {
    const bad = [...e.prompt, ...e.response].find((t) => t >= ckpt.config.vocabSize);
    if (bad !== undefined) throw new InvalidInputError(`${opts.data}: row ${i + 1} has token id ${bad}, outside the model's vocabulary [0, ${ckpt.config.vocabSize})`);
  }
  const stateUri = opts.state ?? `${path.resolve(opts.out)}.state`;
  const store = /^[a-z0-9]+:\/\//.test(stateUri) ? openStore(stateUri) : new LocalStore(stateUri);
  const stop = new AbortController();
  const onSignal = () => {
    process.stderr.write('\nsrlm: stopping: saving training state (run the same command again to resume)\n');
    stop.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const started = Date.now();
  let firstStep: number | undefined; // steps done before this process (a resumed run)
  const result = await trainSft(ckpt.model, examples, { ...parsed.data, seed, ...(maxSteps ? { maxSteps } : {}) }, {
    state: new TrainingStateStore(store, 'sft'),
    backend: backend.name,
    signal: stop.signal,
    onProgress: (p) => {
      firstStep ??= p.step - 1;
      if (p.step === firstStep + 1 || p.step % 10 === 0 || p.step === p.total) {
        const eta = (((Date.now() - started) / Math.max(1, p.step - firstStep)) * (p.total - p.step)) / 1000;
        process.stderr.write(`step ${p.step}/${p.total}  loss ${p.loss.toFixed(4)}  lr ${p.lr.toExponential(2)}  grad_norm ${p.gradNorm.toFixed(3)}  ${Math.round(p.tokensPerSecond)} tok/s  ETA ${Math.round(eta)} s\n`);
      }
    },
  });
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  if (result.stopped) {
    ckpt.model.dispose();
    process.exitCode = 130;
    return;
  }
  await saveCheckpoint(ckpt.model, opts.out, {
    dtype: opts.saveDtype === 'bfloat16' ? 'bfloat16' : 'float32',
    ...(tokenizer ? { tokenizerJson: tokenizer.toJson() } : {}),
    metadata: { backend: backend.name, trained_by: 'srlm train sft' },
  });
  ckpt.model.dispose();
  const summary = {
    out: path.resolve(opts.out),
    steps: result.step,
    resumedFrom: result.resumedFrom,
    firstLoss: result.losses[0]?.loss ?? null,
    finalLoss: result.losses.at(-1)?.loss ?? null,
    backend: backend.name,
    seconds: Math.round((Date.now() - started) / 100) / 10,
  };
  if (opts.json) printJson(summary);
  else process.stderr.write(`saved ${summary.out} after ${summary.steps} steps (loss ${summary.firstLoss?.toFixed(4)} → ${summary.finalLoss?.toFixed(4)})\n`);
}
