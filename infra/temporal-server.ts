import { existsSync, readFileSync } from 'node:fs';
import { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { SEARCH_ATTRIBUTES } from '../workflows/search-attributes';
import { ensureTemporalCli, type Log } from './install';
import { isAlive, portOpen, spawnDaemon, waitForExit, waitUntil } from './process';

export interface TemporalDevServerOptions {
  /** SQLite file: the server's state survives a restart on the same file. */
  dbFile: string;
  ip?: string;
  port: number;
  uiPort: number;
  /** No Web UI (tests); `srlm infra up` keeps it. */
  headless: boolean;
  logFile: string;
  detached: boolean;
  namespace?: string;
  /** pid of an earlier server on the same dbFile, to wait for before starting. */
  previousPid?: number;
}

export interface TemporalDevServer {
  pid: number;
  address: string;
  uiUrl: string | undefined;
  namespace: string;
}

const INDEXED_TYPE: Record<string, temporal.api.enums.v1.IndexedValueType> = {
  KEYWORD: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  INT: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_INT,
  DOUBLE: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
  TEXT: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
  BOOL: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
};

/**
 * `temporal server start-dev` with a SQLite file, the Web UI (unless headless) and our search
 * attributes registered — also when the database already exists, where the dev server ignores
 * `--search-attribute`.
 */
export async function startTemporalDevServer(options: TemporalDevServerOptions, log: Log): Promise<TemporalDevServer> {
  const ip = options.ip ?? '127.0.0.1';
  const namespace = options.namespace ?? 'default';
  const bin = await ensureTemporalCli(log);
  if (options.previousPid !== undefined && isAlive(options.previousPid)) {
    // SQLite allows one server per file: starting before the old one has exited fails with SQLITE_BUSY.
    log(`temporal: waiting for the previous server (pid ${options.previousPid}) to exit before reopening ${options.dbFile}`);
    if (!(await waitForExit(options.previousPid, 30_000))) {
      throw new Error(
        `the previous Temporal server (pid ${options.previousPid}) still holds ${options.dbFile} after 30 s; stop it (kill ${options.previousPid}) and try again`,
      );
    }
  }
  // After a restart the old server's sockets can outlive its pid for a moment: give the port a few seconds.
  const portFreeBy = Date.now() + (options.previousPid !== undefined ? 15_000 : 0);
  while (await portOpen(ip, options.port)) {
    if (Date.now() >= portFreeBy) throw new Error(`port ${ip}:${options.port} is already in use; is another Temporal server running? (srlm infra status)`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const fresh = !existsSync(options.dbFile);
  const args = [
    'server', 'start-dev',
    '--db-filename', options.dbFile,
    '--ip', ip,
    '--port', String(options.port),
    '--namespace', namespace,
    '--log-level', 'warn',
  ];
  if (options.headless) args.push('--headless');
  else args.push('--ui-port', String(options.uiPort), '--ui-ip', ip);
  if (fresh) for (const key of SEARCH_ATTRIBUTES) args.push('--search-attribute', `${key.name}=${key.type === 'KEYWORD' ? 'Keyword' : key.type === 'INT' ? 'Int' : 'Double'}`);
  const child = spawnDaemon(bin, args, { logFile: options.logFile, detached: options.detached });
  const pid = child.pid!;
  const address = `${ip}:${options.port}`;
  const describe = () => {
    const tail = readTail(options.logFile);
    const locked = /database is locked|SQLITE_BUSY/.test(tail)
      ? ` — the SQLite file ${options.dbFile} is locked: another Temporal server still has it open; stop it first`
      : '';
    return `the Temporal dev server did not come up on ${address}${locked}; its log is ${options.logFile}:\n${tail}`;
  };
  await waitUntil(() => portOpen(ip, options.port), { timeoutMs: 60_000, pid, describe });
  await ensureSearchAttributes(address, namespace, log);
  if (!options.headless) {
    await waitUntil(() => portOpen(ip, options.uiPort), { timeoutMs: 30_000, pid, describe: () => `the Temporal Web UI did not come up on ${ip}:${options.uiPort}` });
  }
  return { pid, address, uiUrl: options.headless ? undefined : `http://${ip}:${options.uiPort}`, namespace };
}

/** Registers the project's search attributes on any server that allows it (not Temporal Cloud). */
export async function ensureSearchAttributes(address: string, namespace: string, log: Log, connection?: Connection): Promise<void> {
  const conn = connection ?? (await Connection.connect({ address, connectTimeout: 30_000 }));
  try {
    let existing: Record<string, unknown> = {};
    await waitUntil(async () => {
      try {
        const res = await conn.operatorService.listSearchAttributes({ namespace });
        existing = { ...(res.customAttributes ?? {}) };
        return true;
      } catch {
        return false; // the frontend answers before the namespace is ready
      }
    }, { timeoutMs: 60_000, describe: () => `namespace ${namespace} on ${address} did not answer listSearchAttributes` });
    const missing = SEARCH_ATTRIBUTES.filter((key) => !(key.name in existing));
    if (missing.length === 0) return;
    log(`temporal: registering search attributes ${missing.map((k) => k.name).join(', ')}`);
    await conn.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((key) => [key.name, INDEXED_TYPE[key.type]!])),
    });
    await waitUntil(async () => {
      const res = await conn.operatorService.listSearchAttributes({ namespace });
      return missing.every((key) => key.name in (res.customAttributes ?? {}));
    }, { timeoutMs: 30_000, describe: () => `search attributes did not appear on ${address}` });
  } finally {
    if (!connection) await conn.close();
  }
}

function readTail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
