/**
 * Orchestration overhead, printed (never asserted): a whole run of the small reversal-task fixture
 * (M0, SFT, M1, two iterations, evaluation, report) on a fresh local Temporal dev server with a
 * local artifact store and the all-in-one worker; its wall time against the sum of its
 * activities' execution times, read from the workflow histories (scheduled → started is queueing,
 * started → completed is work).
 *
 *   npm run build && node dist/bench/pipeline.js [--save-histories DIR]
 *
 * --save-histories writes the run's histories as JSON (tests/fixtures/histories/ holds the
 * committed ones that CI replays against the current workflow code).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { execFileSync } from 'node:child_process';
import { ensureTemporalCli } from '../infra/install';
import type { temporal } from '@temporalio/proto';
import { freePort } from '../infra/process';
import { stopProcess } from '../infra/process';
import { startTemporalDevServer } from '../infra/temporal-server';
import { connectWorker, createWorkers, runWorkers } from '../workers/create';
import type { RunInput, RunResult } from '../workflows/types';
import { writePipelineFixture } from '../tests/support/pipeline-fixture';

const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) => (t ? Number(t.seconds ?? 0) * 1000 + (t.nanos ?? 0) / 1e6 : 0);

function activityTimes(history: temporal.api.history.v1.IHistory): { work: number; queued: number; count: number; byType: Map<string, number> } {
  const scheduled = new Map<string, { at: number; type: string }>();
  const started = new Map<string, number>();
  let work = 0;
  let queued = 0;
  let count = 0;
  const byType = new Map<string, number>();
  for (const e of history.events ?? []) {
    const at = ms(e.eventTime as never);
    if (e.activityTaskScheduledEventAttributes) scheduled.set(String(e.eventId), { at, type: e.activityTaskScheduledEventAttributes.activityType?.name ?? '?' });
    if (e.activityTaskStartedEventAttributes) started.set(String(e.activityTaskStartedEventAttributes.scheduledEventId), at);
    const done = e.activityTaskCompletedEventAttributes;
    if (done) {
      const id = String(done.scheduledEventId);
      const s = scheduled.get(id)!;
      const st = started.get(id)!;
      work += at - st;
      queued += st - s.at;
      count++;
      byType.set(s.type, (byType.get(s.type) ?? 0) + (at - st));
    }
  }
  return { work, queued, count, byType };
}

async function main(): Promise<void> {
  const saveAt = process.argv.indexOf('--save-histories');
  const saveDir = saveAt > 0 ? process.argv[saveAt + 1] : undefined;
  const tmp = path.join(os.tmpdir(), `srlm-bench-pipeline-${process.pid}`);
  mkdirSync(tmp, { recursive: true });
  process.env.SRLM_MODEL_CACHE = path.join(tmp, 'model-cache');
  const server = await startTemporalDevServer({ dbFile: path.join(tmp, 'temporal.sqlite'), port: await freePort(), uiPort: await freePort(), headless: true, logFile: path.join(tmp, 'temporal.log'), detached: false }, () => undefined);
  try {
    const fixture = await writePipelineFixture(path.join(tmp, 'fixture'));
    const config = fixture.configFor(`file://${path.join(tmp, 'store')}`, { model: 'bench-model', orchestration: 'bench-orch' });
    const target = { address: server.address, namespace: 'default' };
    const client = new Client({ connection: await Connection.connect({ address: server.address }) });
    const connection = await connectWorker(target);
    const runId = 'bench-pipeline';
    const t0 = performance.now();
    const workers = await createWorkers(connection, { target, queues: ['orchestration', 'model'], taskQueues: config.temporal.taskQueues });
    const input: RunInput = { runId, config, configSource: 'bench' };
    const tStart = performance.now();
    (await runWorkers(workers, client.workflow.execute('selfRewardingRun', { workflowId: runId, taskQueue: config.temporal.taskQueues.orchestration, args: [input] }))) as RunResult;
    const wall = performance.now() - tStart;
    await connection.close();

    const ids = [runId, `${runId}/iteration-1`, `${runId}/iteration-2`];
    let work = 0;
    let queued = 0;
    let count = 0;
    const byType = new Map<string, number>();
    for (const id of ids) {
      const history = await client.workflow.getHandle(id).fetchHistory();
      const t = activityTimes(history);
      work += t.work;
      queued += t.queued;
      count += t.count;
      for (const [k, v] of t.byType) byType.set(k, (byType.get(k) ?? 0) + v);
      if (saveDir) {
        mkdirSync(saveDir, { recursive: true });
        // The CLI writes the JSON history format that Worker.runReplayHistory reads back.
        const json = execFileSync(await ensureTemporalCli(() => undefined), ['workflow', 'show', '--workflow-id', id, '--address', server.address, '--output', 'json'], { maxBuffer: 64 << 20 });
        writeFileSync(path.join(saveDir, `${id.replace(/\//g, '__')}.json`), json);
      }
    }
    await client.connection.close();
    const fmt = (x: number) => `${(x / 1000).toFixed(1)} s`;
    process.stdout.write(`pipeline overhead (fixture run: M0, SFT, M1, 2 iterations, evaluation, report; ${count} activities; ${os.cpus().length} cores)\n`);
    process.stdout.write(`  worker start (bundle)       ${fmt(tStart - t0)}\n`);
    process.stdout.write(`  run wall time               ${fmt(wall)}\n`);
    process.stdout.write(`  sum of activity work        ${fmt(work)}\n`);
    process.stdout.write(`  sum of activity queueing    ${fmt(queued)}\n`);
    process.stdout.write(`  orchestration overhead      ${fmt(wall - work)} (${((100 * (wall - work)) / wall).toFixed(1)}% of wall time; ${((wall - work) / count).toFixed(0)} ms per activity)\n`);
    for (const [k, v] of [...byType].sort((a, b) => b[1] - a[1])) process.stdout.write(`    ${k.padEnd(20)} ${fmt(v)}\n`);
    if (saveDir) process.stdout.write(`histories written to ${saveDir}\n`);
  } finally {
    await stopProcess(server.pid);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
