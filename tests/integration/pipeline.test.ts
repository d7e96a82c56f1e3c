import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, Connection, defaultPayloadConverter } from '@temporalio/client';
import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { RunConfig } from '../../core/config';
import { S3Store } from '../../core/store/s3';
import { bundleWorkflows, connectWorker, createWorkers, runWorkers } from '../../workers/create';
import type { RunInput, RunResult } from '../../workflows/types';
import { waitUntil } from '../../infra/process';
import { writePipelineFixture } from '../support/pipeline-fixture';
import { startTestS3, startTestTemporal, tempDir, type TestS3, type TestTemporal } from '../support/servers';

/** `reused` of every completed pipeline step (recordRunConfig and writeReport always write, so they are left out). */
async function reusedFlags(client: Client, workflowIds: string[]): Promise<Map<string, boolean>> {
  const out = new Map<string, boolean>();
  for (const id of workflowIds) {
    const history = await client.workflow.getHandle(id).fetchHistory();
    for (const e of history.events ?? []) {
      const payload = e.activityTaskCompletedEventAttributes?.result?.payloads?.[0];
      if (!payload) continue;
      const result = defaultPayloadConverter.fromPayload(payload) as { reused?: boolean; key?: string };
      if (typeof result.reused === 'boolean') out.set(`${id}#${e.eventId}`, result.reused);
    }
  }
  return out;
}

/** Activity types scheduled in a workflow's history (and its children's, when given), in order. */
async function scheduled(client: Client, workflowIds: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const id of workflowIds) {
    const history = await client.workflow.getHandle(id).fetchHistory();
    for (const e of history.events ?? []) {
      const a = e.activityTaskScheduledEventAttributes;
      if (a) out.push(`${a.activityType?.name}@${a.taskQueue?.name}`);
    }
  }
  return out;
}

