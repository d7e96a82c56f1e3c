import { defineQuery, proxyActivities, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type * as activities from '../activities/run-config';
import { SrlmIteration, SrlmRunId, SrlmStage } from './search-attributes';
import { NON_RETRYABLE_ERROR_TYPES, type RunInput, type RunProgress, type RunResult, type Stage } from './types';

export const progressQuery = defineQuery<RunProgress>('progress');

/**
 * One self-rewarding run (Yuan et al. 2024): SFT baseline and M1, then M1 → M2 → M3 by
 * self-instruct, self-judging and DPO, then the report.
 *
 * What runs today (the foundation): the config is recorded in the store on the orchestration
 * queue and read back, checksum-verified, on the model queue — the whole CLI → Temporal → worker
 * → store path, on both task queues. The method's steps come with the durable-pipeline issue and
 * are listed in the result as not yet implemented.
 */
export async function selfRewardingRun(input: RunInput): Promise<RunResult> {
  const { runId, config } = input;
  const progress: RunProgress = { runId, stage: 'starting', iteration: 0, iterations: config.iterations.count, steps: [] };
  setHandler(progressQuery, () => progress);

  const setStage = (stage: Stage) => {
    progress.stage = stage;
    upsertSearchAttributes([
      { key: SrlmRunId, value: runId },
      { key: SrlmIteration, value: progress.iteration },
      { key: SrlmStage, value: stage },
    ]);
  };

  // One proxy per step, so the Web UI shows a summary that names the step.
  const on = (queue: 'orchestration' | 'model', summary: string) =>
    proxyActivities<typeof activities>({
      taskQueue: config.temporal.taskQueues[queue],
      startToCloseTimeout: '10 minutes',
      retry: { initialInterval: '1 second', maximumInterval: '1 minute', backoffCoefficient: 2, nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES },
      summary,
    });

  const step = async <T extends { uri: string; sha256: string; bytes: number }>(name: string, run: () => Promise<T>): Promise<T> => {
    const record: RunProgress['steps'][number] = { step: name, status: 'running', startedAt: new Date().toISOString() };
    progress.steps.push(record);
    try {
      const artifact = await run();
      Object.assign(record, { status: 'completed', finishedAt: new Date().toISOString(), artifact: { uri: artifact.uri, sha256: artifact.sha256, bytes: artifact.bytes } });
      return artifact;
    } catch (err) {
      Object.assign(record, { status: 'failed', finishedAt: new Date().toISOString() });
      throw err;
    }
  };

  setStage('config');
  const configRef = await step('recordRunConfig', () =>
    on('orchestration', `record the run config of ${runId}`).recordRunConfig({ runId, config, configSource: input.configSource }),
  );

  setStage('verify');
  await step('verifyArtifact', () => on('model', 'read the config back on the model queue, sha256-verified').verifyArtifact({ store: config.store, ref: configRef }));

  setStage('done');
  return {
    runId: workflowInfo().workflowId,
    configRef,
    completed: progress.steps.map((s) => s.step),
    notYetImplemented: ['sft', 'generatePrompts', 'sampleCandidates', 'judgeCandidates', 'buildPreferencePairs', 'trainDpo', 'evaluate', 'report'],
  };
}
