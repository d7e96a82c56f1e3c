import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { S3Client } from '@aws-sdk/client-s3';
import { InvalidInputError } from '../errors';
import type { ArtifactStore } from './artifact';
import { LocalStore } from './local';
import { S3Store } from './s3';

export interface S3Settings {
  region?: string | undefined;
  endpoint?: string | undefined;
  forcePathStyle?: boolean | undefined;
}

/**
 * Opens the store a URI names: `file:///abs/dir`, a plain path (`./artifacts`, `~/x`) or
 * `s3://bucket/prefix`. S3 settings come from the argument, then the standard AWS environment
 * (`AWS_REGION`, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, the credentials chain).
 * Credentials are never taken from the URI or the config file.
 */
export function openStore(uri: string, s3: S3Settings = {}): ArtifactStore {
  if (uri.startsWith('s3://')) {
    const rest = uri.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    const prefix = slash < 0 ? '' : rest.slice(slash + 1);
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
      throw new InvalidInputError(`invalid S3 bucket name ${JSON.stringify(bucket)} in ${uri}`);
    }
    const endpoint = s3.endpoint ?? process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
    const region = s3.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
    // S3-compatible servers on a host name or IP without wildcard DNS need path-style addressing.
    const forcePathStyle = s3.forcePathStyle ?? (endpoint !== undefined ? true : undefined);
    const client = new S3Client({
      region,
      ...(endpoint ? { endpoint } : {}),
      ...(forcePathStyle !== undefined ? { forcePathStyle } : {}),
      // Checksums only where S3 requires them: many S3-compatible servers reject trailing CRC checksums.
      // Integrity is ours anyway: every artifact's sha256 is recorded and verified on read.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    return new S3Store({ bucket, prefix, client });
  }
  if (uri.startsWith('file://')) return new LocalStore(fileURLToPath(uri));
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) {
    throw new InvalidInputError(`unsupported store URI ${uri}: use file:///path, a local path, or s3://bucket/prefix`);
  }
  const expanded = uri === '~' || uri.startsWith('~/') ? path.join(os.homedir(), uri.slice(1)) : uri;
  return new LocalStore(path.resolve(expanded));
}
