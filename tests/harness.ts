/**
 * `npm test`: provisions what the tests need, runs them with node's test runner, and makes sure no
 * server outlives the run.
 *
 * 1. Installs the pinned Temporal CLI and S3 server into the cache (once; minutes the first time,
 *    with visible progress), so no test times out waiting for a build.
 * 2. Runs every compiled test file under dist/tests/{unit,integration}. Suites start their own real
 *    servers (Temporal dev server, Versity S3 Gateway) on free loopback ports and stop them.
 * 3. Kills any server a crashed suite left behind (they register their pids in SRLM_TEST_PID_DIR).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensureS3Server, ensureTemporalCli } from '../infra/install';
import { ensureNativeBackend } from '../infra/native-backend';
import { isAlive, stopProcess } from '../infra/process';

const log = (line: string) => process.stderr.write(`${line}\n`);

async function main(): Promise<number> {
  const started = Date.now();
  log('srlm tests: making sure the pinned servers are installed (cached after the first run)');
  // Independent installs, side by side: the S3 server's Go build dominates a first run.
  const [temporal, s3, native] = await Promise.all([ensureTemporalCli(log), ensureS3Server(log), ensureNativeBackend(log)]);
  log(`srlm tests: temporal ${temporal}`);
  log(`srlm tests: versitygw ${s3}`);
  log(`srlm tests: native TensorFlow backend ${native.ok ? 'ready' : `NOT available (${native.detail}); model tests run on wasm/cpu`}`);
  log(`srlm tests: setup took ${Math.round((Date.now() - started) / 1000)} s`);

  const pidDir = mkdtempSync(path.join(os.tmpdir(), 'srlm-test-pids-'));
  const root = path.join(__dirname);
  const filter = process.argv.slice(2);
  const files = ['unit', 'integration']
    .flatMap((dir) => readdirSync(path.join(root, dir)).filter((f) => f.endsWith('.test.js')).map((f) => path.join(root, dir, f)))
    .filter((f) => filter.length === 0 || filter.some((pattern) => f.includes(pattern)));

  const code = await new Promise<number>((resolve) => {
    const child = spawn(process.execPath, ['--test', '--test-timeout=900000', ...files], {
      stdio: 'inherit',
      env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...process.env, SRLM_TEST_PID_DIR: pidDir, SRLM_TEMPORAL_BIN: temporal, SRLM_VERSITYGW_BIN: s3, SRLM_EXPECT_NATIVE: native.ok ? '1' : '0' },
    });
    child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
  });

  let leftovers = 0;
  for (const f of readdirSync(pidDir)) {
    const pid = Number(readFileSync(path.join(pidDir, f), 'utf8'));
    if (pid && isAlive(pid)) {
      leftovers++;
      log(`srlm tests: stopping a server a suite left running (pid ${pid}, ${f})`);
      await stopProcess(pid, 5_000);
    }
  }
  rmSync(pidDir, { recursive: true, force: true });
  log(`srlm tests: finished in ${Math.round((Date.now() - started) / 1000)} s${leftovers ? `; ${leftovers} server(s) had to be stopped` : ''}`);
  return code;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
