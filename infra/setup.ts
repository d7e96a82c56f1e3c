/**
 * `npm run setup`: install the pinned servers into the cache now (npm test, npm start and
 * `srlm infra up` do it on demand; this is for preparing a machine ahead of time).
 */
import { cacheDir } from './paths';
import { ensureS3Server, ensureTemporalCli } from './install';
import { ensureNativeBackend } from './native-backend';

async function run(): Promise<void> {
  const log = (line: string) => process.stderr.write(`${line}\n`);
  log(`setup: cache ${cacheDir()}`);
  const started = Date.now();
  // `npm run setup` prepares everything; `npm start` asks only for what a local run needs.
  const wanted = new Set(process.argv.slice(2).length ? process.argv.slice(2) : ['temporal', 's3', 'native']);
  for (const part of wanted) if (!['temporal', 's3', 'native'].includes(part)) throw new Error(`setup: unknown part ${part}; use temporal, s3, native`);
  if (wanted.has('temporal')) log(`setup: temporal → ${await ensureTemporalCli(log)}`);
  if (wanted.has('s3')) log(`setup: versitygw → ${await ensureS3Server(log)}`);
  if (wanted.has('native')) {
    const native = await ensureNativeBackend(log);
    log(`setup: native TensorFlow backend → ${native.ok ? 'ready' : `not available (${native.detail}); the wasm backend will be used`}`);
  }
  log(`setup: done in ${Math.round((Date.now() - started) / 1000)} s`);
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
