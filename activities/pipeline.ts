/**
 * The pipeline's activities: thin adapters from Temporal to core/pipeline/steps.ts. Each opens the
 * run's store, turns step progress into heartbeats a person can read in the Web UI
 * (`{phase, step, total, stateUri, metrics, eta}`), hands the activity's cancellation (worker
 * shutdown) to the step so training saves its state, and reports our errors as typed failures.
 */
import { mkdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Context } from '@temporalio/activity';
import { initBackend } from '../core/compute/backend';
import type { RunConfig } from '../core/config/schema';
import * as steps from '../core/pipeline/steps';
import type { StepContext, StepHeartbeat } from '../core/pipeline/steps';
import { openStore } from '../core/store/open';
import type { ArtifactStore } from '../core/store/artifact';
import { reportingFailures } from './failures';

export interface PipelineDeps {
  openStore: (settings: RunConfig['store']) => ArtifactStore;
}

const defaultDeps: PipelineDeps = { openStore: (s) => openStore(s.uri, s.s3) };

async function contextFor(deps: PipelineDeps, config: RunConfig, needsModel: boolean): Promise<StepContext> {
  const backend = needsModel ? (await initBackend(config.compute.backend === 'auto' ? undefined : config.compute.backend)).name : 'none';
  const activity = Context.current();
  const started = Date.now();
  const scratch = path.join(os.tmpdir(), 'srlm-scratch', String(process.pid));
  mkdirSync(scratch, { recursive: true });
  return {
    store: deps.openStore(config.store),
    backend,
    scratch,
    signal: activity.cancellationSignal,
    heartbeat: (d: StepHeartbeat) => {
      const elapsed = (Date.now() - started) / 1000;
      const eta = d.step > 0 && d.total > d.step ? Math.round((elapsed / d.step) * (d.total - d.step)) : undefined;
      activity.heartbeat({ ...d, ...(eta !== undefined ? { etaSeconds: eta } : {}) });
    },
  };
}

type StepFn<I extends { config: RunConfig }, O> = (ctx: StepContext, input: I) => Promise<O>;

function activity<I extends { config: RunConfig }, O>(deps: PipelineDeps, fn: StepFn<I, O>, needsModel: boolean): (input: I) => Promise<O> {
  return reportingFailures(async (input: I) => fn(await contextFor(deps, input.config, needsModel), input));
}

export function createPipelineActivities(deps: PipelineDeps = defaultDeps) {
  return {
    prepareData: activity(deps, steps.prepareData, false),
    prepareBase: activity(deps, steps.prepareBase, true),
    trainSft: activity(deps, steps.sftStep, true),
    generatePrompts: activity(deps, steps.promptsStep, true),
    sampleCandidates: activity(deps, steps.candidatesStep, true),
    judgeCandidates: activity(deps, steps.judgeStep, true),
    buildPairs: activity(deps, steps.pairsStep, false),
    trainDpo: activity(deps, steps.dpoStep, true),
    answerEvalPrompts: activity(deps, steps.responsesStep, true),
    headToHead: activity(deps, steps.headToHeadStep, true),
    judgeMetrics: activity(deps, steps.judgeMetricsStep, true),
    diagnoseIteration: activity(deps, steps.iterationDiagnosticsStep, false),
    evaluateWithOracle: activity(deps, steps.oracleEvalStep, true),
    writeReport: reportingFailures(async (input: { config: RunConfig; runId: string; report: steps.RunReport }) => steps.reportStep(await contextFor(deps, input.config, false), input)),
  };
}

/** The activities that need a model in memory: they run on the model task queue. */
export const MODEL_ACTIVITIES = ['prepareBase', 'trainSft', 'generatePrompts', 'sampleCandidates', 'judgeCandidates', 'trainDpo', 'answerEvalPrompts', 'headToHead', 'judgeMetrics', 'evaluateWithOracle'] as const;

// Type-only surface for workflows (`import type * as pipeline`).
const bound = createPipelineActivities();
export const prepareData = bound.prepareData;
export const prepareBase = bound.prepareBase;
export const trainSft = bound.trainSft;
export const generatePrompts = bound.generatePrompts;
export const sampleCandidates = bound.sampleCandidates;
export const judgeCandidates = bound.judgeCandidates;
export const buildPairs = bound.buildPairs;
export const trainDpo = bound.trainDpo;
export const answerEvalPrompts = bound.answerEvalPrompts;
export const headToHead = bound.headToHead;
export const judgeMetrics = bound.judgeMetrics;
export const diagnoseIteration = bound.diagnoseIteration;
export const evaluateWithOracle = bound.evaluateWithOracle;
export const writeReport = bound.writeReport;