describe('the self-rewarding pipeline on a real dev server, with artifacts in a real S3 server', () => {
  let temporal: TestTemporal;
  let s3: TestS3;
  let bundle: WorkflowBundleWithSourceMap;
  let client: Client;
  let fixture: Awaited<ReturnType<typeof writePipelineFixture>>;
  const tmp = tempDir('pipeline');
  const savedEnv = { ...process.env };

  before(async () => {
    [temporal, s3, bundle, fixture] = await Promise.all([startTestTemporal(), startTestS3(), bundleWorkflows(), writePipelineFixture(path.join(tmp.dir, 'fixture'))]);
    Object.assign(process.env, { AWS_ENDPOINT_URL_S3: s3.endpoint, AWS_ACCESS_KEY_ID: s3.accessKey, AWS_SECRET_ACCESS_KEY: s3.secretKey, AWS_REGION: 'us-east-1', SRLM_MODEL_CACHE: path.join(tmp.dir, 'model-cache') });
    client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
  });
  after(async () => {
    process.env = savedEnv;
    await client?.connection.close();
    await Promise.all([temporal?.stop(), s3?.stop()]);
    tmp.remove();
  });

  async function execute(workflowId: string, input: RunInput): Promise<RunResult> {
    const target = { address: temporal.address, namespace: 'default' };
    const connection = await connectWorker(target);
    try {
      const workers = await createWorkers(connection, { target, queues: ['orchestration', 'model'], taskQueues: input.config.temporal.taskQueues, workflowBundle: bundle });
      return (await runWorkers(workers, client.workflow.execute('selfRewardingRun', { workflowId, taskQueue: input.config.temporal.taskQueues.orchestration, args: [input] })))!;
    } finally {
      await connection.close();
    }
  }

  it('runs SFT, M1 and two self-rewarding iterations to a report; a second run with the same ID reuses every step, through continue-as-new', async () => {
    const config: RunConfig = fixture.configFor(`s3://${s3.bucket}/pipe`, { model: 'model-p', orchestration: 'orch-p' });
    const result = await execute('pipe-1', { runId: 'pipe-1', config, configSource: 'test' });
    const r = result.report;
    assert.deepEqual(r.headToHead.map((h) => `${h.a} vs ${h.b}`), ['M1 vs SFT', 'M2 vs M1', 'M2 vs SFT', 'M3 vs M2', 'M3 vs SFT']);
    for (const h of r.headToHead) {
      assert.equal(h.n, 6);
      assert.equal(h.wins + h.ties + h.losses, 6);
    }
    assert.deepEqual(r.judgeMetrics.map((j) => j.model), ['SFT', 'M1', 'M2', 'M3']);
    assert.deepEqual(r.pairs.map((p) => p.iteration), [1, 2]);
    assert.ok(r.pairs.every((p) => p.count > 0));
    // Every model with its checkpoint; no oracle here (the user's own data), so no oracle figures.
    assert.deepEqual(r.models.map((m) => m.name), ['M0', 'SFT', 'M1', 'M2', 'M3']);
    assert.ok(r.models.every((m) => m.uri?.startsWith(`s3://${s3.bucket}/pipe/runs/pipe-1/`) && m.oracleMean === null));
    assert.ok(r.pairs.every((p) => p.oracleAgree === null) && r.judgeMetrics.every((j) => j.onPolicyAccuracy === null));
    assert.equal(r.control, undefined);
    assert.equal(r.dpo.length, 2);
    assert.ok(r.dpo.every((c) => c.points.length > 0 && c.points.every((p) => Number.isFinite(p.loss))));
    const store = new S3Store({ bucket: s3.bucket, prefix: 'pipe', client: s3.client() });
    const md = (await store.get(result.reportRefs.markdown)).toString();
    assert.match(md, /\| M3 \| M2 \| self \|/);
    const html = (await store.get(result.reportRefs.html)).toString();
    // Without an oracle there are no oracle scores to chart; win rates (self-judged), judge accuracy and DPO curves are.
    assert.equal((html.match(/<svg /g) ?? []).length, 4);
    assert.match(html, /Win rate of each iteration’s model against the one before \(judge: self/);

    // Model work ran on the model queue, data work on the orchestration queue.
    const acts = await scheduled(client, ['pipe-1', 'pipe-1/iteration-1', 'pipe-1/iteration-2']);
    for (const a of acts) {
      const [name, queue] = a.split('@');
      assert.equal(queue, ['recordRunConfig', 'prepareData', 'buildPairs', 'writeReport'].includes(name!) ? 'orch-p' : 'model-p', a);
    }
    assert.equal(acts.filter((a) => a.startsWith('trainDpo')).length, 2);

    // The same run again (a new workflow, as after losing the first): every step is found in the store.
    // This one continues as new after each iteration: the state it carries keeps the whole report.
    const again = await execute('pipe-1-again', { runId: 'pipe-1', config: { ...config, temporal: { ...config.temporal, continueAsNewEvery: 1 } }, configSource: 'test' });
    assert.deepEqual(again.report.headToHead, r.headToHead);
    assert.deepEqual(again.report.pairs, r.pairs);
    assert.deepEqual(again.completed, result.completed, 'the steps of the runs before continue-as-new are kept');
    const executions = async () => {
      const out: string[] = [];
      for await (const w of client.workflow.list({ query: `WorkflowId = 'pipe-1-again'` })) out.push(w.status.name);
      return out.sort().join(' ');
    };
    // Visibility lags the history a little.
    await waitUntil(async () => (await executions()) === 'COMPLETED CONTINUED_AS_NEW', { timeoutMs: 15_000, describe: () => 'two executions of pipe-1-again, one continued as new' });
    // Its iterations are children named after the run ID (the latest runs of pipe-1/iteration-N).
    const statuses = new Set((await reusedFlags(client, ['pipe-1-again', 'pipe-1/iteration-1', 'pipe-1/iteration-2'])).values());
    assert.deepEqual([...statuses], [true], 'every step of the second run was found in the store');
  });

  it('replays its histories deterministically with the current workflow code', async () => {
    for (const id of ['pipe-1', 'pipe-1/iteration-1', 'pipe-1/iteration-2']) {
      const history = await client.workflow.getHandle(id).fetchHistory();
      await Worker.runReplayHistory({ workflowBundle: bundle }, history, id);
    }
  });
});
