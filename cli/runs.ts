/**
 * `srlm status`, `srlm retry` and `srlm report`: a run as Temporal sees it — its progress query,
 * the heartbeat of the step running now, a failed iteration and the command that retries it.
 */
import { WorkflowNotFoundError, defaultPayloadConverter, type Client, type WorkflowHandle } from '@temporalio/client';
import { writeFileSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { IterationOverride } from '../core/config/schema';
import { formatPath } from '../core/config/load';
import { InvalidInputError } from '../core/errors';
import { renderHtml, renderMarkdown } from '../core/pipeline/report';
import { validateRunId } from '../core/store/keys';
import { iterationWorkflowId, type RetryRequest, type RunProgress, type RunResult } from '../workflows/types';
import { connectClient, printJson, resolveRunConfig, resolveTarget, type ConfigOptions } from './common';

async function withRun<T>(runId: string, opts: ConfigOptions, use: (client: Client, handle: WorkflowHandle) => Promise<T>): Promise<T> {
  validateRunId(runId);
  const { config } = resolveRunConfig(opts);
  const { target } = await resolveTarget(config.temporal);
  const client = await connectClient(target);
  try {
    const handle = client.workflow.getHandle(runId);
    try {
      await handle.describe();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new InvalidInputError(`no run ${runId} on ${target.address} (namespace ${target.namespace})`);
      throw err;
    }
    return await use(client, handle);
  } finally {
    await client.connection.close();
  }
}

export interface ActivityNow {
  activity: string;
  attempt: number;
  heartbeat: Record<string, unknown> | null;
}

/** The activities a workflow is waiting on, with their last heartbeat details decoded. */
export async function pendingActivities(handle: WorkflowHandle): Promise<ActivityNow[]> {
  const d = await handle.describe();
  return (d.raw.pendingActivities ?? []).map((a) => {
    const payload = a.heartbeatDetails?.payloads?.[0];
    let heartbeat: Record<string, unknown> | null = null;
    try {
      heartbeat = payload ? (defaultPayloadConverter.fromPayload(payload) as Record<string, unknown>) : null;
    } catch {
      heartbeat = null;
    }
    return { activity: a.activityType?.name ?? '?', attempt: a.attempt ?? 1, heartbeat };
  });
}

export function describeHeartbeat(h: Record<string, unknown> | null): string {
  if (!h) return '';
  const metrics = (h.metrics ?? {}) as Record<string, number>;
  const parts = [`${h.phase ?? ''} ${h.step}/${h.total}`];
  for (const k of ['loss', 'rewards/accuracies', 'rewards/margins']) if (typeof metrics[k] === 'number') parts.push(`${k} ${metrics[k].toFixed(4)}`);
  if (typeof h.etaSeconds === 'number') parts.push(`ETA ${Math.round(h.etaSeconds)} s`);
  return parts.join('  ');
}

/** `srlm status RUN_ID`: status, stage, steps, what runs now, and a failed iteration with its retry command. */
export async function statusCommand(runId: string, opts: ConfigOptions & { json?: boolean }): Promise<void> {
  await withRun(runId, opts, async (client, handle) => {
    const description = await handle.describe();
    let progress: RunProgress | undefined;
    try {
      progress = await handle.query<RunProgress>('progress');
    } catch {
      progress = undefined; // a closed run with no worker to answer, or not yet picked up
    }
    const running = description.status.name === 'RUNNING';
    let now: ActivityNow[] = [];
    if (running) {
      now = await pendingActivities(handle);
      if (progress?.stage === 'iteration' || progress?.stage === 'arm') {
        try {
          now.push(...(await pendingActivities(client.workflow.getHandle(iterationWorkflowId(runId, progress.iteration, progress.arm)))));
        } catch {
          /* the child has not started yet */
        }
      }
    }
    const attrs = description.typedSearchAttributes;
    const summary = {
      runId,
      status: description.status.name,
      startTime: description.startTime.toISOString(),
      closeTime: description.closeTime?.toISOString() ?? null,
      stage: progress?.stage ?? attrs.getAll().find((p) => p.key.name === 'SrlmStage')?.value ?? null,
      iteration: progress?.iteration ?? null,
      iterations: progress?.iterations ?? null,
      paused: progress?.paused ?? false,
      latestWinRate: progress?.latestWinRate ?? null,
      failed: progress?.failed ?? null,
      running: now,
      steps: progress?.steps ?? null,
    };
    if (opts.json) return printJson(summary);
    const out = (l: string) => process.stdout.write(`${l}\n`);
    out(`run ${runId}: ${summary.status}, stage ${summary.stage ?? 'unknown'}${summary.iteration ? `, iteration ${summary.iteration}/${summary.iterations}` : ''}${summary.paused ? ' (paused)' : ''}`);
    for (const s of summary.steps ?? []) out(`  ${s.status.padEnd(9)} ${s.step}${s.artifact ? ` → ${s.artifact.uri}` : ''}`);
    for (const a of now) out(`  now       ${a.activity}${a.attempt > 1 ? ` (attempt ${a.attempt})` : ''}  ${describeHeartbeat(a.heartbeat)}`);
    if (summary.failed) {
      out(`iteration ${summary.failed.iteration} FAILED in ${summary.failed.step}: ${summary.failed.message}`);
      out(`retry it with: srlm retry ${runId} --iteration ${summary.failed.iteration} [--set dpo.lr=2e-5 ...]`);
    }
  });
}

/** `--set section.field=value` assignments as an iteration override, validated like the config. */
export function overrideFromAssignments(assignments: string[]): RetryRequest['override'] {
  const override: Record<string, Record<string, unknown>> = {};
  for (const a of assignments) {
    const m = /^([a-zA-Z]+)\.([a-zA-Z]+)=(.*)$/.exec(a);
    if (!m) throw new InvalidInputError(`--set ${a}: expected section.field=value, e.g. --set dpo.lr=2e-5`);
    let value: unknown = m[3];
    try {
      value = JSON.parse(m[3]!);
    } catch {
      /* a plain string */
    }
    (override[m[1]!] ??= {})[m[2]!] = value;
  }
  const parsed = IterationOverride.safeParse({ iteration: 1, ...override });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.code === 'unrecognized_keys' ? formatPath([...issue.path, issue.keys[0]!]) : formatPath(issue.path);
    throw new InvalidInputError(`--set ${field}: ${issue.code === 'unrecognized_keys' ? 'unknown setting' : issue.message}`);
  }
  const { iteration: _drop, ...sections } = parsed.data;
  return sections;
}

