import { proxyActivities } from '@temporalio/workflow';
import type { createPipelineActivities } from '../activities/pipeline';
import type { createRunConfigActivities } from '../activities/run-config';
import { NON_RETRYABLE_ERROR_TYPES, type RunConfig, type StepRecord } from './types';

type Activities = ReturnType<typeof createPipelineActivities> & ReturnType<typeof createRunConfigActivities>;

/**
 * Activity stubs for one step, so the Web UI's summary names what the step does. Model steps get
 * long start-to-close timeouts (hours-long GPU work) and a heartbeat timeout, so a lost worker is
 * noticed and its step retried (resuming from saved state); store outages are retried with backoff.
 */
export function on(config: RunConfig, queue: 'model' | 'orchestration', summary: string) {
  return proxyActivities<Activities>({
    taskQueue: config.temporal.taskQueues[queue],
    startToCloseTimeout: queue === 'model' ? '48 hours' : '1 hour',
    ...(queue === 'model' ? { heartbeatTimeout: `${config.temporal.heartbeatTimeoutSeconds} seconds` } : {}),
    retry: { initialInterval: '1 second', maximumInterval: '30 seconds', backoffCoefficient: 2, maximumAttempts: 12, nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES },
    summary,
  });
}

/** Runs one step, recording it (running → completed / reused / failed) for the progress query. */
export async function recorded<T>(steps: StepRecord[], name: string, iteration: number | undefined, run: () => Promise<T>, artifactOf?: (r: T) => StepRecord['artifact'], arm?: StepRecord['arm']): Promise<T> {
  const record: StepRecord = { step: name, status: 'running', startedAt: new Date().toISOString(), ...(iteration !== undefined ? { iteration } : {}), ...(arm ? { arm } : {}) };
  steps.push(record);
  try {
    const result = await run();
    const reused = typeof result === 'object' && result !== null && (result as { reused?: unknown }).reused === true;
    const artifact = artifactOf?.(result);
    Object.assign(record, { status: reused ? 'reused' : 'completed', finishedAt: new Date().toISOString(), ...(artifact ? { artifact } : {}) });
    return result;
  } catch (err) {
    Object.assign(record, { status: 'failed', finishedAt: new Date().toISOString() });
    throw err;
  }
}
