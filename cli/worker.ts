import { InvalidInputError } from '../core/errors';
import { connectWorker, createWorkers, runWorkers, type QueueKind } from '../workers/create';
import { log, resolveRunConfig, resolveTarget, type ConfigOptions } from './common';

/** `srlm worker`: serve task queues until SIGINT/SIGTERM (the SDK shuts workers down gracefully). */
export async function workerCommand(opts: ConfigOptions & { queues: string }): Promise<void> {
  const queues = opts.queues.split(',').map((q) => q.trim()).filter(Boolean);
  for (const q of queues) {
    if (q !== 'model' && q !== 'orchestration') throw new InvalidInputError(`--queues: unknown queue "${q}"; use model, orchestration or both`);
  }
  const { config } = resolveRunConfig(opts);
  const { target } = await resolveTarget(config.temporal);
  const connection = await connectWorker(target);
  try {
    const workers = await createWorkers(connection, { target, queues: queues as QueueKind[], taskQueues: config.temporal.taskQueues });
    log(`worker: serving ${queues.map((q) => `${q} (${config.temporal.taskQueues[q as QueueKind]})`).join(', ')} on ${target.address}, namespace ${target.namespace}; Ctrl-C stops`);
    await runWorkers(workers);
  } finally {
    await connection.close();
  }
}
