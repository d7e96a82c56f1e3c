import { InvalidInputError } from '../errors';

/**
 * Artifact keys are relative POSIX paths inside a store's root, e.g. `runs/r1/iteration-1/pairs.jsonl`.
 *
 * They are validated before any I/O so that no key (a run ID, a step name, a value from a config
 * file) can address anything outside the store's prefix. Segments that start with a dot are
 * reserved for the store's own bookkeeping (manifests, temporary uploads).
 */
const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._=+@,-]*$/;
const MAX_KEY_BYTES = 768; // S3 allows 1024 bytes for the whole object key, prefix included

export function validateKey(key: string, what = 'artifact key'): string {
  const fail = (why: string): never => {
    throw new InvalidInputError(`invalid ${what} ${JSON.stringify(key)}: ${why}`);
  };
  if (typeof key !== 'string' || key.length === 0) fail('it is empty');
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) fail(`it is longer than ${MAX_KEY_BYTES} bytes`);
  if (key.startsWith('/')) fail('absolute paths are not allowed; keys are relative to the store root');
  if (key.includes('\\')) fail('backslashes are not allowed');
  if (key.endsWith('/')) fail('a key names an object, not a folder (drop the trailing slash)');
  for (const segment of key.split('/')) {
    if (segment === '') fail('empty path segment ("//")');
    if (segment === '.' || segment === '..') fail('"." and ".." segments are not allowed');
    if (segment.startsWith('.')) fail(`segment "${segment}" starts with "."; those names are reserved for the store`);
    if (!SEGMENT.test(segment)) fail(`segment "${segment}" has characters outside [A-Za-z0-9._=+@,-]`);
  }
  return key;
}

/** A prefix for listing: either empty (everything) or a valid key, optionally ending in "/". */
export function validatePrefix(prefix: string): string {
  if (prefix === '') return prefix;
  validateKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix, 'artifact prefix');
  return prefix;
}

const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** Run IDs become workflow IDs and key prefixes: keep them short and path-safe. */
export function validateRunId(runId: string): string {
  if (!RUN_ID.test(runId) || runId.includes('..')) {
    throw new InvalidInputError(
      `invalid run ID ${JSON.stringify(runId)}: use 1-100 characters of [A-Za-z0-9._-], starting with a letter or digit, without ".."`,
    );
  }
  return runId;
}
