import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { renderText } from '../core/pipeline/report';
import { validateRunId } from '../core/store/keys';
import { createWorkers, connectWorker, runWorkers } from '../workers/create';
import { SrlmRunId, SrlmStage } from '../workflows/search-attributes';
import { ARM_JUDGE, iterationWorkflowId, type RunInput, type RunProgress, type RunResult } from '../workflows/types';
import { describeHeartbeat, pendingActivities } from './runs';
import { connectClient, defaultRunId, log, printJson, resolveRunConfig, resolveTarget, type ConfigOptions } from './common';

export interface RunOptions extends ConfigOptions {
  runId?: string;
  detach?: boolean;
  worker?: boolean;
  json?: boolean;
}

/** `srlm run`: start (or re-attach to) a run; without --detach, show progress until it ends. */
export async function runCommand(opts: RunOptions): Promise<void> {
  const { config, source } = resolveRunConfig(opts);
  const runId = validateRunId(opts.runId ?? defaultRunId(config));
  const { target, uiUrl } = await resolveTarget(config.temporal);
  const client = await connectClient(target);
  try {
    const handle = await startOrAttach(client, runId, config.temporal.taskQueues.orchestration, { runId, config, configSource: source });
    log(`run ${runId}: ${uiUrl ? `${uiUrl}/namespaces/${target.namespace}/workflows/${encodeURIComponent(runId)}` : `workflow ${runId} on ${target.address}`}`);
    if (opts.detach) {
      if (opts.json) printJson({ runId, detached: true });
      return;
    }
    const watch = watchProgress(client, handle, runId);
    let result: RunResult;
    try {
      const running = (await handle.describe()).status.name === 'RUNNING';
      if (opts.worker === false || !running) {
        result = await handle.result();
      } else {
        // The all-in-one worker: both task queues in this process, for local runs.
        const connection = await connectWorker(target);
        try {
          const workers = await createWorkers(connection, {
            target,
            queues: ['orchestration', 'model'],
            taskQueues: config.temporal.taskQueues,
          });
          result = (await runWorkers(workers, handle.result()))!;
        } finally {
          await connection.close();
        }
      }
    } finally {
      await watch.stop();
    }
    if (opts.json) printJson(result);
    else {
      log(`run ${runId} finished: ${result.completed.length} steps`);
      process.stderr.write(`\n${renderText(result.report)}\n`);
      log(`report: ${result.reportRefs.markdown.uri}`);
      if (result.reportRefs.html) log(`        ${result.reportRefs.html.uri} (charts)`);
    }
  } finally {
    await client.connection.close();
  }
}

async function startOrAttach(client: Client, runId: string, taskQueue: string, input: RunInput): Promise<WorkflowHandle> {
  // Whether a run with this ID is live already, so the message can say which of the two happened
  // (the start below attaches to it; Temporal's start does not tell the client which it did).
  const live = await client.workflow
    .getHandle(runId)
    .describe()
    .then((d) => (d.status.name === 'RUNNING' ? d : null), () => null);
  try {
    const handle = await client.workflow.start('selfRewardingRun', {
      workflowId: runId,
      taskQueue,
      args: [input],
      // A live run with this ID is attached to; a failed or terminated one may be started again
      // (its completed steps are found in the store); a completed one is reported, not redone.
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
      staticSummary: `Self-rewarding run ${runId}`,
      typedSearchAttributes: [
        { key: SrlmRunId, value: runId },
        { key: SrlmStage, value: 'starting' },
      ],
    });
    if (live && live.runId === handle.firstExecutionRunId) log(`run ${runId}: attached to the live run (started ${live.startTime.toISOString()})`);
    else log(`run ${runId}: started`);
    return handle;
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      log(`run ${runId}: already completed; showing its result (pass --run-id to start another)`);
      return client.workflow.getHandle(runId);
    }
    throw err;
  }
}

function watchProgress(client: Client, handle: WorkflowHandle, runId: string): { stop: () => Promise<void> } {
  let last = '';
  let lastAt = 0;
  let failedShown = '';
  let stopped = false;
  let inFlight: Promise<void> = Promise.resolve();
  const tick = async () => {
    try {
      const p = await handle.query<RunProgress>('progress');
      const now = await pendingActivities(handle);
      if (p.stage === 'iteration' || p.stage === 'arm') now.push(...(await pendingActivities(client.workflow.getHandle(iterationWorkflowId(runId, p.iteration, p.arm))).catch(() => [])));
      const current = now[0];
      const where = p.arm ? `${p.arm} arm (${ARM_JUDGE[p.arm]} judge), iteration ${p.iteration}/${p.iterations}` : `${p.iteration ? `iteration ${p.iteration}/${p.iterations}, ` : ''}${p.stage}`;
      const line = current ? `${where}: ${current.activity}${current.attempt > 1 ? ` (attempt ${current.attempt})` : ''}  ${describeHeartbeat(current.heartbeat)}` : where;
      const head = line.split('  ')[0];
      // A new step prints at once; progress within a step at most every 5 seconds.
      if (!stopped && line !== last && (head !== last.split('  ')[0] || Date.now() - lastAt > 5000)) {
        log(`  ${line}`);
        last = line;
        lastAt = Date.now();
      }
      if (p.failed && failedShown !== p.failed.failedAt && !stopped) {
        failedShown = p.failed.failedAt;
        log(`  ${p.failed.arm ? `${p.failed.arm} arm, ` : ''}iteration ${p.failed.iteration} FAILED in ${p.failed.step}: ${p.failed.message}`);
        log(`  the run waits; retry it with: srlm retry ${runId} --iteration ${p.failed.iteration} [--set dpo.lr=...]`);
      }
    } catch {
      /* no worker has picked the workflow up yet */
    }
  };
  const timer = setInterval(() => {
    if (!stopped) inFlight = tick();
  }, 1000);
  return {
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await inFlight; // the connection closes after this: no query may still be on it
    },
  };
}
