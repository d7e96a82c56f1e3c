import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { HeadToHeadRow } from '../../core/data/rows';
import type { RunReport } from '../../core/pipeline/report';
import { isAlive, freePort, portOpen, waitUntil } from '../../infra/process';
import type { RunProgress } from '../../workflows/types';
import { writePipelineFixture } from '../support/pipeline-fixture';
import { tempDir } from '../support/servers';

const SRLM = path.join(__dirname, '..', '..', 'cli', 'srlm.js');
const fixture = (name: string) => path.join(__dirname, '..', '..', '..', 'tests', 'fixtures', 'config', name);

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function srlm(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 180_000): Promise<Result> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SRLM, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

describe('srlm command line', () => {
  it('has --help for every command', async () => {
    const commands = [[], ['run'], ['worker'], ['status'], ['export'], ['config'], ['config', 'show'], ['config', 'check'], ['infra'], ['infra', 'up'], ['infra', 'status'], ['infra', 'down']];
    for (const cmd of commands) {
      const r = await srlm([...cmd, '--help']);
      assert.equal(r.code, 0, `srlm ${cmd.join(' ')} --help: ${r.stderr}`);
      assert.match(r.stdout, /^Usage: srlm/m, cmd.join(' '));
    }
  });

  it('rejects a bad config file with exit code 2, naming the file, line and field, before touching Temporal', async () => {
    const file = fixture('bad-beta.yaml');
    for (const args of [['config', 'check', file], ['run', '--config', file]]) {
      const r = await srlm(args, { TEMPORAL_ADDRESS: '127.0.0.1:1' });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /bad-beta\.yaml:12:\d+: iterations\.settings\.dpo\.beta: /);
      assert.match(r.stderr, /bad-beta\.yaml:15:\d+: iterations\.settings\.candidates\.temprature: unknown field/);
      assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace for a user error');
    }
    const good = await srlm(['config', 'check', fixture('good.yaml')]);
    assert.equal(good.code, 0);
  });

  it('rejects bad flags with a usage message', async () => {
    const r = await srlm(['run', '--seed', 'abc'], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--seed abc: expected a non-negative integer/);
    const unknown = await srlm(['run', '--sed', '1']);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /unknown option '--sed'/);
  });

  it('prints the resolved config with the paper defaults', async () => {
    const r = await srlm(['config', 'show', '--preset', 'tiny', '--set', 'iterations.settings.dpo.beta=0.2']);
    assert.equal(r.code, 0, r.stderr);
    const config = JSON.parse(r.stdout);
    assert.equal(config.iterations.settings.dpo.beta, 0.2);
    assert.equal(config.iterations.settings.candidates.n, 8);
    assert.equal(config.iterations.settings.judge.by, 'self', 'a default the preset does not set is filled in');
    assert.match(config.store.uri, /^file:\/\//);
  });
});

