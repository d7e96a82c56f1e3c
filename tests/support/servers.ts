/**
 * Real servers for the tests, one per suite: the Temporal dev server (headless, on a temp SQLite
 * file) and the Versity S3 Gateway (on a temp directory). Both on free loopback ports; both
 * stopped by the suite's `after`. Binaries come from the project's cache (tests/harness.ts
 * installs them before any test runs).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { ensureBucket, startS3Server } from '../../infra/s3-server';
import { startTemporalDevServer } from '../../infra/temporal-server';
import { freePort, stopProcess, waitForExit } from '../../infra/process';

const quiet = (line: string) => {
  if (process.env.SRLM_TEST_VERBOSE) process.stderr.write(`${line}\n`);
};

/** Registers a server's pid so the harness can stop it if this suite dies before its `after`. */
function track(pid: number, name: string): void {
  const dir = process.env.SRLM_TEST_PID_DIR;
  if (dir) writeFileSync(path.join(dir, `${name}-${pid}`), String(pid));
}

export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), `srlm-${prefix}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface TestTemporal {
  address: string;
  pid: number;
  dbFile: string;
  /** Kill the server (SIGKILL unless told otherwise) and start it again on the same SQLite file and port. */
  restart(signal?: NodeJS.Signals): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestTemporal(options: { ui?: boolean } = {}): Promise<TestTemporal> {
  const tmp = tempDir('temporal');
  const port = await freePort();
  const uiPort = await freePort();
  const dbFile = path.join(tmp.dir, 'temporal.sqlite');
  const logFile = path.join(tmp.dir, 'temporal.log');
  const start = (previousPid?: number) =>
    startTemporalDevServer(
      { dbFile, port, uiPort, headless: !options.ui, logFile, detached: false, ...(previousPid ? { previousPid } : {}) },
      quiet,
    );
  let server = await start();
  track(server.pid, 'temporal');
  const handle: TestTemporal = {
    address: server.address,
    pid: server.pid,
    dbFile,
    async restart(signal: NodeJS.Signals = 'SIGKILL') {
      const old = server.pid;
      process.kill(old, signal);
      server = await start(old);
      track(server.pid, 'temporal');
      handle.pid = server.pid;
    },
    async stop() {
      await stopProcess(server.pid);
      tmp.remove();
    },
  };
  return handle;
}

export interface TestS3 {
  endpoint: string;
  bucket: string;
  accessKey: string;
  secretKey: string;
  pid: number;
  client(config?: { maxAttempts?: number }): S3Client;
  /** Stop the server (SIGKILL by default); its data stays. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Start it again on the same port and data. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestS3(): Promise<TestS3> {
  const tmp = tempDir('s3');
  const port = await freePort();
  const accessKey = `test${randomBytes(6).toString('hex')}`;
  const secretKey = randomBytes(18).toString('base64url');
  const logFile = path.join(tmp.dir, 's3.log');
  const launch = () => startS3Server({ dataDir: tmp.dir, port, accessKey, secretKey, logFile, detached: false }, quiet);
  let server = await launch();
  track(server.pid, 's3');
  const bucket = 'srlm-test';
  await ensureBucket(server.endpoint, accessKey, secretKey, bucket);
  const clients: S3Client[] = [];
  const handle: TestS3 = {
    endpoint: server.endpoint,
    bucket,
    accessKey,
    secretKey,
    pid: server.pid,
    client(config = {}) {
      const c = new S3Client({
        endpoint: server.endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: accessKey, secretAccessKey: secretKey },
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        ...(config.maxAttempts ? { maxAttempts: config.maxAttempts } : {}),
      });
      clients.push(c);
      return c;
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (signal === 'SIGKILL') {
        process.kill(server.pid, 'SIGKILL');
        await waitForExit(server.pid, 10_000);
      } else await stopProcess(server.pid);
    },
    async start() {
      server = await launch();
      track(server.pid, 's3');
      handle.pid = server.pid;
    },
    async stop() {
      for (const c of clients) c.destroy();
      await stopProcess(server.pid);
      tmp.remove();
    },
  };
  return handle;
}
