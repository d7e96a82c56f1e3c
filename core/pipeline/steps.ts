/**
 * The steps of a self-rewarding run as plain functions over the store: each takes small JSON
 * (settings and artifact refs) and returns small JSON. Temporal activities are thin adapters over
 * these (activities/pipeline.ts); tests call them directly too.
 *
 * Every step writes under `runs/<runId>/steps/<step>-<hash>/`, where the hash covers everything the
 * step's output depends on (input artifacts' sha256, settings, seed). Its result is published last
 * as `result.json`; a step whose result is already there returns it without recomputing, so a
 * retried workflow or iteration redoes only the steps whose inputs or settings changed. Long steps
 * save resumable state under the same prefix and pick it up after a crash.
 */
import { createHash } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { canonicalJson } from '../canonical-json';
import { settingsForIteration } from '../config/load';
import type { RunConfig } from '../config/schema';
import { readAllJsonl } from '../data/jsonl';
import { CandidateRow, EftRow, HeadToHeadRow, IftRow, JudgmentRow, PairRow, PromptRow, RankedSetRow } from '../data/rows';
import { InvalidInputError, SrlmError } from '../errors';
import { evaluateJudge, headToHead, modelJudge, oracleJudgeFrom, respond, respondSampled, sampledHeadToHead, type EvalSampling, type PointwiseJudge } from '../eval/head-to-head';
import type { HeadToHeadSummary, RewardModelMetrics, SampledHeadToHeadSummary } from '../eval/metrics';
import { meanJudgeScores, onPolicyAccuracy, pairOracleCounts, type OnPolicyAccuracy, type PairOracleCounts } from '../eval/oracle-diagnostics';
import { judgePrompt } from '../judge/prompt';
import { generateCandidates } from '../method/candidates';
import { preferencePair, sftExample } from '../method/examples';
import { judgeCandidates, type JudgingStats } from '../method/judging';
import { buildPairs, type PairStats } from '../method/pairs';
import { generatePrompts } from '../method/prompts';
import { loadTextModel, saveTextModel, type TextModel } from '../method/text-model';
import type { ArtifactRef, ArtifactStore } from '../store/artifact';
import { deriveSeed, Rng } from '../random';
import { validateRunId } from '../store/keys';
import { trainDpo, type DpoProgress } from '../train/dpo';
import type { DpoMetrics } from '../train/dpo-loss';
import { trainSft } from '../train/sft';
import { TrainingStateStore } from '../train/state';
import { fetchModel, getJson, getJsonl, putJson, putJsonl, putModel } from './artifacts';
import '../worlds/index'; // registers the built-in worlds (builtin:tiny)
import { renderHtml, renderMarkdown, type RunReport } from './report';
import { configWorldVersions, loadWorld, worldVersions, type BuiltinWorld } from './world';

export type { RunReport } from './report';

/** What a running step can report: heartbeats with progress a person can read. */
export interface StepContext {
  store: ArtifactStore;
  backend: string;
  heartbeat(details: StepHeartbeat): void;
  /** Aborted on graceful shutdown: training saves its state and the step fails retryably. */
  signal?: AbortSignal;
  /** A scratch directory for this step (models are written here before upload). */
  scratch: string;
}

export interface StepHeartbeat {
  phase: string;
  step: number;
  total: number;
  /** Where resumable state is kept, if the step has any. */
  stateUri?: string;
  metrics?: Record<string, number>;
}

/** A step stopped by shutdown: retryable, it resumes from its saved state. */
export class StepInterruptedError extends SrlmError {
  readonly retryable = true;
}

/** A setting makes training fail for good (diverged, or refused by a fault switch in tests). */
export class TrainingFailedError extends SrlmError {
  readonly retryable = false;
}

export interface StepResult {
  /** True when the step's result was found in the store and nothing was recomputed. */
  reused: boolean;
  /** The step's prefix in the store. */
  key: string;
}

function hashOf(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex').slice(0, 16);
}

const refId = (ref: ArtifactRef | undefined) => ref?.sha256 ?? null;
/** Settings as a step key sees them: batching changes how the work runs, not what it makes. */
const unbatched = <S extends { batchSize?: number }>({ batchSize: _, ...rest }: S) => rest;

/**
 * `{worlds: {name: version}}` for the built-in worlds among `specs`, else nothing: the keys of steps
 * whose output a world's code makes (its data, M0, its oracle's scores) change with its version,
 * and the keys of runs on the user's own data stay as they were.
 */
function worldTag(worlds: Record<string, string>): { worlds?: Record<string, string> } {
  return Object.keys(worlds).length ? { worlds } : {};
}
const runWorldTag = (config: RunConfig) => worldTag(configWorldVersions(config));

export function stepKey(runId: string, step: string, inputs: unknown): string {
  return `runs/${validateRunId(runId)}/steps/${step}-${hashOf({ step, inputs })}`;
}

async function once<T extends object>(ctx: StepContext, key: string, compute: () => Promise<T>): Promise<T & StepResult> {
  const resultKey = `${key}/result.json`;
  if (await ctx.store.head(resultKey)) return { ...(await getJson<T>(ctx.store, resultKey)), reused: true, key };
  const result = await compute();
  await putJson(ctx.store, resultKey, result);
  return { ...result, reused: false, key };
}