/** `srlm retry RUN_ID [--iteration N] [--set section.field=value ...]`: retry the failed iteration, reusing its finished steps. */
export async function retryCommand(runId: string, opts: ConfigOptions & { iteration?: string; set?: string[]; json?: boolean }): Promise<void> {
  const override = overrideFromAssignments(opts.set ?? []);
  const iteration = opts.iteration === undefined ? undefined : Number(opts.iteration);
  if (iteration !== undefined && (!Number.isInteger(iteration) || iteration < 1)) throw new InvalidInputError(`--iteration ${opts.iteration}: expected a positive integer`);
  // `--set` here means iteration settings, not run-config fields: keep them away from resolveRunConfig.
  await withRun(runId, { ...opts, set: [] }, async (_client, handle) => {
    let result: { iteration: number; attempt: number };
    try {
      result = await handle.executeUpdate<{ iteration: number; attempt: number }, [RetryRequest]>('retryIteration', { args: [{ ...(iteration !== undefined ? { iteration } : {}), ...(override && Object.keys(override).length ? { override } : {}) }] });
    } catch (err) {
      const message = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
      throw new InvalidInputError(`run ${runId} refused the retry: ${message}`);
    }
    if (opts.json) printJson({ runId, ...result, override: override ?? {} });
    else process.stdout.write(`run ${runId}: iteration ${result.iteration} restarted (attempt ${result.attempt}); finished steps with unchanged inputs are reused\n`);
  });
}

/** `srlm report RUN_ID [--out DIR]`: the results of a finished run (JSON on stdout with --json). */
export async function reportCommand(runId: string, opts: ConfigOptions & { out?: string; json?: boolean }): Promise<void> {
  await withRun(runId, opts, async (_client, handle) => {
    const d = await handle.describe();
    if (d.status.name !== 'COMPLETED') throw new InvalidInputError(`run ${runId} is ${d.status.name}; the report is written when it completes (see srlm status ${runId})`);
    const result = (await handle.result()) as RunResult;
    if (opts.out) {
      mkdirSync(opts.out, { recursive: true });
      writeFileSync(path.join(opts.out, 'report.json'), `${JSON.stringify(result.report, null, 2)}\n`);
      writeFileSync(path.join(opts.out, 'report.md'), renderMarkdown(result.report));
      writeFileSync(path.join(opts.out, 'report.html'), renderHtml(result.report));
    }
    if (opts.json) printJson(result.report);
    else process.stdout.write(renderMarkdown(result.report));
  });
}
