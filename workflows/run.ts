import {
  ActivityFailure,
  ApplicationFailure,
  ChildWorkflowFailure,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  defineUpdate,
  executeChild,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { judgeRow, modelRow, oracleEvaluation } from './evaluate';
import { selfRewardingIteration } from './iteration';
import { on, recorded } from './proxies';
import { SrlmIteration, SrlmLatestWinRate, SrlmRunId, SrlmStage } from './search-attributes';
import { ARM_JUDGE, emptyLine, iterationWorkflowId, type Arm, type FailedIteration, type LineReport, type LineState, type RetryRequest, type RunConfig, type RunInput, type RunProgress, type RunResult, type RunState, type Stage } from './types';

export const progressQuery = defineQuery<RunProgress>('progress');
export const pauseSignal = defineSignal('pause');
export const resumeSignal = defineSignal('resume');
/** Sets the number of self-rewarding iterations (it may only grow); returns the new count. */
export const extendIterationsUpdate = defineUpdate<number, [number]>('extendIterations');
/** Retries the failed iteration, optionally with changed settings; returns the iteration retried. */
export const retryIterationUpdate = defineUpdate<{ iteration: number; attempt: number }, [RetryRequest]>('retryIteration');

const SECTIONS = ['prompts', 'candidates', 'judge', 'pairs', 'dpo'];


/** Where a child iteration's failure came from: the activity that failed for good, and why. */
function describeFailure(err: unknown): { step: string; message: string } {
  let step = 'unknown step';
  let cause: unknown = err;
  while (cause instanceof Error) {
    if (cause instanceof ActivityFailure) step = cause.activityType;
    if (cause instanceof ApplicationFailure || !(cause as { cause?: unknown }).cause) return { step, message: cause.message };
    if (cause instanceof ChildWorkflowFailure || cause instanceof ActivityFailure) cause = cause.cause;
    else cause = (cause as { cause?: unknown }).cause;
  }
  return { step, message: String(err) };
}

/**
 * One self-rewarding run (Yuan et al. 2024), as the paper's algorithm reads:
 *   seed data and M0 → SFT baseline (IFT only) and M1 (IFT + EFT) → for t = 1..T: the iteration
 *   child workflow makes M_{t+1} from M_t → the report.
 * A finished step is recognised in the store and not redone (core/pipeline/steps.ts). An iteration
 * that fails for good does not end the run: it is marked failed and the run waits for a
 * `retryIteration` update, which may change that iteration's settings.
 */
export async function selfRewardingRun(input: RunInput): Promise<RunResult> {
  const { runId } = input;
  let config = input.config;
  const state: RunState = input.resume ?? {
    models: {},
    responses: {},
    generatedPrompts: [],
    iterationsDone: 0,
    report: { runId, ...emptyLine() },
  };
  const progress: RunProgress = { runId, stage: 'starting', iteration: state.iterationsDone, iterations: config.iterations.count, arm: null, paused: false, steps: [], failed: null, latestWinRate: state.report.headToHead.findLast((h) => h.b === `M${state.iterationsDone}`)?.winRate ?? null };
  let retry: RetryRequest | null = null;

  setHandler(progressQuery, () => progress);
  setHandler(pauseSignal, () => void (progress.paused = true));
  setHandler(resumeSignal, () => void (progress.paused = false));
  setHandler(
    extendIterationsUpdate,
    (count) => {
      config = { ...config, iterations: { ...config.iterations, count } };
      progress.iterations = count;
      return count;
    },
    {
      validator: (count) => {
        if (!Number.isInteger(count) || count < config.iterations.count || count > 100) throw new Error(`iterations can only grow, to at most 100 (now ${config.iterations.count}, asked ${count})`);
      },
    },
  );
  setHandler(
    retryIterationUpdate,
    async (request) => {
      retry = request;
      const failed = progress.failed!;
      await condition(() => progress.failed === null || progress.failed.attempts > failed.attempts);
      return { iteration: failed.iteration, attempt: failed.attempts + 1 };
    },
    {
      validator: (request) => {
        const failed = progress.failed;
        if (!failed) throw new Error('no iteration has failed: there is nothing to retry');
        if (request.iteration !== undefined && request.iteration !== failed.iteration) throw new Error(`iteration ${failed.iteration} failed, not iteration ${request.iteration}`);
        for (const key of Object.keys(request.override ?? {})) if (!SECTIONS.includes(key)) throw new Error(`unknown settings section ${JSON.stringify(key)}; expected one of ${SECTIONS.join(', ')}`);
      },
    },
  );

  const setStage = (stage: Stage) => {
    progress.stage = stage;
    upsertSearchAttributes([
      { key: SrlmRunId, value: runId },
      { key: SrlmIteration, value: progress.iteration },
      { key: SrlmStage, value: stage },
    ]);
  };
  const gate = async () => {
    if (!progress.paused) return;
    const before = progress.stage;
    setStage('paused');
    await condition(() => !progress.paused);
    setStage(before);
  };
  const steps = progress.steps;

  if (!state.configRef) {
    setStage('config');
    state.configRef = await recorded(steps, 'recordRunConfig', undefined, () => on(config, 'orchestration', `record the run config of ${runId}`).recordRunConfig({ runId, config, configSource: input.configSource }), (r) => r);
  }
  if (!state.data) {
    setStage('data');
    const d = await recorded(steps, 'prepareData', undefined, () => on(config, 'orchestration', 'seed data: IFT, EFT, held-out prompts and ranked sets, validated').prepareData({ runId, config }), (r) => r.ift);
    state.data = { ift: d.ift, eft: d.eft, ...(d.evalPrompts ? { evalPrompts: d.evalPrompts } : {}), ...(d.rankedEval ? { rankedEval: d.rankedEval } : {}) };
  }
  const data = state.data;
  await gate();
  if (!state.models.M0) {
    setStage('base');
    const base = await recorded(steps, 'prepareBase', undefined, () => on(config, 'model', `the base model M0 (${config.model.base})`).prepareBase({ runId, config }), (r) => r.model);
    state.models.M0 = base.model;
  }
  for (const [name, withEft] of [['SFT', false], ['M1', true]] as const) {
    if (state.models[name]) continue;
    await gate();
    setStage('sft');
    const r = await recorded(steps, `trainSft[${name}]`, undefined, () =>
      on(config, 'model', name === 'SFT' ? 'SFT baseline: M0 fine-tuned on IFT only' : 'M1: M0 fine-tuned on IFT + EFT (the judge skill)').trainSft({ runId, config, name, base: state.models.M0!, ift: data.ift, ...(withEft ? { eft: data.eft } : {}) }),
    (x) => x.model);
    state.models[name] = r.model;
    state.report.training.push({ model: name, steps: r.steps, firstLoss: r.losses[0]?.loss ?? null, finalLoss: r.losses.at(-1)?.loss ?? null });
  }
  if (state.iterationsDone === 0 && !state.report.headToHead.some((h) => h.a === 'M1' && h.b === 'SFT')) {
    setStage('evaluate');
    const evaluations: Record<string, Awaited<ReturnType<typeof oracleEvaluation>>> = {};
    if (data.evalPrompts) {
      const evalPrompts = data.evalPrompts;
      for (const name of ['SFT', 'M1']) {
        const r = await recorded(steps, `answerEvalPrompts[${name}]`, undefined, () => on(config, 'model', `${name} answers the held-out prompts`).answerEvalPrompts({ runId, config, name, model: state.models[name]!, evalPrompts }), (x) => x.responses);
        state.responses[name] = r.responses;
      }
      const h = await recorded(steps, 'headToHead[M1 vs SFT]', undefined, () =>
        on(config, 'model', `M1 vs SFT, judge: ${config.evaluation.judge}`).headToHead({ runId, config, a: { name: 'M1', model: state.models.M1!, responses: state.responses.M1! }, b: { name: 'SFT', model: state.models.SFT!, responses: state.responses.SFT! }, evalPrompts, judge: config.evaluation.judge }),
      );
      state.report.headToHead.push(h.summary);
      if (h.sampled) (state.report.headToHeadSampled ??= []).push(h.sampled.summary);
      progress.latestWinRate = h.summary.winRate;
      upsertSearchAttributes([{ key: SrlmLatestWinRate, value: h.summary.winRate }]);
      for (const name of ['SFT', 'M1']) {
        evaluations[name] = await oracleEvaluation(steps, config, { runId, name, model: state.models[name]!, responses: state.responses[name]!, evalPrompts });
        state.report.models.push(modelRow(name, evaluations[name] ?? null));
      }
    }
    if (data.rankedEval) {
      const rankedEval = data.rankedEval;
      for (const name of ['SFT', 'M1']) {
        const r = await recorded(steps, `judgeMetrics[${name}]`, undefined, () => on(config, 'model', `${name} as a judge on held-out ranked sets`).judgeMetrics({ runId, config, name, model: state.models[name]!, rankedEval }));
        state.report.judgeMetrics.push(judgeRow(name, r.metrics, evaluations[name] ?? null));
      }
    }
  }

  /** The config an arm's iterations run with: the run's, with the arm's judge scoring the candidates. */
  const configFor = (arm: Arm | undefined): RunConfig =>
    arm ? { ...config, iterations: { ...config.iterations, settings: { ...config.iterations.settings, judge: { ...config.iterations.settings.judge, by: ARM_JUDGE[arm] } } } } : config;
  const arms = config.evaluation.arms;
  const lineOf = (arm: Arm | undefined): LineState => (arm ? ((state.arms ??= {})[arm] ??= { models: {}, responses: {}, generatedPrompts: [], iterationsDone: 0 }) : state);
  const reportOf = (arm: Arm | undefined): LineReport => (arm ? (state.report[arm] ??= { judge: ARM_JUDGE[arm], ...emptyLine() }) : state.report);
  const allDone = () => state.iterationsDone >= config.iterations.count && arms.every((a) => (state.arms?.[a]?.iterationsDone ?? 0) >= config.iterations.count);

  /**
   * The iterations of one line: the method's (M1 → M2 → ...), or an arm's from the shared M1. An
   * iteration that fails for good marks the run's progress failed and waits for `retryIteration`.
   */
  const runLine = async (arm: Arm | undefined) => {
    const line = lineOf(arm);
    const out = reportOf(arm);
    while (line.iterationsDone < config.iterations.count) {
      await gate();
      const t = line.iterationsDone + 1;
      progress.iteration = t;
      progress.arm = arm ?? null;
      setStage(arm ? 'arm' : 'iteration');
      const from = `M${t}`;
      // An arm starts from the method's M1 (everything up to M1 is shared) and goes on with its own models.
      const fromRef = t === 1 ? state.models.M1! : line.models[from]!;
      const fromResponses = t === 1 ? state.responses.M1 : line.responses[from];
      let attempt = 1;
      for (;;) {
        try {
          const result = await executeChild(selfRewardingIteration, {
            workflowId: iterationWorkflowId(runId, t, arm),
            args: [{ runId, config: configFor(arm), iteration: t, model: { name: from, ref: fromRef, ...(fromResponses ? { responses: fromResponses } : {}) }, sft: { ref: state.models.SFT!, ...(state.responses.SFT ? { responses: state.responses.SFT } : {}) }, data, earlierPrompts: line.generatedPrompts, ...(arm ? { arm } : {}) }],
            staticSummary: arm
              ? `${arm} arm, iteration ${t}: ${from} → M${t + 1} with a ${ARM_JUDGE[arm]} judge picking the pairs (a reference, not the method)${attempt > 1 ? `, attempt ${attempt}` : ''}`
              : `Iteration ${t}: ${from} → M${t + 1} (self-instruct, self-judge, DPO)${attempt > 1 ? `, attempt ${attempt}` : ''}`,
          });
          line.models[result.name] = result.model;
          if (result.responses) line.responses[result.name] = result.responses;
          line.generatedPrompts.push(result.prompts.ref);
          for (const k of ['headToHead', 'judgeMetrics', 'pairs', 'prompts', 'training', 'dpo', 'models'] as const) (out[k] as unknown[]).push(...result.report[k]);
          if (result.report.headToHeadSampled?.length) (out.headToHeadSampled ??= []).push(...result.report.headToHeadSampled);
          steps.push(...result.steps);
          const vsPrevious = result.report.headToHead.find((h) => h.b === from);
          if (vsPrevious && !arm) {
            progress.latestWinRate = vsPrevious.winRate;
            upsertSearchAttributes([{ key: SrlmLatestWinRate, value: vsPrevious.winRate }]);
          }
          break;
        } catch (err) {
          const { step, message } = describeFailure(err);
          const failed: FailedIteration = { iteration: t, ...(arm ? { arm } : {}), step, message, failedAt: new Date().toISOString(), retryCommand: `srlm retry ${runId} --iteration ${t} [--set dpo.lr=...]`, attempts: attempt };
          progress.failed = failed;
          setStage('iteration-failed');
          await condition(() => retry !== null);
          const request: RetryRequest = retry!;
          retry = null;
          if (request.override && Object.keys(request.override).length > 0) {
            config = { ...config, iterations: { ...config.iterations, overrides: [...config.iterations.overrides, { iteration: t, ...request.override }] } };
          }
          attempt++;
          progress.failed = null;
          setStage(arm ? 'arm' : 'iteration');
        }
      }
      line.iterationsDone = t;
      // A fresh workflow run (same ID) keeps the history short over many iterations: when the server
      // suggests it, or every `continueAsNewEvery` iterations. The state carries everything done so far.
      const every = config.temporal.continueAsNewEvery ?? 0;
      if ((workflowInfo().continueAsNewSuggested || (every > 0 && t % every === 0)) && !allDone()) {
        const completed = [...(state.completedBefore ?? []), ...completedSteps(steps)];
        await continueAsNew<typeof selfRewardingRun>({ ...input, config, resume: { ...state, completedBefore: completed, continuedAsNew: (state.continuedAsNew ?? 0) + 1 } });
      }
    }
  };

  // The method's iterations first (its rows are the result), then the arms; again if the count grew meanwhile.
  while (!allDone()) {
    await runLine(undefined);
    for (const arm of arms) await runLine(arm);
  }
  progress.arm = null;

  setStage('report');
  const uris = (line: LineState, report: LineReport) => {
    for (const [name, ref] of Object.entries(line.models)) {
      const row = report.models.find((m) => m.name === name);
      if (row) row.uri = ref.uri;
      else report.models.push({ name, oracleMean: null, sampledOracleMean: null, uri: ref.uri });
    }
    report.models.sort((a, b) => modelOrder(a.name) - modelOrder(b.name));
  };
  uris(state, state.report);
  for (const arm of arms) if (state.arms?.[arm] && state.report[arm]) uris(state.arms[arm]!, state.report[arm]!);
  const reportRefs = await recorded(steps, 'writeReport', undefined, () => on(config, 'orchestration', 'write the report (JSON, Markdown, HTML with charts)').writeReport({ runId, config, report: state.report }), (r) => r.json);
  setStage('done');
  return { runId: workflowInfo().workflowId, configRef: state.configRef, completed: [...(state.completedBefore ?? []), ...completedSteps(steps)], report: state.report, reportRefs };
}

/** M0, SFT, M1, M2, ...: the order models are made in. */
function modelOrder(name: string): number {
  if (name === 'M0') return -2;
  if (name === 'SFT') return -1;
  return Number(name.slice(1)) || 0;
}

function completedSteps(steps: { step: string; status: string; arm?: string }[]): string[] {
  return steps.filter((s) => s.status !== 'failed').map((s) => (s.arm ? `${s.arm}/${s.step}` : s.step));
}