async function withModel<T>(ctx: StepContext, ref: ArtifactRef, use: (tm: TextModel) => Promise<T>): Promise<T> {
  const tm = loadTextModel(await fetchModel(ctx.store, ref));
  try {
    return await use(tm);
  } finally {
    tm.model.dispose();
  }
}

async function saveModel(ctx: StepContext, tm: TextModel, key: string, metadata: Record<string, string>, dtype: 'float32' | 'bfloat16'): Promise<ArtifactRef> {
  const dir = path.join(ctx.scratch, key.replace(/[^A-Za-z0-9._-]+/g, '_'));
  await saveTextModel(tm, dir, { dtype, metadata: { backend: ctx.backend, ...metadata } });
  const ref = await putModel(ctx.store, `${key}/model`, dir);
  await fs.rm(dir, { recursive: true, force: true });
  return ref;
}

const BUILTIN = /^builtin:([a-z0-9-]+)(?:\/([a-z0-9-]+))?$/;

async function worldOf(spec: string): Promise<BuiltinWorld> {
  const m = BUILTIN.exec(spec);
  if (!m) throw new InvalidInputError(`${spec} is not a builtin: name`);
  const world = await loadWorld(m[1]!);
  if (!world) throw new InvalidInputError(`unknown built-in world ${JSON.stringify(m[1])} in ${spec}`);
  return world;
}

