import { z } from 'zod';

/**
 * What crosses Temporal for every dataset, checkpoint and report: a reference, never the bytes.
 * `sha256` is recorded when the artifact is written and verified on every read.
 */
export const ArtifactRef = z.object({
  uri: z.string().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  bytes: z.number().int().nonnegative(),
});
export type ArtifactRef = z.infer<typeof ArtifactRef>;

/**
 * The manifest published next to each artifact, after its data. A reader that finds a manifest
 * finds complete data; data without a manifest is an unfinished write and is invisible.
 */
export const ArtifactManifest = z.object({
  key: z.string(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  bytes: z.number().int().nonnegative(),
  contentType: z.string().optional(),
  createdAt: z.string(),
});
export type ArtifactManifest = z.infer<typeof ArtifactManifest>;

export interface ListedArtifact extends ArtifactRef {
  key: string;
}

export type Body = Uint8Array | string | NodeJS.ReadableStream | AsyncIterable<Uint8Array>;

export interface PutOptions {
  contentType?: string;
}

/**
 * One interface over a local directory (`file://`) and S3 (`s3://bucket/prefix`).
 *
 * Keys are relative paths (see keys.ts). Reads take a key or an ArtifactRef; a ref is checked
 * against the sha256 it carries as well as the published manifest.
 */
export interface ArtifactStore {
  /** The store's root URI, e.g. `file:///home/me/.srlm/artifacts` or `s3://bucket/prefix`. */
  readonly rootUri: string;
  /** The URI an artifact with this key has (whether or not it exists). */
  uriFor(key: string): string;
  /** The key of a URI inside this store; an error for a URI outside its root. */
  keyFor(uri: string): string;
  /** Write and publish atomically; the sha256 is computed while streaming. */
  put(key: string, body: Body, options?: PutOptions): Promise<ArtifactRef>;
  /** The published artifact's reference, or undefined when there is none. */
  head(key: string): Promise<ArtifactRef | undefined>;
  /** The whole artifact in memory, verified. For large artifacts use getStream or download. */
  get(keyOrRef: string | ArtifactRef): Promise<Buffer>;
  /**
   * A stream of the artifact's bytes. The sha256 is checked at the end: on a mismatch the stream
   * errors with ArtifactIntegrityError instead of ending, so a consumer never mistakes corrupt
   * data for complete data.
   */
  getStream(keyOrRef: string | ArtifactRef): Promise<NodeJS.ReadableStream>;
  /** Copy to a local file; the file appears (renamed into place) only after verification. */
  download(keyOrRef: string | ArtifactRef, path: string): Promise<ArtifactRef>;
  /** Published artifacts whose key starts with `prefix`, sorted by key. */
  list(prefix: string): Promise<ListedArtifact[]>;
  /** Unpublish (manifest first) and delete. Missing keys are fine. */
  delete(key: string): Promise<void>;
}
