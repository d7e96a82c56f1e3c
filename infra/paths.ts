import * as os from 'node:os';
import * as path from 'node:path';

/**
 * Where the project keeps what it installs (pinned server binaries) — outside the work tree, shared
 * by every clone, reused across runs. Override with SRLM_CACHE_DIR.
 */
export function cacheDir(): string {
  if (process.env.SRLM_CACHE_DIR) return path.resolve(process.env.SRLM_CACHE_DIR);
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'srlm');
}

/**
 * Where the local servers keep their state (Temporal's SQLite file, the S3 server's data, pid files,
 * logs) and where the embedded default store lives. Override with SRLM_HOME.
 */
export function srlmHome(): string {
  return path.resolve(process.env.SRLM_HOME || path.join(os.homedir(), '.srlm'));
}