/** Template text: a built-in world's, or a local file's. */
async function templateText(spec: string | undefined, which: 'judge' | 'selfInstruct', config: RunConfig): Promise<string | undefined> {
  if (spec === undefined) {
    if (!config.model.base.startsWith('builtin:')) return undefined;
    const world = await worldOf(config.model.base);
    return which === 'judge' ? world.judgeTemplate : world.selfInstructTemplate;
  }
  if (spec.startsWith('builtin:')) {
    const world = await worldOf(spec);
    return which === 'judge' ? world.judgeTemplate : world.selfInstructTemplate;
  }
  try {
    return await fs.readFile(spec.replace(/^file:\/\//, ''), 'utf8');
  } catch (err) {
    throw new InvalidInputError(`cannot read template ${spec}: ${(err as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Data and base model

export interface DataRefs {
  ift: ArtifactRef;
  eft: ArtifactRef;
  evalPrompts?: ArtifactRef;
  rankedEval?: ArtifactRef;
  counts: { ift: number; eft: number; evalPrompts: number; rankedEval: number };
}

/** Where a run's seed data step keeps its result (`<key>/result.json` holds the DataRefs). */
export function dataStepKey(runId: string, config: Pick<RunConfig, 'data' | 'seed'>): string {
  return stepKey(runId, 'data', { data: config.data, seed: config.seed, ...worldTag(worldVersions(Object.values(config.data))) });
}

/** Seed data into the run's store: a built-in world's (from the seed) or the user's files, validated row by row. */
export async function prepareData(ctx: StepContext, input: { runId: string; config: RunConfig }): Promise<DataRefs & StepResult> {
  const { data, seed } = input.config;
  const key = dataStepKey(input.runId, input.config);
  return once(ctx, key, async () => {
    const sources = { ift: data.ift, eft: data.eft, evalPrompts: data.evalPrompts, rankedEval: data.rankedEval };
    const worldData = new Map<string, Awaited<ReturnType<BuiltinWorld['data']>>>();
    const rowsOf = async <S extends typeof IftRow | typeof EftRow | typeof PromptRow | typeof RankedSetRow>(spec: string, field: keyof DataRefs['counts'], schema: S) => {
      if (spec.startsWith('builtin:')) {
        const world = await worldOf(spec);
        if (!worldData.has(world.name)) worldData.set(world.name, world.data(seed));
        return worldData.get(world.name)![field] as unknown[];
      }
      return readAllJsonl(spec.replace(/^file:\/\//, ''), schema);
    };
    const ift = await rowsOf(sources.ift, 'ift', IftRow);
    const eft = await rowsOf(sources.eft, 'eft', EftRow);
    const evalPrompts = sources.evalPrompts ? await rowsOf(sources.evalPrompts, 'evalPrompts', PromptRow) : undefined;
    const rankedEval = sources.rankedEval ? await rowsOf(sources.rankedEval, 'rankedEval', RankedSetRow) : undefined;
    if (ift.length === 0) throw new InvalidInputError(`${sources.ift} has no rows`);
    return {
      ift: await putJsonl(ctx.store, `${key}/ift.jsonl`, ift, IftRow),
      eft: await putJsonl(ctx.store, `${key}/eft.jsonl`, eft, EftRow),
      ...(evalPrompts ? { evalPrompts: await putJsonl(ctx.store, `${key}/eval-prompts.jsonl`, evalPrompts, PromptRow) } : {}),
      ...(rankedEval ? { rankedEval: await putJsonl(ctx.store, `${key}/ranked-eval.jsonl`, rankedEval, RankedSetRow) } : {}),
      counts: { ift: ift.length, eft: eft.length, evalPrompts: evalPrompts?.length ?? 0, rankedEval: rankedEval?.length ?? 0 },
    };
  });
}

/** M0 in the run's store: a built-in world's base model, or the user's Hugging Face directory. */
export async function prepareBase(ctx: StepContext, input: { runId: string; config: RunConfig }): Promise<{ model: ArtifactRef } & StepResult> {
  const { model, seed } = input.config;
  const key = stepKey(input.runId, 'base', { base: model.base, seed: model.base.startsWith('builtin:') ? seed : null, ...worldTag(worldVersions([model.base])) });
  return once(ctx, key, async () => {
    if (model.base.startsWith('builtin:')) {
      const world = await worldOf(model.base);
      const tm = await world.baseModel(seed, (step, total, loss) => ctx.heartbeat({ phase: 'pretraining M0', step, total, metrics: { loss } }), ctx.signal);
      try {
        if (ctx.signal?.aborted) throw new StepInterruptedError('stopped while making the base model');
        return { model: await saveModel(ctx, tm, key, { trained_by: `srlm ${model.base}` }, model.saveDtype) };
      } finally {
        tm.model.dispose();
      }
    }
    const dir = model.base.replace(/^file:\/\//, '');
    if (!existsSync(dir)) throw new InvalidInputError(`model.base: ${model.base} is not a local model directory (s3:// bases are not supported yet)`);
    loadTextModel(dir).model.dispose(); // refuses a directory that would fail later
    return { model: await putModel(ctx.store, `${key}/model`, dir) };
  });
}

// ---------------------------------------------------------------------------------------------
// Training

export interface SftStepResult {
  model: ArtifactRef;
  steps: number;
  examples: number;
  losses: { step: number; loss: number }[];
  resumedFrom: number;
}

/** SFT from a model on IFT rows (and EFT rows, as judge prompt → judgment), the paper's M0 → SFT baseline / M1. */
export async function sftStep(ctx: StepContext, input: { runId: string; config: RunConfig; name: string; base: ArtifactRef; ift: ArtifactRef; eft?: ArtifactRef }): Promise<SftStepResult & StepResult> {
  const { config } = input;
  const judgeTemplate = await templateText(config.iterations.settings.judge.template, 'judge', config);
  const key = stepKey(input.runId, `sft-${input.name}`, { base: refId(input.base), ift: refId(input.ift), eft: refId(input.eft), sft: config.sft, seed: config.seed, judgeTemplate: judgeTemplate ?? null });
  return once(ctx, key, async () =>
    withModel(ctx, input.base, async (tm) => {
      const ift = await getJsonl(ctx.store, input.ift, IftRow);
      const eft = input.eft ? await getJsonl(ctx.store, input.eft, EftRow) : [];
      const examples = [
        ...ift.map((r) => sftExample(tm, r.instruction, r.response, config.sft.maxSeqLen)),
        ...eft.map((r) => sftExample(tm, judgePrompt(r.instruction, r.response, judgeTemplate), r.judgment, config.sft.maxSeqLen)),
      ];
      const state = new TrainingStateStore(ctx.store, `${key}/state`);
      const result = await trainSft(tm.model, examples, { ...config.sft, seed: config.seed }, {
        state,
        backend: ctx.backend,
        ...(ctx.signal ? { signal: ctx.signal } : {}),
        onProgress: (p) => ctx.heartbeat({ phase: `training ${input.name} (SFT)`, step: p.step, total: p.total, stateUri: ctx.store.uriFor(`${key}/state`), metrics: { loss: p.loss, lr: p.lr, grad_norm: p.gradNorm, tokens_per_second: p.tokensPerSecond } }),
      });
      if (result.stopped) throw new StepInterruptedError(`SFT ${input.name} stopped at step ${result.step}; it resumes from its saved state`);
      return { model: await saveModel(ctx, tm, key, { trained_by: `srlm sft ${input.name}` }, config.model.saveDtype), steps: result.step, examples: examples.length, losses: result.losses, resumedFrom: result.resumedFrom };
    }),
  );
}

export interface DpoStepResult {
  model: ArtifactRef;
  pairs: number;
  steps: number;
  resumedFrom: number;
  history: DpoProgress[];
  final: DpoMetrics | null;
}

/** DPO of iteration t's model on its pairs; the model itself is the frozen reference. */
export async function dpoStep(ctx: StepContext, input: { runId: string; config: RunConfig; iteration: number; model: ArtifactRef; pairs: ArtifactRef }): Promise<DpoStepResult & StepResult> {
  const s = settingsForIteration(input.config, input.iteration).dpo;
  const key = stepKey(input.runId, `iteration-${input.iteration}/dpo`, { model: refId(input.model), pairs: refId(input.pairs), dpo: s, seed: input.config.seed });
  return once(ctx, key, async () => {
    // Test-only fault switch: refuse a learning rate above this, as if training diverged.
    const faultMaxLr = Number(process.env.SRLM_FAULT_DPO_MAX_LR ?? Infinity);
    if (s.lr > faultMaxLr) throw new TrainingFailedError(`DPO diverged: lr ${s.lr} is above SRLM_FAULT_DPO_MAX_LR=${faultMaxLr} (fault injection); retry the iteration with a lower dpo.lr`);
    return withModel(ctx, input.model, async (tm) => {
      const rows = await getJsonl(ctx.store, input.pairs, PairRow);
      if (rows.length === 0) throw new TrainingFailedError(`iteration ${input.iteration} has no preference pairs to train on (every prompt's candidates tied or failed to parse)`);
      const pairs = rows.map((r) => preferencePair(tm, r, s.maxSeqLen));
      const batchSize = Math.min(s.batchSize, pairs.length - (pairs.length % s.gradientAccumulation) || s.gradientAccumulation);
      let metrics: DpoProgress | undefined;
      const result = await trainDpo(tm.model, pairs, { ...s, batchSize, seed: input.config.seed + input.iteration }, {
        state: new TrainingStateStore(ctx.store, `${key}/state`),
        backend: ctx.backend,
        ...(ctx.signal ? { signal: ctx.signal } : {}),
        onMetrics: (m) => {
          if (!Number.isFinite(m.loss)) throw new TrainingFailedError(`DPO diverged at step ${m.step}: loss ${m.loss}; retry the iteration with a lower dpo.lr`);
          metrics = m;
        },
        // After each step's metrics: the heartbeat carries them with the step's tokens/s.
        onProgress: (p) => {
          const m = metrics!;
          ctx.heartbeat({ phase: `DPO iteration ${input.iteration}`, step: m.step, total: m.total, stateUri: ctx.store.uriFor(`${key}/state`), metrics: { loss: m.loss, 'rewards/accuracies': m['rewards/accuracies'], 'rewards/margins': m['rewards/margins'], grad_norm: m.grad_norm, learning_rate: m.learning_rate, tokens_per_second: p.tokensPerSecond } });
        },
      });
      if (result.stopped) throw new StepInterruptedError(`DPO stopped at step ${result.step}; it resumes from its saved state`);
      return { model: await saveModel(ctx, tm, key, { trained_by: `srlm dpo iteration ${input.iteration}` }, input.config.model.saveDtype), pairs: pairs.length, steps: result.step, resumedFrom: result.resumedFrom, history: result.history, final: result.final ?? null };
    });
  });
}

// ---------------------------------------------------------------------------------------------
// One iteration's data steps

export async function promptsStep(
  ctx: StepContext,
  input: { runId: string; config: RunConfig; iteration: number; model: ArtifactRef; ift: ArtifactRef; earlier: ArtifactRef[]; evalPrompts?: ArtifactRef },
): Promise<{ prompts: ArtifactRef; count: number; stats: Awaited<ReturnType<typeof generatePrompts>>['stats'] } & StepResult> {
  const s = settingsForIteration(input.config, input.iteration).prompts;
  const template = await templateText(s.template, 'selfInstruct', input.config);
  // The model being trained, or a fixed instruction-tuned model (the paper used Llama 2-Chat 70B), copied into the run once.
  if (s.generator === 'world') return worldPromptsStep(ctx, input, s.count);
  const generator = s.generator === 'self' ? input.model : await fixedModel(ctx, input.runId, s.generator, 'prompts.generator');
  const key = stepKey(input.runId, `iteration-${input.iteration}/prompts`, { model: refId(generator), ift: refId(input.ift), earlier: input.earlier.map(refId), evalPrompts: refId(input.evalPrompts), s, template: template ?? null, seed: input.config.seed });
  return once(ctx, key, async () => {
    const ift = (await getJsonl(ctx.store, input.ift, IftRow)).map((r) => r.instruction);
    const earlier = (await Promise.all(input.earlier.map((r) => getJsonl(ctx.store, r, PromptRow)))).flat().map((r) => r.instruction);
    const held = input.evalPrompts ? (await getJsonl(ctx.store, input.evalPrompts, PromptRow)).map((r) => r.instruction) : [];
    const out = await withModel(ctx, generator, (tm) =>
      generatePrompts(tm, { iftPrompts: ift, earlierGenerated: earlier, pool: [...ift, ...earlier, ...held], iteration: input.iteration, seed: input.config.seed }, { ...s, ...(template ? { template } : {}) }, (kept, total) =>
        ctx.heartbeat({ phase: `new prompts, iteration ${input.iteration}`, step: kept, total }),
      ),
    );
    if (out.prompts.length === 0) throw new TrainingFailedError(`iteration ${input.iteration}: self-instruct kept no prompts (${JSON.stringify(out.stats.rejected)})`);
    return { prompts: await putJsonl(ctx.store, `${key}/prompts.jsonl`, out.prompts, PromptRow), count: out.prompts.length, stats: out.stats };
  });
}

/**
 * `prompts.generator: world`: new instructions from the built-in world's own task sampler, none of
 * them in the IFT, earlier or held-out prompts. It stands in for the paper's fixed, strong prompt
 * generator (Llama 2-Chat 70B) where the model's own self-instruct writes too few real tasks; it
 * supplies prompts only — the candidates are still judged by the model.
 */
async function worldPromptsStep(ctx: StepContext, input: { runId: string; config: RunConfig; iteration: number; ift: ArtifactRef; earlier: ArtifactRef[]; evalPrompts?: ArtifactRef }, count: number) {
  const world = await runWorld(input.config);
  if (!world?.newPrompts) throw new InvalidInputError('prompts.generator "world" needs a built-in world with a task sampler (model.base builtin:<name>)');
  const key = stepKey(input.runId, `iteration-${input.iteration}/prompts`, { generator: 'world', world: world.name, ift: refId(input.ift), earlier: input.earlier.map(refId), evalPrompts: refId(input.evalPrompts), count, seed: input.config.seed, ...runWorldTag(input.config) });
  return once(ctx, key, async () => {
    const taken = new Set([
      ...(await getJsonl(ctx.store, input.ift, IftRow)).map((r) => r.instruction),
      ...(await Promise.all(input.earlier.map((r) => getJsonl(ctx.store, r, PromptRow)))).flat().map((r) => r.instruction),
      ...(input.evalPrompts ? (await getJsonl(ctx.store, input.evalPrompts, PromptRow)).map((r) => r.instruction) : []),
    ]);
    const instructions = world.newPrompts!(input.config.seed, input.iteration, count, taken);
    const prompts = instructions.map((instruction, i) => ({ id: `it${input.iteration}-p${String(i).padStart(5, '0')}`, instruction, source: 'generated' as const, iteration: input.iteration }));
    const stats = { requested: count, generated: count, kept: prompts.length, rounds: 1, rejected: { empty: 0, 'too short': 0, 'too long': 0, degenerate: 0, duplicate: 0, 'near duplicate': 0 } };
    return { prompts: await putJsonl(ctx.store, `${key}/prompts.jsonl`, prompts, PromptRow), count: prompts.length, stats };
  });
}

/** Candidates for one shard of the prompts (`shard` of `shards`, contiguous ranges). */
export async function candidatesStep(
  ctx: StepContext,
  input: { runId: string; config: RunConfig; iteration: number; model: ArtifactRef; prompts: ArtifactRef; shard: number; shards: number },
): Promise<{ candidates: ArtifactRef; count: number } & StepResult> {
  const s = settingsForIteration(input.config, input.iteration).candidates;
  const key = stepKey(input.runId, `iteration-${input.iteration}/candidates-${input.shard}`, { model: refId(input.model), prompts: refId(input.prompts), shard: input.shard, shards: input.shards, s: unbatched(s), seed: input.config.seed });
  return once(ctx, key, async () => {
    const all = await getJsonl(ctx.store, input.prompts, PromptRow);
    const size = Math.ceil(all.length / input.shards);
    const mine = all.slice(input.shard * size, (input.shard + 1) * size);
    const rows = await withModel(ctx, input.model, (tm) =>
      generateCandidates(tm, mine, s, input.config.seed + input.iteration, (done, total) => ctx.heartbeat({ phase: `candidates, iteration ${input.iteration}, shard ${input.shard + 1}/${input.shards}`, step: done, total })),
    );
    return { candidates: await putJsonl(ctx.store, `${key}/candidates.jsonl`, rows, CandidateRow), count: rows.length };
  });
}

export async function judgeStep(
  ctx: StepContext,
  input: { runId: string; config: RunConfig; iteration: number; model: ArtifactRef; candidates: ArtifactRef; shard: number },
): Promise<{ judgments: ArtifactRef; stats: JudgingStats } & StepResult> {
  const s = settingsForIteration(input.config, input.iteration).judge;
  const template = await templateText(s.template, 'judge', input.config);
  const key = stepKey(input.runId, `iteration-${input.iteration}/judgments-${input.shard}`, { model: refId(input.model), candidates: refId(input.candidates), s: unbatched(s), template: template ?? null, seed: input.config.seed, ...(s.by === 'oracle' ? runWorldTag(input.config) : {}) });
  return once(ctx, key, async () => {
    const candidates = await getJsonl(ctx.store, input.candidates, CandidateRow);
    const seed = input.config.seed + input.iteration;
    const out =
      s.by === 'self'
        ? await withModel(ctx, input.model, (tm) =>
            judgeCandidates(tm, candidates, { ...s, ...(template ? { template } : {}) }, seed, (done, total) => ctx.heartbeat({ phase: `self-judging, iteration ${input.iteration}, shard ${input.shard + 1}`, step: done, total })),
          )
        : await referenceJudgments(input.config, candidates, s.by, s.samples, seed);
    return { judgments: await putJsonl(ctx.store, `${key}/judgments.jsonl`, out.judgments, JudgmentRow), stats: out.stats };
  });
}

/**
 * The reference arms' judgments, in the shape of the model's: `random` draws each score uniformly
 * from 0..5 (seeded per candidate and sample), `oracle` gives the world's score every time.
 */
async function referenceJudgments(config: RunConfig, candidates: CandidateRow[], by: 'random' | 'oracle', samples: number, seed: number): Promise<{ judgments: JudgmentRow[]; stats: JudgingStats }> {
  const world = by === 'oracle' ? await runWorld(config) : null;
  if (by === 'oracle' && !world) throw new InvalidInputError('judge.by "oracle" needs a built-in world (model.base builtin:<name>)');
  const scoreOf = (c: CandidateRow, sample: number) => (world ? world.oracleScore(c.instruction, c.response, config.seed) : new Rng(deriveSeed(seed, 'random-judge', c.promptId, c.index, sample)).int(6));
  const judgments: JudgmentRow[] = [];
  for (const c of candidates) for (let k = 0; k < samples; k++) judgments.push({ promptId: c.promptId, candidate: c.index, sample: k, reply: `(${by} judge)`, score: scoreOf(c, k) });
  return { judgments, stats: { judgments: judgments.length, parsed: judgments.length, failed: 0, failureRate: 0 } };
}

/** The run's built-in world (its oracle, task sampler and reader), or null when the run has none. */
async function runWorld(config: RunConfig): Promise<BuiltinWorld | null> {
  return config.model.base.startsWith('builtin:') ? worldOf(config.model.base) : null;
}

export async function pairsStep(
  ctx: StepContext,
  input: { runId: string; config: RunConfig; iteration: number; candidates: ArtifactRef[]; judgments: ArtifactRef[] },
): Promise<{ pairs: ArtifactRef; stats: PairStats } & StepResult> {
  const s = settingsForIteration(input.config, input.iteration).pairs;
  const key = stepKey(input.runId, `iteration-${input.iteration}/pairs`, { candidates: input.candidates.map(refId), judgments: input.judgments.map(refId), s });
  return once(ctx, key, async () => {
    const candidates = (await Promise.all(input.candidates.map((r) => getJsonl(ctx.store, r, CandidateRow)))).flat();
    const judgments = (await Promise.all(input.judgments.map((r) => getJsonl(ctx.store, r, JudgmentRow)))).flat();
    const { pairs, stats } = buildPairs(candidates, judgments, s);
    return { pairs: await putJsonl(ctx.store, `${key}/pairs.jsonl`, pairs, PairRow), stats };
  });
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/** Where a model's answers to the held-out prompts are kept (`<key>/result.json` holds `{responses}`). */
export function responsesStepKey(runId: string, name: string, model: ArtifactRef, evalPrompts: ArtifactRef, maxNewTokens: number): string {
  return stepKey(runId, `eval/responses-${name}`, { model: refId(model), prompts: refId(evalPrompts), maxNewTokens });
}

/** A model's greedy responses to the held-out prompts (shared by every comparison it is in). */
export async function responsesStep(ctx: StepContext, input: { runId: string; config: RunConfig; name: string; model: ArtifactRef; evalPrompts: ArtifactRef }): Promise<{ responses: ArtifactRef } & StepResult> {
  const maxNewTokens = input.config.evaluation.maxNewTokens;
  const key = responsesStepKey(input.runId, input.name, input.model, input.evalPrompts, maxNewTokens);
  return once(ctx, key, async () => {
    const prompts = await getJsonl(ctx.store, input.evalPrompts, PromptRow);
    const texts = await withModel(ctx, input.model, (tm) => respond(tm, prompts, maxNewTokens, (done, total) => ctx.heartbeat({ phase: `${input.name} answers the evaluation prompts`, step: done, total })));
    return { responses: await putJson(ctx.store, `${key}/responses.json`, texts) };
  });
}

/** A model directory named in the config (a judge or prompt generator), stored with the run once. */
async function fixedModel(ctx: StepContext, runId: string, dir: string, field: string): Promise<ArtifactRef> {
  const local = dir.replace(/^file:\/\//, '');
  if (!existsSync(path.join(local, 'config.json'))) throw new InvalidInputError(`${field}: ${dir} is not a local model directory`);
  // Keyed by path, size and modification time of its files: a changed model is copied again.
  const files = (await fs.readdir(local)).sort();
  const stamp = await Promise.all(files.map(async (f) => {
    const st = await fs.stat(path.join(local, f));
    return [f, st.size, st.mtimeMs];
  }));
  const key = `runs/${validateRunId(runId)}/fixed-models/${hashOf({ dir: path.resolve(local), stamp })}`;
  const existing = await ctx.store.head(`${key}/model.json`);
  return existing ?? putModel(ctx.store, key, local);
}

async function openJudge(ctx: StepContext, runId: string, config: RunConfig, spec: string, self: ArtifactRef): Promise<{ judge: PointwiseJudge; dispose: () => void }> {
  if (spec === 'oracle') {
    if (!config.model.base.startsWith('builtin:')) throw new InvalidInputError('evaluation.judge "oracle" needs a built-in world (model.base builtin:<name>)');
    const world = await worldOf(config.model.base);
    return { judge: oracleJudgeFrom((instruction, response) => world.oracleScore(instruction, response, config.seed)), dispose: () => undefined };
  }
  const s = config.iterations.settings.judge;
  const template = await templateText(s.template, 'judge', config);
  const tm = loadTextModel(await fetchModel(ctx.store, spec === 'self' ? self : await fixedModel(ctx, runId, spec, 'evaluation.judge')));
  return { judge: modelJudge(tm, spec, { ...s, ...(template ? { template } : {}) }, config.seed), dispose: () => tm.model.dispose() };
}

export interface HeadToHeadStepResult {
  summary: HeadToHeadSummary & { a: string; b: string; judge: string };
  rows: ArtifactRef;
  /** With `evaluation.sampled`: the same comparison with sampled decoding. */
  sampled?: { summary: SampledHeadToHeadSummary & { a: string; b: string; judge: string }; rows: ArtifactRef };
}

/**
 * The sampled head-to-head's decoding (null when `evaluation.sampled` is off): `evaluation.samples`
 * answers per prompt at the iterations' candidate temperature, top-p and top-k, up to
 * `evaluation.maxNewTokens` tokens.
 */
export function evalSampling(config: RunConfig): EvalSampling | null {
  const e = config.evaluation;
  if (!e.sampled) return null;
  const c = config.iterations.settings.candidates;
  return { samples: e.samples, temperature: c.temperature, topP: c.topP, topK: c.topK, maxNewTokens: e.maxNewTokens };
}

/** A model's sampled answers to the held-out prompts, made once per model (shared by its comparisons). Every model draws with the same seeds. */
async function sampledResponses(ctx: StepContext, input: { runId: string; config: RunConfig; name: string; model: ArtifactRef; evalPrompts: ArtifactRef }, s: EvalSampling): Promise<string[][]> {
  const key = stepKey(input.runId, `eval/samples-${input.name}`, { model: refId(input.model), prompts: refId(input.evalPrompts), s, seed: input.config.seed });
  const r = await once(ctx, key, async () => {
    const prompts = await getJsonl(ctx.store, input.evalPrompts, PromptRow);
    const samples = await withModel(ctx, input.model, (tm) =>
      respondSampled(tm, prompts, s, deriveSeed(input.config.seed, 'eval-sampled'), (done, total) => ctx.heartbeat({ phase: `${input.name} samples answers to the evaluation prompts`, step: done, total })));
    return { samples: await putJson(ctx.store, `${key}/samples.json`, samples) };
  });
  return getJson<string[][]>(ctx.store, r.samples);
}

/** a vs b on the held-out prompts; with judge `self`, model a judges. */
export async function headToHeadStep(
  ctx: StepContext,
  input: { runId: string; config: RunConfig; a: { name: string; model: ArtifactRef; responses: ArtifactRef }; b: { name: string; model: ArtifactRef; responses: ArtifactRef }; evalPrompts: ArtifactRef; judge: string },
): Promise<HeadToHeadStepResult & StepResult> {
  const sampling = evalSampling(input.config);
  const key = stepKey(input.runId, `eval/${input.a.name}-vs-${input.b.name}-${input.judge === 'oracle' || input.judge === 'self' ? input.judge : 'model'}`, {
    a: refId(input.a.responses), b: refId(input.b.responses), judge: input.judge, self: input.judge === 'self' ? refId(input.a.model) : null, judgeSettings: input.config.iterations.settings.judge, seed: input.config.seed,
    // Only when on, so the keys of runs without it stay as they were.
    ...(sampling ? { sampled: { s: sampling, a: refId(input.a.model), b: refId(input.b.model) } } : {}),
    ...(input.judge === 'oracle' ? runWorldTag(input.config) : {}),
  });
  return once(ctx, key, async () => {
    const prompts = await getJsonl(ctx.store, input.evalPrompts, PromptRow);
    const [ra, rb] = await Promise.all([getJson<string[]>(ctx.store, input.a.responses), getJson<string[]>(ctx.store, input.b.responses)]);
    const sa = sampling ? await sampledResponses(ctx, { ...input, name: input.a.name, model: input.a.model }, sampling) : null;
    const sb = sampling ? await sampledResponses(ctx, { ...input, name: input.b.name, model: input.b.model }, sampling) : null;
    const { judge, dispose } = await openJudge(ctx, input.runId, input.config, input.judge, input.a.model);
    try {
      const result = await headToHead(prompts, { name: input.a.name, responses: ra }, { name: input.b.name, responses: rb }, judge);
      const rows = await putJsonl(ctx.store, `${key}/head-to-head.jsonl`, result.rows, HeadToHeadRow);
      if (!sa || !sb) return { summary: result.summary, rows };
      const sampled = await sampledHeadToHead(prompts, { name: input.a.name, samples: sa }, { name: input.b.name, samples: sb }, judge);
      return { summary: result.summary, rows, sampled: { summary: sampled.summary, rows: await putJsonl(ctx.store, `${key}/head-to-head-sampled.jsonl`, sampled.rows, HeadToHeadRow) } };
    } finally {
      dispose();
    }
  });
}

/** A model as a judge on the held-out ranked sets (the paper's Table 4). */
export async function judgeMetricsStep(ctx: StepContext, input: { runId: string; config: RunConfig; name: string; model: ArtifactRef; rankedEval: ArtifactRef }): Promise<{ metrics: RewardModelMetrics } & StepResult> {
  const s = input.config.iterations.settings.judge;
  const template = await templateText(s.template, 'judge', input.config);
  const key = stepKey(input.runId, `eval/judge-${input.name}`, { model: refId(input.model), ranked: refId(input.rankedEval), s: unbatched(s), template: template ?? null, seed: input.config.seed });
  return once(ctx, key, async () => {
    const sets = await getJsonl(ctx.store, input.rankedEval, RankedSetRow);
    const metrics = await withModel(ctx, input.model, (tm) => evaluateJudge(modelJudge(tm, input.name, { ...s, ...(template ? { template } : {}) }, input.config.seed), sets));
    return { metrics };
  });
}

// ---------------------------------------------------------------------------------------------
// Oracle diagnostics (built-in worlds only): read by the report, never by the loop.

export interface IterationDiagnostics {
  pairs: PairOracleCounts;
  /** The judge that scored this iteration's candidates, against the oracle on those candidates. */
  judge: OnPolicyAccuracy;
  /** Of the iteration's prompts, how many the world reads as one of its tasks (null: the world cannot say). */
  prompts: { count: number; understood: number | null };
}

/** How an iteration's self-chosen pairs and its judge look to the oracle; null without one. */
export async function iterationDiagnosticsStep(
  ctx: StepContext,
  input: { runId: string; config: RunConfig; iteration: number; candidates: ArtifactRef[]; judgments: ArtifactRef[]; pairs: ArtifactRef },
): Promise<{ diagnostics: IterationDiagnostics | null } & StepResult> {
  const key = stepKey(input.runId, `iteration-${input.iteration}/diagnostics`, { candidates: input.candidates.map(refId), judgments: input.judgments.map(refId), pairs: refId(input.pairs), base: input.config.model.base, ...runWorldTag(input.config) });
  return once(ctx, key, async () => {
    const world = await runWorld(input.config);
    if (!world) return { diagnostics: null };
    const oracle = (instruction: string, response: string) => world.oracleScore(instruction, response, input.config.seed);
    const candidates = (await Promise.all(input.candidates.map((r) => getJsonl(ctx.store, r, CandidateRow)))).flat();
    const judgments = (await Promise.all(input.judgments.map((r) => getJsonl(ctx.store, r, JudgmentRow)))).flat();
    const pairs = await getJsonl(ctx.store, input.pairs, PairRow);
    const instructions = [...new Map(candidates.map((c) => [c.promptId, c.instruction])).values()];
    const understood = world.understands ? instructions.filter((i) => world.understands!(i)).length : null;
    return { diagnostics: { pairs: pairOracleCounts(pairs, oracle), judge: onPolicyAccuracy(candidates, meanJudgeScores(judgments), oracle), prompts: { count: instructions.length, understood } } };
  });
}

export interface OracleEvaluation {
  /** Mean oracle score of the model's greedy answers to the held-out prompts. */
  oracleMean: number;
  /** The model judging its own sampled candidates for the first `evaluation.onPolicyPrompts` held-out prompts (null when 0). */
  onPolicy: OnPolicyAccuracy | null;
}

/**
 * A model measured by the oracle: its greedy answers, and its own judge on its own sampled
 * candidates (sampled and judged with the iterations' settings, as in a self-rewarding iteration).
 */
export async function oracleEvalStep(
  ctx: StepContext,
  input: { runId: string; config: RunConfig; name: string; model: ArtifactRef; responses: ArtifactRef; evalPrompts: ArtifactRef },
): Promise<{ evaluation: OracleEvaluation | null } & StepResult> {
  const settings = input.config.iterations.settings;
  const n = input.config.evaluation.onPolicyPrompts;
  const template = await templateText(settings.judge.template, 'judge', input.config);
  const key = stepKey(input.runId, `eval/oracle-${input.name}`, {
    model: refId(input.model), responses: refId(input.responses), prompts: refId(input.evalPrompts), n, candidates: unbatched(settings.candidates), judge: { ...unbatched(settings.judge), by: 'self' }, template: template ?? null, base: input.config.model.base, seed: input.config.seed, ...runWorldTag(input.config),
  });
  return once(ctx, key, async () => {
    const world = await runWorld(input.config);
    if (!world) return { evaluation: null };
    const oracle = (instruction: string, response: string) => world.oracleScore(instruction, response, input.config.seed);
    const prompts = await getJsonl(ctx.store, input.evalPrompts, PromptRow);
    const answers = await getJson<string[]>(ctx.store, input.responses);
    const oracleMean = answers.reduce((sum, a, i) => sum + oracle(prompts[i]!.instruction, a), 0) / Math.max(1, answers.length);
    if (n === 0) return { evaluation: { oracleMean, onPolicy: null } };
    const seed = deriveSeed(input.config.seed, 'on-policy', input.name);
    const onPolicy = await withModel(ctx, input.model, async (tm) => {
      const candidates = await generateCandidates(tm, prompts.slice(0, n), settings.candidates, seed, (done, total) => ctx.heartbeat({ phase: `${input.name} samples candidates for held-out prompts`, step: done, total }));
      const { judgments } = await judgeCandidates(tm, candidates, { ...settings.judge, ...(template ? { template } : {}) }, seed, (done, total) => ctx.heartbeat({ phase: `${input.name} judges its own candidates`, step: done, total }));
      return onPolicyAccuracy(candidates, meanJudgeScores(judgments), oracle);
    });
    return { evaluation: { oracleMean, onPolicy } };
  });
}

/** The run's results as JSON, Markdown and an HTML page with charts, in the store. */
export async function reportStep(ctx: StepContext, input: { runId: string; report: RunReport }): Promise<{ json: ArtifactRef; markdown: ArtifactRef; html: ArtifactRef }> {
  const base = `runs/${validateRunId(input.runId)}/report`;
  const json = await putJson(ctx.store, `${base}/report.json`, input.report);
  const markdown = await ctx.store.put(`${base}/report.md`, renderMarkdown(input.report), { contentType: 'text/markdown' });
  const html = await ctx.store.put(`${base}/report.html`, renderHtml(input.report), { contentType: 'text/html' });
  return { json, markdown, html };
}
