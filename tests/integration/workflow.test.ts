import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createRunConfigActivities } from '../../activities/run-config';
import { parseConfig, presetConfig, type RunConfig } from '../../core/config';
import type { ArtifactRef } from '../../core/store/artifact';
import { ensureTemporalCli } from '../../infra/install';
import { freePort, portOpen, stopProcess, waitUntil } from '../../infra/process';
import { startTemporalDevServer } from '../../infra/temporal-server';
import { bundleWorkflows, connectWorker, createWorkers, runWorkers } from '../../workers/create';
import { SEARCH_ATTRIBUTES } from '../../workflows/search-attributes';
import type { RunInput, RunResult } from '../../workflows/types';
import { startTestS3, startTestTemporal, tempDir, type TestS3, type TestTemporal } from '../support/servers';

const quiet = () => undefined;

describe('the run workflow on a real dev server, with artifacts in a real S3 server', () => {
  let temporal: TestTemporal;
  let s3: TestS3;
  let bundle: WorkflowBundleWithSourceMap;
  let client: Client;
  const savedEnv = { ...process.env };

  before(async () => {
    [temporal, s3, bundle] = await Promise.all([startTestTemporal(), startTestS3(), bundleWorkflows()]);
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      AWS_ACCESS_KEY_ID: s3.accessKey,
      AWS_SECRET_ACCESS_KEY: s3.secretKey,
      AWS_REGION: 'us-east-1',
    });
    client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
  });
  after(async () => {
    process.env = savedEnv;
    await client?.connection.close();
    await Promise.all([temporal?.stop(), s3?.stop()]);
  });

  const configFor = (storeUri: string, queueSuffix: string): RunConfig => {
    const c = parseConfig(presetConfig('tiny'));
    return { ...c, store: { ...c.store, uri: storeUri }, temporal: { ...c.temporal, taskQueues: { model: `model-${queueSuffix}`, orchestration: `orch-${queueSuffix}` } } };
  };

  async function execute(runId: string, config: RunConfig): Promise<RunResult> {
    const target = { address: temporal.address, namespace: 'default' };
    const connection = await connectWorker(target);
    try {
      const workers = await createWorkers(connection, { target, queues: ['orchestration', 'model'], taskQueues: config.temporal.taskQueues, workflowBundle: bundle });
      const input: RunInput = { runId, config, configSource: 'preset:tiny' };
      return (await runWorkers(
        workers,
        client.workflow.execute('selfRewardingRun', { workflowId: runId, taskQueue: config.temporal.taskQueues.orchestration, args: [input] }),
      ))!;
    } finally {
      await connection.close();
    }
  }

  it('fails fast, without retrying, on invalid input', async () => {
    const config = configFor('s3://Not_A_Bucket/x', 'b');
    await assert.rejects(execute('wf-invalid', config), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      const cause = err.cause?.cause as { type?: string; nonRetryable?: boolean; message?: string } | undefined;
      assert.equal(cause?.type, 'InvalidInputError');
      assert.match(cause?.message ?? '', /invalid S3 bucket name "Not_A_Bucket"/);
      return true;
    });
    const history = await client.workflow.getHandle('wf-invalid').fetchHistory();
    const attempts = (history.events ?? []).filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt);
    assert.deepEqual(attempts, [1], 'one attempt, no retry loop');
  });

  it('keeps runs and search attributes across a server restart on the same SQLite file', async () => {
    await temporal.restart('SIGTERM');
    const description = await client.workflow.getHandle('wf-invalid').describe();
    assert.equal(description.status.name, 'FAILED');
    const listed = await client.connection.operatorService.listSearchAttributes({ namespace: 'default' });
    for (const key of SEARCH_ATTRIBUTES) assert.ok(key.name in (listed.customAttributes ?? {}), key.name);
  });
});

describe('the dev server on an existing database', () => {
  it('registers the search attributes even when the database was created without them', async () => {
    const tmp = tempDir('temporal-existing');
    const dbFile = path.join(tmp.dir, 'old.sqlite');
    const port = await freePort();
    // A database made by a plain dev server (as an earlier version of srlm, or another tool, would).
    const bin = await ensureTemporalCli(quiet);
    const plain = spawn(bin, ['server', 'start-dev', '--headless', '--db-filename', dbFile, '--port', String(port), '--ip', '127.0.0.1', '--log-level', 'error'], { stdio: 'ignore' });
    try {
      await waitUntil(() => portOpen('127.0.0.1', port), { timeoutMs: 60_000, describe: () => 'plain dev server' });
      const conn = await Connection.connect({ address: `127.0.0.1:${port}` });
      await waitUntil(async () => {
        try {
          await conn.operatorService.listSearchAttributes({ namespace: 'default' });
          return true;
        } catch {
          return false;
        }
      }, { timeoutMs: 30_000, describe: () => 'namespace ready' });
      const before = await conn.operatorService.listSearchAttributes({ namespace: 'default' });
      assert.equal('SrlmStage' in (before.customAttributes ?? {}), false);
      await conn.close();
    } finally {
      await stopProcess(plain.pid!);
    }
    const server = await startTemporalDevServer(
      { dbFile, port, uiPort: await freePort(), headless: true, logFile: path.join(tmp.dir, 'log'), detached: false, previousPid: plain.pid! },
      quiet,
    );
    try {
      const conn = await Connection.connect({ address: server.address });
      const after = await conn.operatorService.listSearchAttributes({ namespace: 'default' });
      for (const key of SEARCH_ATTRIBUTES) assert.ok(key.name in (after.customAttributes ?? {}), key.name);
      await conn.close();
    } finally {
      await stopProcess(server.pid);
      tmp.remove();
    }
  });
});

describe('recordRunConfig (activity, no server)', () => {
  it('is idempotent: the same config is recognised and not rewritten', async () => {
    const tmp = tempDir('activity');
    try {
      const activities = createRunConfigActivities();
      const c = parseConfig(presetConfig('tiny'));
      const config = { ...c, store: { ...c.store, uri: `file://${tmp.dir}` } };
      const env = new MockActivityEnvironment();
      const first: ArtifactRef = await env.run(activities.recordRunConfig, { runId: 'r1', config, configSource: 'preset:tiny' });
      const manifest = path.join(tmp.dir, '.srlm', 'manifests', 'runs', 'r1', 'config.json.json');
      const mtime = statSync(manifest).mtimeMs;
      const second = await env.run(activities.recordRunConfig, { runId: 'r1', config, configSource: 'preset:tiny' });
      assert.deepEqual(second, first);
      assert.equal(statSync(manifest).mtimeMs, mtime, 'not rewritten');
      const changed: ArtifactRef = await env.run(activities.recordRunConfig, { runId: 'r1', config: { ...config, seed: 9 }, configSource: 'preset:tiny' });
      assert.notEqual(changed.sha256, first.sha256);
    } finally {
      tmp.remove();
    }
  });
});
