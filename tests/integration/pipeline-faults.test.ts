/**
 * The failure contract (DESIGN.md), shown on the real dev server and the real S3 server: a model
 * worker SIGKILLed mid-DPO, the Temporal server killed and restarted on its SQLite file, the S3
 * server away for 30 s, an invalid dataset row, and an iteration that fails for good and is
 * retried with `srlm retry` and corrected settings.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, Connection, WorkflowFailedError, defaultPayloadConverter, type WorkflowHandle } from '@temporalio/client';
import type { Worker, WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { RunConfig } from '../../core/config';
import { S3Store } from '../../core/store/s3';
import { waitUntil } from '../../infra/process';
import { pendingActivities } from '../../cli/runs';
import { bundleWorkflows, connectWorker, createWorkers, runWorkers, type QueueKind } from '../../workers/create';
import type { RunInput, RunProgress, RunResult } from '../../workflows/types';
import { writePipelineFixture } from '../support/pipeline-fixture';
import { startTestS3, startTestTemporal, tempDir, type TestS3, type TestTemporal } from '../support/servers';

const SRLM = path.join(__dirname, '..', '..', 'cli', 'srlm.js');

interface ActivityRun {
  type: string;
  attempt: number;
  result: Record<string, unknown> | null;
}

/** Completed activities of workflows, from their histories: type, the attempt that completed, and the result. */
async function completedActivities(client: Client, workflowId: string, runId?: string): Promise<ActivityRun[]> {
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  const byScheduled = new Map<string, string>();
  const attempts = new Map<string, number>();
  const out: ActivityRun[] = [];
  for (const e of history.events ?? []) {
    if (e.activityTaskScheduledEventAttributes) byScheduled.set(String(e.eventId), e.activityTaskScheduledEventAttributes.activityType?.name ?? '?');
    if (e.activityTaskStartedEventAttributes) attempts.set(String(e.activityTaskStartedEventAttributes.scheduledEventId), e.activityTaskStartedEventAttributes.attempt ?? 1);
    const c = e.activityTaskCompletedEventAttributes;
    if (c) {
      const id = String(c.scheduledEventId);
      const payload = c.result?.payloads?.[0];
      out.push({ type: byScheduled.get(id) ?? '?', attempt: attempts.get(id) ?? 1, result: payload ? (defaultPayloadConverter.fromPayload(payload) as Record<string, unknown>) : null });
    }
  }
  return out;
}

/** A step's directory under an iteration's prefix, without its input hash: `candidates-1-3f…/x` → `candidates-1`. */
const stepOf = (key: string, prefix: string) => key.slice(prefix.length).split('/')[0]!.replace(/-[0-9a-f]{16}$/, '');

/**
 * What the store holds under `prefix` (a key prefix inside the store at s3://bucket/storePrefix):
 * the artifacts (key → sha256, from the store's manifests) and the raw S3 objects behind them, data
 * and manifests (object key → ETag and LastModified, which change when an object is written again).
 */
async function storeSnapshot(s3: TestS3, storePrefix: string, prefix: string): Promise<{ artifacts: Map<string, string>; objects: Map<string, string> }> {
  const client = s3.client();
  const store = new S3Store({ bucket: s3.bucket, prefix: storePrefix, client });
  const artifacts = new Map((await store.list(prefix)).map((a) => [a.key, a.sha256]));
  const objects = new Map<string, string>();
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `${storePrefix}/`, ContinuationToken: token }));
    for (const o of page.Contents ?? []) if (o.Key!.includes(`/${prefix}`)) objects.set(o.Key!, `${o.ETag} ${o.LastModified!.toISOString()}`);
    token = page.NextContinuationToken;
  } while (token);
  return { artifacts, objects };
}

