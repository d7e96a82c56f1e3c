import * as path from 'node:path';
import { initBackend } from '../core/compute/backend';
import { DpoSettings as DpoConfig, SftSettings as SftConfig } from '../core/config/schema';
import { readAllJsonl } from '../core/data/jsonl';
import { PairRow } from '../core/data/rows';
import { SftTextRow } from '../core/data/sft-rows';
import { InvalidInputError } from '../core/errors';
import { loadCheckpoint, saveCheckpoint } from '../core/model/checkpoint';
import { LocalStore } from '../core/store/local';
import { openStore } from '../core/store/open';
import { INSTRUCTION_TEMPLATE, formatPrompt, templateFromTokenizerConfig } from '../core/tokenizer/template';
import { preferencePair } from '../core/method/examples';
import { loadTextModel, saveTextModel } from '../core/method/text-model';
import { trainDpo, type DpoProgress } from '../core/train/dpo';
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

/** Training settings from command-line options, validated by the config schema (errors name the option). */
function settingsFrom<S extends typeof SftConfig | typeof DpoConfig>(schema: S, opts: Omit<TrainSftCliOptions, 'data'> & { beta?: string; loss?: string }): ReturnType<S['parse']> {
  const input = Object.fromEntries(
    Object.entries({
      lr: num(opts.lr), lrEnd: num(opts.lrEnd), schedule: opts.schedule, warmupSteps: num(opts.warmupSteps), batchSize: num(opts.batchSize),
      gradientAccumulation: num(opts.gradientAccumulation), epochs: num(opts.epochs), dropout: num(opts.dropout), weightDecay: num(opts.weightDecay),
      gradClip: num(opts.gradClip), maxSeqLen: num(opts.maxSeqLen), checkpointEverySteps: num(opts.checkpointEverySteps), checkpointEverySeconds: num(opts.checkpointEverySeconds),
      beta: num(opts.beta), loss: opts.loss,
    }).filter(([, v]) => v !== undefined),
  );
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new InvalidInputError(`--${String(issue.path[0] ?? '').replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: ${issue.message}`);
  }
  return parsed.data as ReturnType<S['parse']>;
}

/** Resumable state next to the output unless --state names a directory or store URI. */
function stateStore(opts: { state?: string; out: string }) {
  const stateUri = opts.state ?? `${path.resolve(opts.out)}.state`;
  return /^[a-z0-9]+:\/\//.test(stateUri) ? openStore(stateUri) : new LocalStore(stateUri);
}