describe('srlm infra up / run / status / down (the local stack, as a user runs it)', () => {
  let home: ReturnType<typeof tempDir>;
  let env: NodeJS.ProcessEnv;
  let ports: { temporal: number; ui: number; s3: number };

  before(async () => {
    home = tempDir('home');
    ports = { temporal: await freePort(), ui: await freePort(), s3: await freePort() };
    env = {
      SRLM_HOME: home.dir,
      SRLM_TEMPORAL_PORT: String(ports.temporal),
      SRLM_TEMPORAL_UI_PORT: String(ports.ui),
      SRLM_S3_PORT: String(ports.s3),
      TEMPORAL_ADDRESS: '',
    };
  });
  after(async () => {
    await srlm(['infra', 'down'], env); // in case a test failed half way
    home.remove();
  });

  it('brings both servers up, with the Web UI answering', async () => {
    const up = await srlm(['infra', 'up'], env);
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stdout, new RegExp(`Temporal\\s+127\\.0\\.0\\.1:${ports.temporal}\\s+Web UI http://127\\.0\\.0\\.1:${ports.ui}`));
    assert.match(up.stdout, new RegExp(`S3\\s+http://127\\.0\\.0\\.1:${ports.s3}`));
    const status = await srlm(['infra', 'status', '--json'], env);
    const services = JSON.parse(status.stdout) as { name: string; running: boolean; detail: string }[];
    assert.deepEqual(services.map((s) => [s.name, s.running]), [['temporal', true], ['s3', true]]);
    assert.match(services[0]!.detail, /Web UI answering/);
    const page = await fetch(`http://127.0.0.1:${ports.ui}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<html/i);
  });

  it('runs a workflow end to end from the CLI (CLI → Temporal → worker → store) and reports its status', async () => {
    // A user's own data and base model (a small reversal task), one self-rewarding iteration.
    const fixture = await writePipelineFixture(path.join(home.dir, 'fixture'));
    const configFile = path.join(home.dir, 'run.json');
    writeFileSync(configFile, JSON.stringify(fixture.configFor(`file://${home.dir}/artifacts`, { model: 'srlm-model', orchestration: 'srlm-orchestration' })));
    const run = await srlm(['run', '--config', configFile, '--iterations', '1', '--run-id', 'cli-e2e', '--json'], env);
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout);
    assert.deepEqual(result.report.headToHead.map((h: { a: string; b: string }) => `${h.a} vs ${h.b}`), ['M1 vs SFT', 'M2 vs M1', 'M2 vs SFT']);
    assert.ok(existsSync(path.join(home.dir, 'artifacts', 'runs', 'cli-e2e', 'report', 'report.md')));
    assert.equal(result.configRef.uri, `file://${home.dir}/artifacts/runs/cli-e2e/config.json`);
    assert.match(run.stderr, new RegExp(`http://127\\.0\\.0\\.1:${ports.ui}/namespaces/default/workflows/cli-e2e`));

    const status = await srlm(['status', 'cli-e2e', '--json'], env);
    assert.equal(status.code, 0, status.stderr);
    const s = JSON.parse(status.stdout);
    assert.equal(s.status, 'COMPLETED');
    assert.equal(s.stage, 'done');

    // Running the same ID again attaches to the finished run instead of redoing it.
    const again = await srlm(['run', '--config', configFile, '--iterations', '1', '--run-id', 'cli-e2e', '--json'], env);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /already completed/);
    assert.deepEqual(JSON.parse(again.stdout).configRef, result.configRef);

    const missing = await srlm(['status', 'no-such-run'], env);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no run no-such-run/);
  });

  it('attaches to a live run instead of starting a second; the run holds while paused, resumes, grows by an iteration, and srlm report prints and writes its results', async () => {
    // One run for three things: attaching to a live run, pause / resume / extend, and the report.
    const fixture = await writePipelineFixture(path.join(home.dir, 'fixture-live'));
    const configFile = path.join(home.dir, 'live.json');
    writeFileSync(configFile, JSON.stringify(fixture.configFor(`file://${home.dir}/artifacts`, { model: 'srlm-model', orchestration: 'srlm-orchestration' })));
    const runArgs = ['run', '--config', configFile, '--iterations', '1', '--run-id', 'live'];
    const detached = await srlm([...runArgs, '--detach', '--json'], env);
    assert.equal(detached.code, 0, detached.stderr);
    assert.deepEqual(JSON.parse(detached.stdout), { runId: 'live', detached: true });
    assert.match(detached.stderr, /^run live: started$/m);

    const client = new Client({ connection: await Connection.connect({ address: `127.0.0.1:${ports.temporal}` }) });
    try {
      const handle = client.workflow.getHandle('live');
      const progress = () => handle.query<RunProgress>('progress');
      const scheduled = async () => ((await handle.fetchHistory()).events ?? []).flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []);
      // Paused before any worker has seen it: the run does its config and data steps, then holds at its first gate.
      await handle.signal('pause');

      // `srlm run` with the same ID, no --detach: attaches and serves both queues in its own process.
      let attachExited = false;
      const attach = srlm(runArgs, env, 600_000).finally(() => (attachExited = true));
      await waitUntil(async () => {
        if (attachExited) throw new Error(`srlm run exited early: ${(await attach).stderr}`);
        return (await progress().catch(() => null))?.stage === 'paused';
      }, { timeoutMs: 120_000, describe: () => 'the run holding, paused' });
      const held = await scheduled();
      assert.deepEqual(held, ['recordRunConfig', 'prepareData']);
      const status = await srlm(['status', 'live', '--json'], env);
      assert.equal(status.code, 0, status.stderr);
      assert.deepEqual((({ status: st, stage, paused, running }) => ({ st, stage, paused, running }))(JSON.parse(status.stdout)), { st: 'RUNNING', stage: 'paused', paused: true, running: [] });
      const early = await srlm(['report', 'live', '--json'], env);
      assert.equal(early.code, 2);
      assert.match(early.stderr, /run live is RUNNING; the report is written when it completes/);
      // It holds: over 3 s no activity is scheduled, none is pending, and no iteration starts.
      for (const until = Date.now() + 3000; Date.now() < until; await new Promise((r) => setTimeout(r, 500))) {
        assert.deepEqual(await scheduled(), held);
        assert.deepEqual((await handle.describe()).raw.pendingActivities ?? [], []);
        assert.equal((await progress()).stage, 'paused');
      }
      await assert.rejects(client.workflow.getHandle('live/iteration-1').describe(), WorkflowNotFoundError);

      // One more iteration (1 → 2); the count cannot shrink.
      await assert.rejects(handle.executeUpdate<number, [number]>('extendIterations', { args: [0] }), (err: Error & { cause?: Error }) => /iterations can only grow/.test(err.cause?.message ?? ''));
      assert.equal(await handle.executeUpdate<number, [number]>('extendIterations', { args: [2] }), 2);
      assert.deepEqual((({ iterations, paused }) => ({ iterations, paused }))(await progress()), { iterations: 2, paused: true });
      await handle.signal('resume');

      const attached = await attach;
      assert.equal(attached.code, 0, attached.stderr);
      assert.match(attached.stderr, /^run live: attached to the live run \(started \d{4}-/m);
      assert.match(attached.stderr, /^ {2}paused$/m, 'the attached progress shows the hold');
      assert.match(attached.stderr, /^run live finished: \d+ steps$/m);
      assert.match(attached.stderr, /^ {2}M3 +M2 +self /m, 'the summary has the extra iteration');
      // One execution with this ID (not a second run); the config and data steps ran once; iteration 2 ran as its child.
      const executions = async () => {
        const out: string[] = [];
        for await (const w of client.workflow.list({ query: `WorkflowId = 'live'` })) out.push(w.status.name);
        return out.join(' ');
      };
      await waitUntil(async () => (await executions()) === 'COMPLETED', { timeoutMs: 15_000, describe: () => 'one completed execution of live' });
      const all = await scheduled();
      assert.deepEqual(all.slice(0, 2), held);
      assert.equal(all.filter((a) => a === 'recordRunConfig' || a === 'prepareData').length, 2);
      assert.equal((await client.workflow.getHandle('live/iteration-2').describe()).status.name, 'COMPLETED');
    } finally {
      await client.connection.close();
    }

    // srlm report --json: one JSON document; --out: the same report as JSON, Markdown and HTML files.
    const outDir = path.join(home.dir, 'report-live');
    const report = await srlm(['report', 'live', '--json', '--out', outDir], env);
    assert.equal(report.code, 0, report.stderr);
    const r = JSON.parse(report.stdout) as RunReport;
    assert.equal(r.runId, 'live');
    assert.deepEqual(r.headToHead.map((h) => `${h.a} vs ${h.b}`), ['M1 vs SFT', 'M2 vs M1', 'M2 vs SFT', 'M3 vs M2', 'M3 vs SFT']);
    for (const h of r.headToHead) {
      assert.equal(h.judge, 'self');
      assert.equal(h.n, 6);
      assert.equal(h.wins + h.ties + h.losses, h.n);
      assert.equal(h.winRate, (h.wins + h.ties / 2) / h.n);
      assert.ok(h.ci95.length === 2 && h.ci95[0] >= 0 && h.ci95[0] <= h.winRate && h.winRate <= h.ci95[1] && h.ci95[1] <= 1, JSON.stringify(h));
    }
    assert.deepEqual(r.judgeMetrics.map((j) => j.model), ['SFT', 'M1', 'M2', 'M3']);
    for (const j of r.judgeMetrics) {
      assert.equal(j.sets, 3);
      assert.equal(j.pairs, 9, 'three ranked replies per set: three pairs each');
      for (const k of ['pairwiseAccuracy', 'pairwiseTies', 'fiveBest', 'exactMatch'] as const) assert.ok(j[k] >= 0 && j[k] <= 1, `${j.model} ${k} ${j[k]}`);
      assert.equal(j.onPolicyAccuracy, null, 'no oracle for a user’s own data');
    }
    assert.deepEqual(r.pairs.map((p) => p.iteration), [1, 2]);
    for (const p of r.pairs) {
      assert.ok(p.count > 0);
      assert.equal(p.count, p.stats.pairs);
      assert.equal(p.stats.prompts, r.prompts.find((x) => x.iteration === p.iteration)!.count);
      assert.equal(p.oracleAgree, null);
    }
    assert.deepEqual(r.models.map((m) => m.name), ['M0', 'SFT', 'M1', 'M2', 'M3']);
    for (const m of r.models) {
      assert.ok(m.uri?.startsWith(`file://${home.dir}/artifacts/runs/live/`), `${m.name}: ${m.uri}`);
      assert.equal(m.oracleMean, null);
    }
    assert.deepEqual(JSON.parse(readFileSync(path.join(outDir, 'report.json'), 'utf8')), r);
    const md = readFileSync(path.join(outDir, 'report.md'), 'utf8');
    assert.match(md, /^# srlm run live\n/);
    assert.equal(md.match(/^\| M3 \| M2 \| self \| /gm)?.length, 1);
    const html = readFileSync(path.join(outDir, 'report.html'), 'utf8');
    assert.match(html, /^<!doctype html>/i);
    assert.ok((html.match(/<svg /g) ?? []).length > 0, 'charts');
  });

  it('stops both servers and leaves no process behind', async () => {
    const status = JSON.parse((await srlm(['infra', 'status', '--json'], env)).stdout) as { pid: number }[];
    const down = await srlm(['infra', 'down'], env);
    assert.equal(down.code, 0, down.stderr);
    for (const s of status) assert.equal(isAlive(s.pid), false, `pid ${s.pid} still alive`);
    for (const port of Object.values(ports)) assert.equal(await portOpen('127.0.0.1', port), false, `port ${port} still open`);
    const after = JSON.parse((await srlm(['infra', 'status', '--json'], env)).stdout) as { running: boolean }[];
    assert.deepEqual(after.map((s) => s.running), [false, false]);
  });

  it('exports the finished run\'s models from the store alone, with the servers down (srlm export)', async () => {
    const configFile = path.join(home.dir, 'run.json');
    const storeDir = path.join(home.dir, 'artifacts');
    const offline = { ...env, TEMPORAL_ADDRESS: '127.0.0.1:1' }; // any attempt to reach Temporal would fail
    const report = JSON.parse(readFileSync(path.join(storeDir, 'runs', 'cli-e2e', 'report', 'report.json'), 'utf8')) as { models: { name: string; uri: string }[] };
    const indexFile = (name: string) => new URL(report.models.find((m) => m.name === name)!.uri).pathname;
    const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

    // --format hf: the files of M2's checkpoint, byte for byte as the run stored them.
    const hfDir = path.join(home.dir, 'export', 'M2-hf');
    const hf = await srlm(['export', 'cli-e2e', '--model', 'M2', '--format', 'hf', '--out', hfDir, '--config', configFile, '--json'], offline);
    assert.equal(hf.code, 0, hf.stderr);
    const index = JSON.parse(readFileSync(indexFile('M2'), 'utf8')) as { files: Record<string, { sha256: string }> };
    assert.deepEqual(readdirSync(hfDir).sort(), Object.keys(index.files).sort());
    for (const name of ['config.json', 'model.safetensors', 'tokenizer.json']) assert.ok(index.files[name], `${name} in the checkpoint`);
    for (const [name, ref] of Object.entries(index.files)) assert.equal(sha256(path.join(hfDir, name)), ref.sha256, name);
    assert.deepEqual((JSON.parse(hf.stdout) as { files: { name: string }[] }).files.map((f) => f.name).sort(), Object.keys(index.files).sort());
    // It loads with the model core and gives the stored checkpoint's logits.
    const logits = async (dir: string) => {
      const r = await srlm(['model', 'logits', '--model', dir, '--ids', '2,72,101,108,1']);
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as { logits: number[][] }).logits;
    };
    const exported = await logits(hfDir);
    assert.equal(exported.length, 5);
    assert.deepEqual(exported, await logits(path.dirname(indexFile('M2'))));
    assert.notDeepEqual(exported, await logits(path.dirname(indexFile('M1'))), 'M2 is not M1');

    // --format alpaca-eval: one row per evaluation prompt, the model's stored answers, generator = the model's name.
    // The answers to compare with are the ones its head-to-heads recorded (rows keyed by prompt ID).
    const evalPrompts = readFileSync(path.join(home.dir, 'fixture', 'eval.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: string; instruction: string });
    const evalSteps = path.join(storeDir, 'runs', 'cli-e2e', 'steps', 'eval');
    const answersIn = (stepPrefix: string, side: 'responseA' | 'responseB') => {
      const dirs = readdirSync(evalSteps).filter((d) => d.startsWith(stepPrefix));
      assert.equal(dirs.length, 1, `one ${stepPrefix}* step in the store`);
      const rows = readFileSync(path.join(evalSteps, dirs[0]!, 'head-to-head.jsonl'), 'utf8').trim().split('\n').map((l) => HeadToHeadRow.parse(JSON.parse(l)));
      return evalPrompts.map((p) => rows.find((h) => h.promptId === p.id)![side]);
    };
    const outFile = path.join(home.dir, 'export', 'M2-alpaca.json');
    const ae = await srlm(['export', 'cli-e2e', '--model', 'M2', '--format', 'alpaca-eval', '--out', outFile, '--config', configFile], offline);
    assert.equal(ae.code, 0, ae.stderr);
    const rows = JSON.parse(readFileSync(outFile, 'utf8')) as { instruction: string; output: string; generator: string }[];
    assert.equal(rows.length, evalPrompts.length);
    assert.deepEqual(rows.map((r) => r.instruction), evalPrompts.map((p) => p.instruction));
    assert.deepEqual(new Set(rows.map((r) => r.generator)), new Set(['M2']));
    assert.deepEqual(rows.map((r) => r.output), answersIn('M2-vs-M1-self-', 'responseA'));
    // SFT's, naming the store directly and writing into a directory.
    const sftDir = path.join(home.dir, 'export');
    const sft = await srlm(['export', 'cli-e2e', '--model', 'SFT', '--format', 'alpaca-eval', '--out', sftDir, '--store', `file://${storeDir}`, '--json'], offline);
    assert.equal(sft.code, 0, sft.stderr);
    assert.deepEqual(JSON.parse(sft.stdout), { runId: 'cli-e2e', model: 'SFT', format: 'alpaca-eval', out: path.join(sftDir, 'model_outputs.json'), generator: 'SFT', rows: evalPrompts.length });
    const sftRows = JSON.parse(readFileSync(path.join(sftDir, 'model_outputs.json'), 'utf8')) as { output: string; generator: string }[];
    assert.deepEqual(sftRows.map((r) => r.output), answersIn('M2-vs-SFT-self-', 'responseB'));
    assert.deepEqual(new Set(sftRows.map((r) => r.generator)), new Set(['SFT']));

    // Mistakes are exit code 2 with a message that says what to do.
    const cases: [string[], RegExp][] = [
      [['export', 'no-such-run', '--model', 'M2', '--format', 'hf', '--out', path.join(home.dir, 'x')], /no run no-such-run in the store/],
      [['export', 'cli-e2e', '--model', 'M9', '--format', 'hf', '--out', path.join(home.dir, 'x')], /no model "M9"; its models are M0, SFT, M1, M2$/m],
      [['export', 'cli-e2e', '--model', 'M2', '--format', 'gguf', '--out', path.join(home.dir, 'x')], /--format gguf: expected one of hf, alpaca-eval/],
      [['export', 'cli-e2e', '--model', 'M0', '--format', 'alpaca-eval', '--out', path.join(home.dir, 'x.json')], /no stored answers of M0/],
      [['export', 'cli-e2e', '--model', 'M2', '--format', 'hf', '--out', hfDir], /already exists and is not an empty directory/],
    ];
    for (const [args, message] of cases) {
      const r = await srlm([...args, '--config', configFile], offline);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace for a user error');
    }
    assert.equal(existsSync(path.join(home.dir, 'x')), false, 'nothing written for a failed export');
  });
});
