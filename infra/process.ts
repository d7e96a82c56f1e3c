import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import * as net from 'node:net';

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A zombie (exited, not yet reaped) still answers kill(0); it holds no files or ports.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Waits until the process has exited; false if it is still there after `timeoutMs`. */
export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await sleep(100);
  }
  return !isAlive(pid);
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function stopProcess(pid: number, graceMs = 10_000): Promise<'stopped' | 'killed' | 'not-running'> {
  if (!isAlive(pid)) return 'not-running';
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return 'not-running';
  }
  if (await waitForExit(pid, graceMs)) return 'stopped';
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
  await waitForExit(pid, 5_000);
  return 'killed';
}

export function portOpen(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** A TCP port nobody listens on right now (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface DaemonOptions {
  env?: NodeJS.ProcessEnv;
  logFile: string;
  /** Detached daemons outlive this process (`srlm infra up`); attached ones die with it (tests). */
  detached: boolean;
}

/** Starts a server process with stdout and stderr appended to a log file. */
export function spawnDaemon(command: string, args: string[], options: DaemonOptions): ChildProcess {
  const fd = openSync(options.logFile, 'a');
  try {
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      stdio: ['ignore', fd, fd],
      detached: options.detached,
    });
    if (options.detached) child.unref();
    return child;
  } finally {
    closeSync(fd);
  }
}

/** Polls `check` until it returns true; throws with `describe()` when the deadline passes or the process died. */
export async function waitUntil(
  check: () => Promise<boolean>,
  options: { timeoutMs: number; pid?: number; describe: () => string },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    if (await check()) return;
    if (options.pid !== undefined && !isAlive(options.pid)) throw new Error(`${options.describe()} (the process exited)`);
    if (Date.now() > deadline) throw new Error(`${options.describe()} (no answer after ${options.timeoutMs / 1000} s)`);
    await sleep(200);
  }
}