/** Ctrl-C / SIGTERM: stop at the next step boundary after saving state. */
function stopOnSignal(): { signal: AbortSignal; release: () => void } {
  const stop = new AbortController();
  const onSignal = () => {
    process.stderr.write('\nsrlm: stopping: saving training state (run the same command again to resume)\n');
    stop.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return {
    signal: stop.signal,
    release: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** `srlm train sft`: fine-tune a checkpoint on JSONL rows; resumable (run it again after a crash). */
export async function trainSftCommand(opts: TrainSftCliOptions): Promise<void> {
  const parsed = { data: settingsFrom(SftConfig, opts) };
  const seed = num(opts.seed) ?? 0;
  const maxSteps = num(opts.maxSteps);
  const backend = await initBackend();
  const ckpt = loadCheckpoint(opts.model);
  let tokenizer: TextTokenizer | undefined;
  if (opts.tokenizer === 'bytes') tokenizer = new ByteTokenizer();
  else if (ckpt.tokenizerJson) tokenizer = new HfTokenizer(ckpt.tokenizerJson, {}, path.join(opts.model, 'tokenizer.json'));
  const rows = await readAllJsonl(opts.data, SftTextRow);
  const eos = tokenizer?.eosTokenId ?? ckpt.config.eosTokenId;
  const template = (ckpt.tokenizerConfig && templateFromTokenizerConfig(ckpt.tokenizerConfig, path.join(opts.model, 'tokenizer_config.json'))) ?? INSTRUCTION_TEMPLATE;
  const examples: SftExample[] = rows.map((row, i) => {
    if ('prompt_ids' in row) return { prompt: row.prompt_ids, response: row.response_ids };
    if (!tokenizer) throw new InvalidInputError(`${opts.data}: row ${i + 1} is text but ${opts.model} has no tokenizer.json; pass --tokenizer bytes or use prompt_ids/response_ids rows`);
    const prompt = 'prompt' in row ? row.prompt : formatPrompt(template, 'input' in row && row.input ? `${row.instruction}\n\n${row.input}` : row.instruction);
    const response = 'output' in row ? row.output : row.response;
    return { prompt: tokenizer.encode(prompt), response: [...tokenizer.encode(response), ...(eos !== null && eos !== undefined ? [eos] : [])] };
  });
  for (const [i, e] of examples.entries()) {
    const bad = [...e.prompt, ...e.response].find((t) => t >= ckpt.config.vocabSize);
    if (bad !== undefined) throw new InvalidInputError(`${opts.data}: row ${i + 1} has token id ${bad}, outside the model's vocabulary [0, ${ckpt.config.vocabSize})`);
  }
  const store = stateStore(opts);
  const stop = stopOnSignal();
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
  stop.release();
  if (result.stopped) {
    ckpt.model.dispose();
    process.exitCode = 130;
    return;
  }
  const metadata = { backend: backend.name, trained_by: 'srlm train sft' };
  const dtype = opts.saveDtype === 'bfloat16' ? 'bfloat16' : 'float32';
  if (tokenizer) await saveTextModel({ model: ckpt.model, tokenizer, template }, opts.out, { dtype, metadata });
  else await saveCheckpoint(ckpt.model, opts.out, { dtype, metadata });
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

export interface TrainDpoCliOptions extends Omit<TrainSftCliOptions, 'data'> {
  pairs: string;
  beta?: string;
  loss?: string;
}

/**
 * `srlm train dpo`: DPO on preference pairs (PairRow JSONL) from a checkpoint, which is also the
 * frozen reference; resumable like `train sft`. Prints TRL's metric names per step.
 */
export async function trainDpoCommand(opts: TrainDpoCliOptions): Promise<void> {
  const settings = settingsFrom(DpoConfig, opts);
  const seed = num(opts.seed) ?? 0;
  const maxSteps = num(opts.maxSteps);
  const backend = await initBackend();
  const tm = loadTextModel(opts.model, opts.tokenizer === 'bytes' ? { tokenizer: 'bytes' } : {});
  const rows = await readAllJsonl(opts.pairs, PairRow);
  if (rows.length === 0) {
    tm.model.dispose();
    throw new InvalidInputError(`${opts.pairs} has no pairs`);
  }
  const pairs = rows.map((r) => preferencePair(tm, r, settings.maxSeqLen));
  const store = stateStore(opts);
  const stop = stopOnSignal();
  const started = Date.now();
  let metrics: DpoProgress | undefined; // the step's metrics, printed with its progress
  const result = await trainDpo(tm.model, pairs, { ...settings, seed, ...(maxSteps ? { maxSteps } : {}) }, {
    state: new TrainingStateStore(store, 'dpo'),
    backend: backend.name,
    signal: stop.signal,
    onMetrics: (m) => {
      metrics = m;
    },
    onProgress: (p) => {
      const m = metrics;
      if (m && (m.step === 1 || m.step % 10 === 0 || m.step === m.total)) {
        process.stderr.write(
          `step ${m.step}/${m.total}  loss ${m.loss.toFixed(4)}  rewards/accuracies ${m['rewards/accuracies'].toFixed(3)}  rewards/margins ${m['rewards/margins'].toFixed(4)}  grad_norm ${m.grad_norm.toFixed(3)}  lr ${m.learning_rate.toExponential(2)}  ${Math.round(p.tokensPerSecond)} tok/s\n`,
        );
      }
    },
  });
  stop.release();
  if (result.stopped) {
    tm.model.dispose();
    process.exitCode = 130;
    return;
  }
  await saveTextModel(tm, opts.out, { dtype: opts.saveDtype === 'bfloat16' ? 'bfloat16' : 'float32', metadata: { backend: backend.name, trained_by: 'srlm train dpo' } });
  tm.model.dispose();
  const summary = {
    out: path.resolve(opts.out),
    pairs: pairs.length,
    steps: result.step,
    resumedFrom: result.resumedFrom,
    first: result.history[0] ?? null,
    last: result.history.at(-1) ?? null,
    final: result.final ?? null,
    backend: backend.name,
    seconds: Math.round((Date.now() - started) / 100) / 10,
  };
  if (opts.json) printJson(summary);
  else process.stderr.write(`saved ${summary.out} after ${summary.steps} steps on ${summary.pairs} pairs\n`);
}
