import { randomUUID } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ArtifactIntegrityError, ArtifactNotFoundError } from '../errors';
import type { ArtifactRef, ArtifactStore, Body, ListedArtifact, PutOptions } from './artifact';
import { VerifyingStream, readAll } from './hashing';
import { validateKey } from './keys';

/**
 * The read path both stores share: find the published manifest, check a caller's reference
 * against it, stream the data through a sha256 check, and only ever rename a download into place
 * after it verified. Implementations supply where manifests and data live.
 */
export abstract class VerifiedReadStore implements ArtifactStore {
  abstract readonly rootUri: string;
  abstract uriFor(key: string): string;
  abstract keyFor(uri: string): string;
  abstract put(key: string, body: Body, options?: PutOptions): Promise<ArtifactRef>;
  abstract head(key: string): Promise<ArtifactRef | undefined>;
  abstract list(prefix: string): Promise<ListedArtifact[]>;
  abstract delete(key: string): Promise<void>;
  /** The raw bytes of a published artifact; errors on the stream are already the store's errors. */
  protected abstract openData(key: string, ref: ArtifactRef): Promise<NodeJS.ReadableStream>;

  protected async resolve(keyOrRef: string | ArtifactRef): Promise<{ key: string; ref: ArtifactRef }> {
    const key = typeof keyOrRef === 'string' ? validateKey(keyOrRef) : this.keyFor(keyOrRef.uri);
    const ref = await this.head(key);
    if (!ref) throw new ArtifactNotFoundError(this.uriFor(key));
    // A reference names the exact bytes it was made for: a republished artifact is not the same one.
    if (typeof keyOrRef !== 'string' && keyOrRef.sha256 !== ref.sha256) {
      throw new ArtifactIntegrityError(keyOrRef.uri, keyOrRef.sha256, ref.sha256);
    }
    return { key, ref };
  }

  async getStream(keyOrRef: string | ArtifactRef): Promise<NodeJS.ReadableStream> {
    const { key, ref } = await this.resolve(keyOrRef);
    const source = await this.openData(key, ref);
    const verify = new VerifyingStream(ref.uri, ref.sha256);
    source.on('error', (err: Error) => verify.destroy(err));
    return source.pipe(verify);
  }

  async get(keyOrRef: string | ArtifactRef): Promise<Buffer> {
    return readAll(await this.getStream(keyOrRef));
  }

  async download(keyOrRef: string | ArtifactRef, dest: string): Promise<ArtifactRef> {
    const { ref } = await this.resolve(keyOrRef);
    const tmp = `${dest}.partial-${randomUUID()}`;
    await fs.mkdir(path.dirname(path.resolve(dest)), { recursive: true });
    try {
      await pipeline(await this.getStream(ref), createWriteStream(tmp));
      await fs.rename(tmp, dest);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
    return ref;
  }
}
