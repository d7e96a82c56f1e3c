import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Log } from './install';
import { srlmHome } from './paths';
import { isAlive, portOpen, stopProcess } from './process';
import { ensureBucket, startS3Server } from './s3-server';
import { startTemporalDevServer } from './temporal-server';

/**
 * The embedded local stack behind `srlm infra up|down|status` and `npm start`: the Temporal dev
 * server with its Web UI, and the S3 server. State (SQLite file, bucket data, pid files, logs)
 * lives under SRLM_HOME (default ~/.srlm); the servers outlive the command that started them.
 */

export interface StackState {
  temporal?: { pid: number; address: string; uiUrl?: string; dbFile: string; logFile: string };
  s3?: { pid: number; endpoint: string; bucket: string; dataDir: string; logFile: string; credentialsFile: string };
}

const ports = () => ({
  temporal: Number(process.env.SRLM_TEMPORAL_PORT ?? 7233),
  ui: Number(process.env.SRLM_TEMPORAL_UI_PORT ?? 8233),
  s3: Number(process.env.SRLM_S3_PORT ?? 7070),
});

function infraDir(): string {
  const dir = path.join(srlmHome(), 'infra');
  mkdirSync(dir, { recursive: true });
  return dir;
}

const stateFile = () => path.join(infraDir(), 'state.json');

export function readState(): StackState {
  try {
    return JSON.parse(readFileSync(stateFile(), 'utf8')) as StackState;
  } catch {
    return {};
  }
}

function writeState(state: StackState): void {
  writeFileSync(stateFile(), `${JSON.stringify(state, null, 2)}\n`);
}

/** The local Temporal dev server's address, starting it (with the Web UI) when it is not running. */
export async function ensureLocalTemporal(log: Log): Promise<{ address: string; uiUrl?: string }> {
  const state = readState();
  const t = state.temporal;
  if (t && isAlive(t.pid) && (await portOpen('127.0.0.1', Number(t.address.split(':')[1])))) {
    return { address: t.address, ...(t.uiUrl ? { uiUrl: t.uiUrl } : {}) };
  }
  const dir = path.join(srlmHome(), 'temporal');
  mkdirSync(dir, { recursive: true });
  const p = ports();
  const dbFile = path.join(dir, 'temporal.sqlite');
  const logFile = path.join(infraDir(), 'temporal.log');
  log(`temporal: starting the dev server on 127.0.0.1:${p.temporal} (SQLite ${dbFile}, log ${logFile})`);
  const server = await startTemporalDevServer(
    { dbFile, port: p.temporal, uiPort: p.ui, headless: false, logFile, detached: true, ...(t ? { previousPid: t.pid } : {}) },
    log,
  );
  writeState({
    ...readState(),
    temporal: { pid: server.pid, address: server.address, ...(server.uiUrl ? { uiUrl: server.uiUrl } : {}), dbFile, logFile },
  });
  log(`temporal: up at ${server.address}; Web UI ${server.uiUrl}`);
  return { address: server.address, ...(server.uiUrl ? { uiUrl: server.uiUrl } : {}) };
}

function s3Credentials(): { file: string; accessKey: string; secretKey: string } {
  const file = path.join(infraDir(), 's3-credentials.env');
  if (!existsSync(file)) {
    const accessKey = `srlm${randomBytes(8).toString('hex')}`;
    const secretKey = randomBytes(24).toString('base64url');
    writeFileSync(file, `AWS_ACCESS_KEY_ID=${accessKey}\nAWS_SECRET_ACCESS_KEY=${secretKey}\n`, { mode: 0o600 });
  }
  const text = readFileSync(file, 'utf8');
  const get = (name: string) => new RegExp(`^${name}=(\\S+)$`, 'm').exec(text)?.[1] ?? '';
  return { file, accessKey: get('AWS_ACCESS_KEY_ID'), secretKey: get('AWS_SECRET_ACCESS_KEY') };
}

export async function ensureLocalS3(log: Log): Promise<NonNullable<StackState['s3']>> {
  const state = readState();
  const s = state.s3;
  if (s && isAlive(s.pid) && (await portOpen('127.0.0.1', Number(new URL(s.endpoint).port)))) return s;
  const p = ports();
  const dataDir = path.join(srlmHome(), 's3');
  const logFile = path.join(infraDir(), 's3.log');
  const creds = s3Credentials();
  log(`s3: starting the Versity S3 Gateway on 127.0.0.1:${p.s3} (data ${dataDir}, log ${logFile})`);
  const server = await startS3Server(
    { dataDir, port: p.s3, accessKey: creds.accessKey, secretKey: creds.secretKey, logFile, detached: true },
    log,
  );
  const bucket = 'srlm';
  await ensureBucket(server.endpoint, creds.accessKey, creds.secretKey, bucket);
  const entry = { pid: server.pid, endpoint: server.endpoint, bucket, dataDir, logFile, credentialsFile: creds.file };
  writeState({ ...readState(), s3: entry });
  log(`s3: up at ${server.endpoint}, bucket s3://${bucket}`);
  return entry;
}

export interface ServiceStatus {
  name: 'temporal' | 's3';
  running: boolean;
  pid?: number;
  address?: string;
  uiUrl?: string;
  detail: string;
}

export async function stackStatus(): Promise<ServiceStatus[]> {
  const state = readState();
  const out: ServiceStatus[] = [];
  const t = state.temporal;
  if (t) {
    const running = isAlive(t.pid) && (await portOpen('127.0.0.1', Number(t.address.split(':')[1])));
    const ui = t.uiUrl ? await portOpen('127.0.0.1', Number(new URL(t.uiUrl).port)) : false;
    out.push({
      name: 'temporal', running, pid: t.pid, address: t.address, ...(t.uiUrl ? { uiUrl: t.uiUrl } : {}),
      detail: running ? `dev server, SQLite ${t.dbFile}, Web UI ${ui ? 'answering' : 'not answering'}` : 'not running',
    });
  } else out.push({ name: 'temporal', running: false, detail: 'not running (start it with srlm infra up)' });
  const s = state.s3;
  if (s) {
    const running = isAlive(s.pid) && (await portOpen('127.0.0.1', Number(new URL(s.endpoint).port)));
    out.push({
      name: 's3', running, pid: s.pid, address: s.endpoint,
      detail: running ? `Versity S3 Gateway, bucket s3://${s.bucket}, data ${s.dataDir}, credentials in ${s.credentialsFile}` : 'not running',
    });
  } else out.push({ name: 's3', running: false, detail: 'not running (start it with srlm infra up)' });
  return out;
}

/** Stops both servers and waits until their processes are gone. */
export async function stackDown(log: Log): Promise<void> {
  const state = readState();
  for (const [name, entry] of [['temporal', state.temporal], ['s3', state.s3]] as const) {
    if (!entry) continue;
    const result = await stopProcess(entry.pid, 15_000);
    log(`${name}: ${result === 'not-running' ? 'was not running' : `${result} (pid ${entry.pid})`}`);
  }
  writeState({});
}
