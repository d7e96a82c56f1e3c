import { createHash } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { ArtifactNotFoundError, InvalidInputError, StoreUnavailableError } from '../errors';
import {
  ArtifactManifest,
  type ArtifactRef,
  type Body,
  type ListedArtifact,
  type PutOptions,
} from './artifact';
import { toReadable } from './hashing';
import { validateKey, validatePrefix } from './keys';
import { VerifiedReadStore } from './verified-reads';

const META = '.srlm';
/** Multipart part size: large enough for few requests, small enough to retry cheaply. */
export const PART_SIZE = 8 * 1024 * 1024;

export interface S3StoreOptions {
  bucket: string;
  prefix?: string;
  client?: S3Client;
  /** Used only when no client is given. */
  clientConfig?: S3ClientConfig;
  /** Concurrent part uploads per artifact. */
  queueSize?: number;
}

/**
 * The store at scale: any S3-compatible bucket, through @aws-sdk/client-s3 and the standard AWS
 * environment (region, credentials chain, `AWS_ENDPOINT_URL_S3`).
 *
 * Layout: data at `<prefix>/<key>` (a checkpoint directory can be synced out with any S3 tool),
 * the manifest at `<prefix>/.srlm/manifests/<key>.json`. An S3 object becomes visible only when
 * its PUT or its multipart upload completes, so no reader sees half an object; the manifest is
 * written after the data, so a manifest always has its data. Listing reads manifests only, so
 * an upload that never completed is invisible.
 */
export class S3Store extends VerifiedReadStore {
  readonly rootUri: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly client: S3Client;
  private readonly queueSize: number;

  constructor(options: S3StoreOptions) {
    super();
    this.bucket = options.bucket;
    this.prefix = normalisePrefix(options.prefix ?? '');
    this.client = options.client ?? new S3Client(options.clientConfig ?? {});
    this.queueSize = options.queueSize ?? 4;
    this.rootUri = `s3://${this.bucket}${this.prefix ? `/${this.prefix.slice(0, -1)}` : ''}`;
  }

  uriFor(key: string): string {
    return `s3://${this.bucket}/${this.objectKey(key)}`;
  }

  keyFor(uri: string): string {
    const root = `${this.rootUri}/`;
    if (!uri.startsWith(root)) throw new InvalidInputError(`${uri} is outside the store ${this.rootUri}`);
    return validateKey(uri.slice(root.length));
  }

  private objectKey(key: string): string {
    return `${this.prefix}${validateKey(key)}`;
  }

  private manifestKey(key: string): string {
    return `${this.prefix}${META}/manifests/${validateKey(key)}.json`;
  }

