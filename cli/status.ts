import { WorkflowNotFoundError } from '@temporalio/client';
import { InvalidInputError } from '../core/errors';
import { validateRunId } from '../core/store/keys';
import type { RunProgress } from '../workflows/types';
import { connectClient, printJson, resolveRunConfig, resolveTarget, type ConfigOptions } from './common';

/** `srlm status RUN_ID`: the run's state from Temporal: status, stage, steps so far. */
export async function statusCommand(runId: string, opts: ConfigOptions & { json?: boolean }): Promise<void> {
  validateRunId(runId);
  const { config } = resolveRunConfig(opts);
  const { target } = await resolveTarget(config.temporal);
  const client = await connectClient(target);
  try {
    const handle = client.workflow.getHandle(runId);
    let description;
    try {
      description = await handle.describe();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new InvalidInputError(`no run ${runId} on ${target.address} (namespace ${target.namespace})`);
      throw err;
    }
    let progress: RunProgress | undefined;
    try {
      progress = await handle.query<RunProgress>('progress');
    } catch {
      progress = undefined; // a closed run with no worker to answer, or not yet picked up
    }
    const attrs = description.typedSearchAttributes;
    const summary = {
      runId,
      status: description.status.name,
      startTime: description.startTime.toISOString(),
      closeTime: description.closeTime?.toISOString() ?? null,
      stage: progress?.stage ?? attrs.getAll().find((p) => p.key.name === 'SrlmStage')?.value ?? null,
      iteration: progress?.iteration ?? null,
      steps: progress?.steps ?? null,
    };
    if (opts.json) printJson(summary);
    else {
      process.stdout.write(`run ${runId}: ${summary.status}, stage ${summary.stage ?? 'unknown'}\n`);
      for (const s of summary.steps ?? []) process.stdout.write(`  ${s.status.padEnd(9)} ${s.step}${s.artifact ? ` → ${s.artifact.uri}` : ''}\n`);
    }
  } finally {
    await client.connection.close();
  }
}
