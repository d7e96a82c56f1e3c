/**
 * `npm run setup`: install the pinned servers into the cache now (npm test, npm start and
 * `srlm infra up` do it on demand; this is for preparing a machine ahead of time).
 */
import { cacheDir } from './paths';
import { ensureS3Server, ensureTemporalCli } from './install';

async function run(): Promise<void> {
  const log = (line: string) => process.stderr.write(`${line}\n`);
  log(`setup: cache ${cacheDir()}`);
  const started = Date.now();
  const [temporal, s3] = await Promise.all([ensureTemporalCli(log), ensureS3Server(log)]);
  log(`setup: temporal → ${temporal}`);
  log(`setup: versitygw → ${s3}`);
  log(`setup: done in ${Math.round((Date.now() - started) / 1000)} s`);
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