  async put(key: string, body: Body, options: PutOptions = {}): Promise<ArtifactRef> {
    const uri = this.uriFor(key);
    const hasher = createHash('sha256');
    let bytes = 0;
    let sourceError: unknown;
    // Hash on the way up: the sha256 is known the moment the last part is sent.
    async function* hashed(): AsyncGenerator<Buffer> {
      try {
        for await (const chunk of toReadable(body)) {
          const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
          hasher.update(buf);
          bytes += buf.length;
          yield buf;
        }
      } catch (err) {
        // An abort is the upload giving up on us (e.g. the server went away), not the body failing.
        if ((err as { name?: string })?.name !== 'AbortError') sourceError = err;
        throw err;
      }
    }
    const stream = Readable.from(hashed());
    try {
      // Unpublish first: during an overwrite nobody may pair the old manifest with new data.
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.manifestKey(key) }));
      const upload = new Upload({
        client: this.client,
        params: {
          Bucket: this.bucket,
          Key: this.objectKey(key),
          Body: stream,
          ...(options.contentType ? { ContentType: options.contentType } : {}),
        },
        partSize: PART_SIZE,
        queueSize: this.queueSize,
        leavePartsOnError: false, // abort the multipart upload: nothing half-written stays behind
      });
      await upload.done();
    } catch (err) {
      stream.destroy();
      // The caller's own body failing is the caller's error, not the store's.
      if (sourceError !== undefined) throw sourceError;
      throw classifyS3Error(err, uri, 'uploading');
    }
    const sha256 = hasher.digest('hex');
    const manifest: ArtifactManifest = {
      key,
      sha256,
      bytes,
      createdAt: new Date().toISOString(),
      ...(options.contentType ? { contentType: options.contentType } : {}),
    };
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: this.manifestKey(key),
          Body: JSON.stringify(manifest),
          ContentType: 'application/json',
        }),
      );
    } catch (err) {
      throw classifyS3Error(err, uri, 'publishing the manifest of');
    }
    return { uri, sha256: manifest.sha256, bytes: manifest.bytes };
  }

  private async manifest(key: string): Promise<ArtifactManifest | undefined> {
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.manifestKey(key) }));
      const text = await res.Body!.transformToString();
      return ArtifactManifest.parse(JSON.parse(text));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw classifyS3Error(err, this.uriFor(key), 'reading the manifest of');
    }
  }

  async head(key: string): Promise<ArtifactRef | undefined> {
    const m = await this.manifest(key);
    return m && { uri: this.uriFor(key), sha256: m.sha256, bytes: m.bytes };
  }

  protected async openData(key: string, ref: ArtifactRef): Promise<NodeJS.ReadableStream> {
    let res;
    try {
      res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
    } catch (err) {
      if (isNotFound(err)) throw new ArtifactNotFoundError(ref.uri, 'its manifest is published but the data object is gone; delete the manifest too, or use a new run ID');
      throw classifyS3Error(err, ref.uri, 'downloading');
    }
    const source = res.Body as NodeJS.ReadableStream;
    const wrapped = new PassThrough();
    source.on('error', (err: unknown) => wrapped.destroy(classifyS3Error(err, ref.uri, 'downloading')));
    return source.pipe(wrapped);
  }

  async list(prefix: string): Promise<ListedArtifact[]> {
    validatePrefix(prefix);
    const manifestPrefix = `${this.prefix}${META}/manifests/`;
    const out: ListedArtifact[] = [];
    let token: string | undefined;
    try {
      do {
        const res = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: manifestPrefix + prefix, ContinuationToken: token }),
        );
        for (const obj of res.Contents ?? []) {
          if (!obj.Key?.endsWith('.json')) continue;
          const key = obj.Key.slice(manifestPrefix.length, -'.json'.length);
          const m = await this.manifest(key);
          if (m) out.push({ key, uri: this.uriFor(key), sha256: m.sha256, bytes: m.bytes });
        }
        token = res.IsTruncated ? res.NextContinuationToken : undefined;
      } while (token);
    } catch (err) {
      throw classifyS3Error(err, `${this.rootUri}/${prefix}`, 'listing');
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.manifestKey(key) }));
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
    } catch (err) {
      throw classifyS3Error(err, this.uriFor(key), 'deleting');
    }
  }
}

function normalisePrefix(prefix: string): string {
  const p = prefix.replace(/^\/+|\/+$/g, '');
  if (p === '') return '';
  validateKey(p, 'S3 prefix');
  return `${p}/`;
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404 && e?.name !== 'NoSuchBucket';
}

const TRANSIENT_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND',
  'TimeoutError', 'RequestTimeout', 'RequestTimeoutException', 'SlowDown', 'ServiceUnavailable',
  'InternalError', 'ThrottlingException', 'NetworkingError', 'AbortError',
]);

/**
 * Turns an SDK error into one the pipeline can act on: a store that is away (connection refused,
 * reset, 5xx, throttling) is retryable; a missing bucket or denied access is a configuration
 * problem that retrying will not fix.
 */
export function classifyS3Error(err: unknown, uri: string, doing: string): Error {
  if (err instanceof StoreUnavailableError || err instanceof InvalidInputError) return err;
  const e = err as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number }; $retryable?: unknown; cause?: { code?: string } };
  const status = e?.$metadata?.httpStatusCode;
  const code = e?.code ?? e?.cause?.code ?? e?.name ?? '';
  const message = e?.message || code || String(err);
  if (e?.name === 'NoSuchBucket') {
    return new InvalidInputError(`${doing} ${uri}: the bucket does not exist; create it or fix store.uri`, { cause: err });
  }
  if (e?.name === 'AccessDenied' || e?.name === 'InvalidAccessKeyId' || e?.name === 'SignatureDoesNotMatch' || status === 403) {
    return new InvalidInputError(`${doing} ${uri}: access denied (${e?.name ?? status}); check the AWS credentials`, { cause: err });
  }
  if (TRANSIENT_CODES.has(code) || (status !== undefined && status >= 500) || status === 429 || e?.$retryable || status === undefined) {
    return new StoreUnavailableError(`S3 unavailable while ${doing} ${uri}: ${message}; the step will be retried`, { cause: err });
  }
  return err instanceof Error ? err : new Error(message);
}
