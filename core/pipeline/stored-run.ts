/**
 * A finished run read back from the artifact store alone, with no Temporal server: the config the
 * run recorded (`runs/<id>/config.json`), its report (`runs/<id>/report/report.json`), the
 * checkpoints the report names, and each model's answers to the held-out prompts (found under the
 * same step keys the pipeline wrote them to). `srlm export` works this way, so a run's models can be
 * taken out after the Temporal server that ran it is gone.
 */
import type { RunConfig } from '../config/schema';
import { PromptRow } from '../data/rows';
import { InvalidInputError } from '../errors';
import type { ArtifactRef, ArtifactStore } from '../store/artifact';
import { validateRunId } from '../store/keys';
import { getJson, getJsonl } from './artifacts';
import { ARMS, type RunReport } from './report';
import { dataStepKey, responsesStepKey, type DataRefs } from './steps';

/** A checkpoint a run made: `M2` for the method's models, `control/M2` for a reference arm's. */
export interface StoredModel {
  name: string;
  /** The name within its line (what the pipeline's steps call it), e.g. `M2`. */
  lineName: string;
  /** The URI of the model's index (`model.json`). */
  uri: string;
}

export interface StoredRun {
  runId: string;
  /** The config the run was started with, as it recorded it. */
  config: RunConfig;
  report: RunReport;
  models: StoredModel[];
}

/** The run `runId` as the store holds it; an InvalidInputError when the store has no such run, or no report for it yet. */
export async function readStoredRun(store: ArtifactStore, runId: string): Promise<StoredRun> {
  validateRunId(runId);
  const base = `runs/${runId}`;
  const [configRef, reportRef] = await Promise.all([store.head(`${base}/config.json`), store.head(`${base}/report/report.json`)]);
  if (!configRef && !reportRef) throw new InvalidInputError(`no run ${runId} in the store ${store.rootUri} (no ${base}/config.json there); check the run ID and --store / --config`);
  if (!reportRef) throw new InvalidInputError(`run ${runId} has no report in ${store.rootUri} yet: a run is exported once it has finished (see srlm status ${runId})`);
  if (!configRef) throw new InvalidInputError(`run ${runId} in ${store.rootUri} has a report but no recorded config (${base}/config.json)`);
  const [recorded, report] = await Promise.all([getJson<{ config?: RunConfig }>(store, configRef), getJson<RunReport>(store, reportRef)]);
  if (!recorded.config || typeof recorded.config !== 'object') throw new InvalidInputError(`${configRef.uri} holds no config`);
  if (!Array.isArray(report.models)) throw new InvalidInputError(`${reportRef.uri} lists no models`);
  const models: StoredModel[] = [];
  for (const m of report.models) if (m.uri) models.push({ name: m.name, lineName: m.name, uri: m.uri });
  for (const arm of ARMS) for (const m of report[arm]?.models ?? []) if (m.uri) models.push({ name: `${arm}/${m.name}`, lineName: m.name, uri: m.uri });
  return { runId, config: recorded.config, report, models };
}

/** The model called `name` (as the report names it); an InvalidInputError listing the run's models otherwise. */
export function findStoredModel(run: StoredRun, name: string): StoredModel {
  const found = run.models.find((m) => m.name === name);
  if (!found) throw new InvalidInputError(`run ${run.runId} has no model ${JSON.stringify(name)}; its models are ${run.models.map((m) => m.name).join(', ') || 'none'}`);
  return found;
}

/** The current reference of a model's index, from the store's manifest. */
export async function storedModelRef(store: ArtifactStore, model: StoredModel): Promise<ArtifactRef> {
  const ref = await store.head(store.keyFor(model.uri));
  if (!ref) throw new InvalidInputError(`the checkpoint of ${model.name} (${model.uri}) is no longer in the store`);
  return ref;
}

/**
 * The model's greedy answers to the run's held-out evaluation prompts, one per prompt in the
 * prompts' order, as the pipeline stored them (`answerEvalPrompts`); both artifacts are verified
 * against their sha256 as they are read.
 */
export async function storedAnswers(store: ArtifactStore, run: StoredRun, model: StoredModel): Promise<{ id: string; instruction: string; output: string }[]> {
  const dataResult = await store.head(`${dataStepKey(run.runId, run.config)}/result.json`);
  if (!dataResult) throw new InvalidInputError(`run ${run.runId}: the seed data step's result is not in ${store.rootUri}`);
  const data = await getJson<DataRefs>(store, dataResult);
  if (!data.evalPrompts) throw new InvalidInputError(`run ${run.runId} has no evaluation prompts (data.evalPrompts was not set), so no model answered any`);
  const index = await storedModelRef(store, model);
  const key = responsesStepKey(run.runId, model.lineName, index, data.evalPrompts, run.config.evaluation.maxNewTokens);
  const result = await store.head(`${key}/result.json`);
  if (!result) throw new InvalidInputError(`run ${run.runId} has no stored answers of ${model.name} to the evaluation prompts${model.lineName === 'M0' ? ' (the base model M0 is not evaluated)' : ''}`);
  const { responses } = await getJson<{ responses: ArtifactRef }>(store, result);
  const [answers, prompts] = await Promise.all([getJson<unknown>(store, responses), getJsonl(store, data.evalPrompts, PromptRow)]);
  if (!Array.isArray(answers) || answers.some((a) => typeof a !== 'string')) throw new InvalidInputError(`${responses.uri} is not a list of answers`);
  if (answers.length !== prompts.length) throw new InvalidInputError(`${responses.uri} holds ${answers.length} answers for ${prompts.length} evaluation prompts`);
  return prompts.map((p, i) => ({ id: p.id, instruction: p.instruction, output: answers[i] as string }));
}