describe('the failure contract, on a real dev server and a real S3 server', () => {
  let temporal: TestTemporal;
  let s3: TestS3;
  let bundle: WorkflowBundleWithSourceMap;
  let client: Client;
  let fixture: Awaited<ReturnType<typeof writePipelineFixture>>;
  const tmp = tempDir('faults');
  const savedEnv = { ...process.env };
  const children: ChildProcess[] = [];

  before(async () => {
    [temporal, s3, bundle, fixture] = await Promise.all([startTestTemporal(), startTestS3(), bundleWorkflows(), writePipelineFixture(path.join(tmp.dir, 'fixture'))]);
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_S3: s3.endpoint, AWS_ACCESS_KEY_ID: s3.accessKey, AWS_SECRET_ACCESS_KEY: s3.secretKey, AWS_REGION: 'us-east-1',
      SRLM_MODEL_CACHE: path.join(tmp.dir, 'model-cache'), TEMPORAL_ADDRESS: temporal.address,
    });
    client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    process.env = savedEnv;
    await client?.connection.close();
    await Promise.all([temporal?.stop(), s3?.stop()]);
    tmp.remove();
  });

  const configFor = (name: string, over: (c: RunConfig) => RunConfig = (c) => c): RunConfig => {
    const c = fixture.configFor(`s3://${s3.bucket}/${name}`, { model: `model-${name}`, orchestration: `orch-${name}` });
    return over({ ...c, temporal: { ...c.temporal, heartbeatTimeoutSeconds: 5 } });
  };

  /** In-process workers for `queues` until `until` settles. */
  async function withWorkers<T>(config: RunConfig, queues: QueueKind[], until: Promise<T>): Promise<T> {
    const target = { address: temporal.address, namespace: 'default' };
    const connection = await connectWorker(target);
    try {
      const workers: Worker[] = await createWorkers(connection, { target, queues, taskQueues: config.temporal.taskQueues, workflowBundle: bundle });
      return (await runWorkers(workers, until))!;
    } finally {
      await connection.close();
    }
  }

  /** `srlm worker --queues model` in its own process, as a user would run one on a GPU machine. */
  function modelWorkerProcess(configFile: string, env: NodeJS.ProcessEnv = {}): ChildProcess {
    const child = spawn(process.execPath, [SRLM, 'worker', '--queues', 'model', '--config', configFile], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
    child.stderr!.on('data', () => undefined);
    children.push(child);
    return child;
  }

  /** The run's result, riding out a server that is away for a while. */
  async function resultOf(handle: WorkflowHandle): Promise<RunResult> {
    for (;;) {
      const status = await handle.describe().then((d) => d.status.name, () => null);
      if (status !== null && status !== 'RUNNING') {
        try {
          return (await handle.result()) as RunResult;
        } catch (err) {
          if (err instanceof WorkflowFailedError) throw err;
        }
      }
      // A run whose iteration failed for good waits for a retry: fail the test with the reason instead.
      const failed = (await progressOf(handle))?.failed;
      if (failed) throw new Error(`iteration ${failed.iteration} failed at ${failed.step}: ${failed.message}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  async function progressOf(handle: WorkflowHandle): Promise<RunProgress | null> {
    return handle.query<RunProgress>('progress').catch(() => null);
  }

  it('survives a model worker SIGKILLed during DPO: no finished step runs again, DPO resumes from its saved step', async () => {
    const config = configFor('kill', (c) => ({ ...c, iterations: { ...c.iterations, count: 1, settings: { ...c.iterations.settings, dpo: { ...c.iterations.settings.dpo, epochs: 40 } } } }));
    const configFile = path.join(tmp.dir, 'kill.json');
    writeFileSync(configFile, JSON.stringify(config));
    const input: RunInput = { runId: 'kill', config, configSource: 'test' };
    const handle = await client.workflow.start('selfRewardingRun', { workflowId: 'kill', taskQueue: config.temporal.taskQueues.orchestration, args: [input] });
    let killedAt = 0;
    const result = await withWorkers(config, ['orchestration'], (async () => {
      const first = modelWorkerProcess(configFile);
      const child = client.workflow.getHandle('kill/iteration-1');
      await waitUntil(async () => {
        // An iteration that failed for good would wait for a retry: say why at once instead of timing out.
        const failed = (await progressOf(handle))?.failed;
        if (failed) throw new Error(`iteration ${failed.iteration} failed at ${failed.step}: ${failed.message}`);
        const dpo = (await pendingActivities(child).catch(() => [])).find((a) => a.activity === 'trainDpo');
        killedAt = Number(dpo?.heartbeat?.step ?? 0);
        return killedAt >= 6;
      }, { timeoutMs: 600_000, describe: () => 'DPO reaching step 6' });
      first.kill('SIGKILL');
      modelWorkerProcess(configFile);
      return resultOf(handle);
    })());
    assert.deepEqual(result.report.headToHead.map((h) => `${h.a} vs ${h.b}`), ['M1 vs SFT', 'M2 vs M1', 'M2 vs SFT']);
    const acts = [...(await completedActivities(client, 'kill')), ...(await completedActivities(client, 'kill/iteration-1'))];
    const retried = acts.filter((a) => a.attempt > 1).map((a) => a.type);
    assert.deepEqual(retried, ['trainDpo'], 'only the killed step ran again');
    const dpo = acts.find((a) => a.type === 'trainDpo')!;
    assert.equal(dpo.result!.reused, false);
    // State is saved every step; the kill came at or after step 6.
    assert.ok(Number(dpo.result!.resumedFrom) >= killedAt - 1 && Number(dpo.result!.resumedFrom) > 0, `resumed from ${dpo.result!.resumedFrom}, killed at ${killedAt}`);
  });

  it('rides out the Temporal server killed and restarted on its SQLite file, and the S3 server away for 30 s', async () => {
    const config = configFor('outage', (c) => ({ ...c, iterations: { ...c.iterations, count: 1 } }));
    const input: RunInput = { runId: 'outage', config, configSource: 'test' };
    const handle = await client.workflow.start('selfRewardingRun', { workflowId: 'outage', taskQueue: config.temporal.taskQueues.orchestration, args: [input] });
    const events: string[] = [];
    const result = await withWorkers(config, ['orchestration', 'model'], (async () => {
      await waitUntil(async () => (await progressOf(handle))?.stage === 'sft', { timeoutMs: 300_000, describe: () => 'the SFT stage' });
      await temporal.restart('SIGKILL');
      events.push('temporal restarted');
      await waitUntil(async () => (await progressOf(handle))?.stage === 'iteration', { timeoutMs: 600_000, describe: () => 'the iteration stage' });
      await s3.kill();
      events.push('s3 down');
      await new Promise((r) => setTimeout(r, 30_000));
      await s3.start();
      events.push('s3 up');
      return resultOf(handle);
    })());
    assert.deepEqual(events, ['temporal restarted', 's3 down', 's3 up']);
    assert.equal(result.report.headToHead.length, 3);
    assert.equal((await handle.describe()).status.name, 'COMPLETED');
  });

  it('fails fast on an invalid dataset row, naming the file, line and field, with no retry loop', async () => {
    const bad = path.join(tmp.dir, 'ift-bad.jsonl');
    writeFileSync(bad, ['{"instruction": "Reverse: a b", "response": "b a"}', '{"instruction": "Reverse: c d", "response": "d c"}', '{"instruction": "Reverse: e f", "respons": "f e"}'].join('\n'));
    const config = configFor('invalid', (c) => ({ ...c, data: { ...c.data, ift: bad } }));
    const input: RunInput = { runId: 'invalid', config, configSource: 'test' };
    const handle = await client.workflow.start('selfRewardingRun', { workflowId: 'invalid', taskQueue: config.temporal.taskQueues.orchestration, args: [input] });
    await assert.rejects(withWorkers(config, ['orchestration', 'model'], handle.result()), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      const cause = err.cause?.cause as { type?: string; message?: string } | undefined;
      assert.equal(cause?.type, 'DatasetError');
      assert.match(cause?.message ?? '', /ift-bad\.jsonl:3: (respons: unknown field|response: )/);
      return true;
    });
    const acts = await client.workflow.getHandle('invalid').fetchHistory();
    const attempts = (acts.events ?? []).filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt);
    assert.deepEqual(attempts, [1, 1], 'recordRunConfig, then prepareData once: no retry');
  });

  it('waits on an iteration that failed for good; srlm retry with a lower DPO lr completes it without recomputing its prompts, candidates or judgments', async () => {
    // The fault switch makes DPO fail for good above lr 5e-5; iteration 1 stays below it, iteration 2 does not.
    process.env.SRLM_FAULT_DPO_MAX_LR = '5e-5';
    const config = configFor('retry', (c) => ({ ...c, iterations: { ...c.iterations, count: 2, overrides: [{ iteration: 1, dpo: { lr: 4e-5 } }] } }));
    const input: RunInput = { runId: 'retry', config, configSource: 'test' };
    const handle = await client.workflow.start('selfRewardingRun', { workflowId: 'retry', taskQueue: config.temporal.taskQueues.orchestration, args: [input] });
    let status: Record<string, unknown> = {};
    // The iteration's steps in the store, when it has failed (before the retry) and when the run is done.
    const iterationPrefix = 'runs/retry/steps/iteration-2/';
    let before: Awaited<ReturnType<typeof storeSnapshot>> | undefined;
    try {
      const result = await withWorkers(config, ['orchestration', 'model'], (async () => {
        await waitUntil(async () => (await progressOf(handle))?.failed != null, { timeoutMs: 600_000, describe: () => 'iteration 2 failing' });
        const cli = (args: string[]) =>
          new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
            const child = spawn(process.execPath, [SRLM, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
            let stdout = '';
            let stderr = '';
            child.stdout.on('data', (d) => (stdout += d));
            child.stderr.on('data', (d) => (stderr += d));
            child.on('exit', (code) => resolve({ code, stdout, stderr }));
          });
        before = await storeSnapshot(s3, 'retry', iterationPrefix);
        const s = await cli(['status', 'retry', '--json']);
        assert.equal(s.code, 0, s.stderr);
        status = JSON.parse(s.stdout);
        const refused = await cli(['retry', 'retry', '--iteration', '1']);
        assert.equal(refused.code, 2);
        assert.match(refused.stderr, /iteration 2 failed, not iteration 1/);
        const badSetting = await cli(['retry', 'retry', '--set', 'dpo.lrr=1e-5']);
        assert.equal(badSetting.code, 2);
        assert.match(badSetting.stderr, /dpo\.lrr: unknown setting/);
        const retried = await cli(['retry', 'retry', '--iteration', '2', '--set', 'dpo.lr=2e-5', '--json']);
        assert.equal(retried.code, 0, retried.stderr);
        assert.deepEqual(JSON.parse(retried.stdout), { runId: 'retry', iteration: 2, attempt: 2, override: { dpo: { lr: 2e-5 } } });
        return resultOf(handle);
      })());
      assert.deepEqual(result.report.headToHead.map((h) => `${h.a} vs ${h.b}`), ['M1 vs SFT', 'M2 vs M1', 'M2 vs SFT', 'M3 vs M2', 'M3 vs SFT']);
    } finally {
      delete process.env.SRLM_FAULT_DPO_MAX_LR;
    }
    const failed = status.failed as { iteration: number; step: string; message: string; retryCommand: string };
    assert.equal(status.stage, 'iteration-failed');
    assert.equal(failed.iteration, 2);
    assert.equal(failed.step, 'trainDpo');
    assert.match(failed.message, /SRLM_FAULT_DPO_MAX_LR/);
    assert.match(failed.retryCommand, /^srlm retry retry --iteration 2/);

    // The iteration's two runs: the failed one computed everything up to DPO; the retry reused all of
    // it (every shard) and computed only DPO.
    const runs: { runId: string; start: number }[] = [];
    for await (const w of client.workflow.list({ query: `WorkflowId = "retry/iteration-2"` })) runs.push({ runId: w.runId, start: w.startTime.getTime() });
    assert.equal(runs.length, 2);
    runs.sort((a, b) => a.start - b.start);
    const [first, second] = await Promise.all(runs.map((r) => completedActivities(client, 'retry/iteration-2', r.runId)));
    const upToDpo = ['generatePrompts', 'sampleCandidates', 'judgeCandidates', 'buildPairs', 'trainDpo'];
    const flags = (acts: ActivityRun[]) => acts.filter((a) => upToDpo.includes(a.type)).map((a) => `${a.type}:${String(a.result?.reused)}`).sort();
    const upToPairs = (reused: boolean) => ['buildPairs', 'generatePrompts', 'judgeCandidates', 'judgeCandidates', 'judgeCandidates', 'sampleCandidates', 'sampleCandidates', 'sampleCandidates'].map((t) => `${t}:${reused}`);
    assert.deepEqual(first!.map((a) => a.type).filter((t) => !upToDpo.includes(t)), [], 'the failed attempt stopped at DPO');
    assert.deepEqual(flags(first!), upToPairs(false), 'the failed attempt computed the prompts, 3 candidate shards, 3 judgment shards and the pairs; its DPO never completed');
    assert.deepEqual(flags(second!), [...upToPairs(true), 'trainDpo:false'].sort(), 'the retry reused every one of them and computed DPO');

    // The store agrees: the prompts, candidates, judgments and pairs objects are the very ones the
    // failed attempt wrote (same keys, sha256s, and S3 objects not written again); DPO wrote new ones.
    const after = await storeSnapshot(s3, 'retry', iterationPrefix);
    const bySteps = (snap: Map<string, string>, keep: (step: string) => boolean) => [...snap].filter(([k]) => keep(stepOf(k.slice(k.indexOf(iterationPrefix)), iterationPrefix))).sort(([a], [b]) => (a < b ? -1 : 1));
    const reusedStep = (step: string) => step !== 'dpo';
    const steps = [...new Set([...before!.artifacts.keys()].map((k) => stepOf(k, iterationPrefix)))].sort();
    assert.deepEqual(steps, ['candidates-0', 'candidates-1', 'candidates-2', 'judgments-0', 'judgments-1', 'judgments-2', 'pairs', 'prompts']);
    assert.deepEqual(bySteps(after.artifacts, reusedStep), bySteps(before!.artifacts, reusedStep));
    assert.deepEqual(bySteps(after.objects, reusedStep), bySteps(before!.objects, reusedStep));
    assert.equal(before!.artifacts.size, 16, 'each step wrote its output and its result');
    assert.equal(before!.objects.size, 32, 'each artifact is a data object and a manifest');
    const dpo = bySteps(after.artifacts, (s) => s === 'dpo').map(([k]) => k.slice(iterationPrefix.length).replace(/^dpo-[0-9a-f]{16}\//, ''));
    assert.ok(dpo.includes('result.json') && dpo.includes('model/model.json') && dpo.includes('model/model.safetensors'), dpo.join(', '));
  });
});
