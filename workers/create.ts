import * as path from 'node:path';
import { DefaultLogger, NativeConnection, Runtime, Worker, bundleWorkflowCode, makeTelemetryFilterString, type LogLevel, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createPipelineActivities } from '../activities/pipeline';
import { createRunConfigActivities, type ActivityDeps } from '../activities/run-config';
import type { TemporalTarget } from './connection';

export type QueueKind = 'model' | 'orchestration';

export interface WorkerSetOptions {
  target: TemporalTarget;
  queues: QueueKind[];
  taskQueues: { model: string; orchestration: string };
  /** A prebuilt bundle (tests build one per suite); built from workflows/ when absent. */
  workflowBundle?: WorkflowBundleWithSourceMap;
  activityDeps?: ActivityDeps;
}

export const WORKFLOWS_PATH = path.join(__dirname, '..', 'workflows', 'index.js');

export function bundleWorkflows(): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietBundlerLogger });
}

const quietBundlerLogger = {
  log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined,
  warn: (m: string) => process.stderr.write(`bundler: ${m}\n`),
  error: (m: string) => process.stderr.write(`bundler: ${m}\n`),
};

let runtimeInstalled = false;

/**
 * Messages that say nothing is wrong, shown only at SRLM_LOG_LEVEL=DEBUG:
 * - a model-queue worker has no workflows, by design;
 * - a progress query answered after the asking client gave up (the worker's event loop was busy
 *   with a model step; `srlm run` and `srlm status` simply ask again).
 */
const EXPECTED = ['No workflows registered', 'Query not found when attempting to respond'];

/** Worker logs at WARN by default (SRLM_LOG_LEVEL=INFO or DEBUG for more): progress is ours to print. */
function installRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  const level = (process.env.SRLM_LOG_LEVEL ?? 'WARN').toUpperCase() as LogLevel;
  try {
    Runtime.install({
      logger: new DefaultLogger(level, (entry) => {
        if (level !== 'DEBUG' && level !== 'TRACE' && EXPECTED.some((x) => entry.message.startsWith(x))) return;
        process.stderr.write(`${entry.level} ${entry.message}${entry.meta ? ` ${JSON.stringify(entry.meta)}` : ''}\n`);
      }),
      // The SDK core's own logs come through the logger above too (by default they go straight to
      // stderr, into the middle of `srlm run`'s progress lines).
      telemetryOptions: { logging: { forward: {}, filter: makeTelemetryFilterString({ core: level, other: level }) } },
    });
  } catch {
    /* already installed by the embedding program */
  }
}

export async function connectWorker(target: TemporalTarget): Promise<NativeConnection> {
  installRuntime();
  return NativeConnection.connect({
    address: target.address,
    ...(target.tls !== undefined ? { tls: target.tls } : {}),
    ...(target.apiKey ? { apiKey: target.apiKey } : {}),
  });
}

/**
 * The workers of one process. The orchestration queue runs workflows and data/CPU activities;
 * the model queue runs model activities one at a time (one model in memory per worker).
 */
export async function createWorkers(connection: NativeConnection, options: WorkerSetOptions): Promise<Worker[]> {
  const activities = { ...createRunConfigActivities(options.activityDeps), ...createPipelineActivities(options.activityDeps) };
  const workers: Worker[] = [];
  if (options.queues.includes('orchestration')) {
    // Only the orchestration queue runs workflows; a model-only worker needs no bundle.
    const bundle = options.workflowBundle ?? (await bundleWorkflows());
    workers.push(
      await Worker.create({
        connection,
        namespace: options.target.namespace,
        taskQueue: options.taskQueues.orchestration,
        workflowBundle: bundle,
        activities,
      }),
    );
  }
  if (options.queues.includes('model')) {
    workers.push(
      await Worker.create({
        connection,
        namespace: options.target.namespace,
        taskQueue: options.taskQueues.model,
        activities,
        maxConcurrentActivityTaskExecutions: 1,
        // Heartbeats reach the server (and the Web UI, and srlm status) every few seconds, not every minute.
        defaultHeartbeatThrottleInterval: '3 seconds',
        maxHeartbeatThrottleInterval: '5 seconds',
      }),
    );
  }
  return workers;
}

/** Runs workers until `until` settles (or forever), then shuts them down cleanly. */
export async function runWorkers<T>(workers: Worker[], until?: Promise<T>): Promise<T | undefined> {
  if (until) {
    const [first, ...rest] = workers;
    if (!first) return until;
    // runUntil on one worker, plain run on the others, all shut down together.
    const others = rest.map((w) => w.run());
    try {
      return await first.runUntil(until);
    } finally {
      for (const w of rest) if (w.getState() === 'RUNNING') w.shutdown();
      await Promise.allSettled(others);
    }
  }
  await Promise.all(workers.map((w) => w.run()));
  return undefined;
}
