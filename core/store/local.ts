import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ArtifactNotFoundError, InvalidInputError, StoreUnavailableError } from '../errors';
import {
  ArtifactManifest,
  type ArtifactRef,
  type Body,
  type ListedArtifact,
  type PutOptions,
} from './artifact';
import { HashingStream, toReadable } from './hashing';
import { validateKey, validatePrefix } from './keys';
import { VerifiedReadStore } from './verified-reads';

const META = '.srlm';

/**
 * The embedded default store: a directory on local disk.
 *
 * Layout: `<root>/<key>` holds the data (so a checkpoint directory is an ordinary Hugging Face
 * directory on disk), `<root>/.srlm/manifests/<key>.json` its manifest. Writes go to
 * `<root>/.srlm/tmp/` and are renamed into place (rename is atomic within a file system); the
 * manifest is renamed into place after the data, so a manifest always has its data.
 */
export class LocalStore extends VerifiedReadStore {
  readonly rootUri: string;
  private readonly root: string;

  constructor(root: string) {
    super();
    this.root = path.resolve(root);
    this.rootUri = pathToFileURL(this.root).href;
  }

  uriFor(key: string): string {
    return pathToFileURL(path.join(this.root, validateKey(key))).href;
  }

  keyFor(uri: string): string {
    if (!uri.startsWith('file:')) throw new InvalidInputError(`${uri} is not a file:// URI of the store ${this.rootUri}`);
    const rel = path.relative(this.root, fileURLToPath(uri));
    if (rel.startsWith('..') || path.isAbsolute(rel)) {
      throw new InvalidInputError(`${uri} is outside the store ${this.rootUri}`);
    }
    return validateKey(rel.split(path.sep).join('/'));
  }

  private dataPath(key: string): string {
    return path.join(this.root, validateKey(key));
  }

  private manifestPath(key: string): string {
    return path.join(this.root, META, 'manifests', `${validateKey(key)}.json`);
  }

  private async tmpPath(): Promise<string> {
    const dir = path.join(this.root, META, 'tmp');
    await fs.mkdir(dir, { recursive: true });
    return path.join(dir, randomUUID());
  }

  async put(key: string, body: Body, options: PutOptions = {}): Promise<ArtifactRef> {
    const dataPath = this.dataPath(key);
    const manifestPath = this.manifestPath(key);
    const tmpData = await this.tmpPath();
    const hasher = new HashingStream();
    const out = createWriteStream(tmpData);
    try {
      await pipeline(toReadable(body), hasher, out);
      const handle = await fs.open(tmpData, 'r');
      try {
        await handle.sync(); // the rename below must not publish data that a crash could lose
      } finally {
        await handle.close();
      }
      await fs.mkdir(path.dirname(dataPath), { recursive: true });
      // Unpublish first: during an overwrite nobody may pair the old manifest with new data.
      await fs.rm(manifestPath, { force: true });
      await fs.rename(tmpData, dataPath);
    } catch (err) {
      // A body that fails before the temp file is open leaves the open pending: wait until the
      // stream has closed (the file exists by then) or the file would appear after the rm.
      if (!out.closed) await new Promise<void>((resolve) => out.once('close', () => resolve()));
      await fs.rm(tmpData, { force: true });
      throw wrapFsError(err, this.uriFor(key));
    }
    const manifest: ArtifactManifest = {
      key,
      sha256: hasher.digest(),
      bytes: hasher.bytes,
      createdAt: new Date().toISOString(),
      ...(options.contentType ? { contentType: options.contentType } : {}),
    };
    const tmpManifest = await this.tmpPath();
    await fs.writeFile(tmpManifest, JSON.stringify(manifest));
    await fs.mkdir(path.dirname(manifestPath), { recursive: true });
    await fs.rename(tmpManifest, manifestPath);
    return { uri: this.uriFor(key), sha256: manifest.sha256, bytes: manifest.bytes };
  }

  private async manifest(key: string): Promise<ArtifactManifest | undefined> {
    let text: string;
    try {
      text = await fs.readFile(this.manifestPath(key), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      throw wrapFsError(err, this.uriFor(key));
    }
    return ArtifactManifest.parse(JSON.parse(text));
  }

  async head(key: string): Promise<ArtifactRef | undefined> {
    const m = await this.manifest(key);
    return m && { uri: this.uriFor(key), sha256: m.sha256, bytes: m.bytes };
  }

  protected async openData(key: string, ref: ArtifactRef): Promise<NodeJS.ReadableStream> {
    const source = createReadStream(this.dataPath(key));
    const wrapped = new PassThrough();
    // A published manifest without its data file: someone deleted files under the store by hand.
    // Retrying cannot bring them back, so say what is wrong instead of failing as a busy disk would.
    source.on('error', (err) =>
      wrapped.destroy(
        (err as NodeJS.ErrnoException).code === 'ENOENT'
          ? new ArtifactNotFoundError(ref.uri, `its manifest ${this.manifestPath(key)} is published but the data file is gone; delete that manifest too, or use a new run ID`)
          : wrapFsError(err, ref.uri),
      ),
    );
    return source.pipe(wrapped);
  }

  async list(prefix: string): Promise<ListedArtifact[]> {
    validatePrefix(prefix);
    const base = path.join(this.root, META, 'manifests');
    const out: ListedArtifact[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      for (const entry of entries) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) await walk(full);
        else if (entry.name.endsWith('.json')) {
          const key = path.relative(base, full).split(path.sep).join('/').slice(0, -'.json'.length);
          if (!key.startsWith(prefix)) continue;
          const m = await this.manifest(key);
          if (m) out.push({ key, uri: this.uriFor(key), sha256: m.sha256, bytes: m.bytes });
        }
      }
    };
    await walk(base);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    await fs.rm(this.manifestPath(key), { force: true });
    await fs.rm(this.dataPath(key), { force: true });
  }
}

function wrapFsError(err: unknown, uri: string): Error {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  // A full or read-only disk, or too many open files, may clear up; a bad path will not.
  if (code === 'ENOSPC' || code === 'EMFILE' || code === 'EIO' || code === 'EBUSY' || code === 'EAGAIN') {
    return new StoreUnavailableError(`local store unavailable while accessing ${uri}: ${(err as Error).message}`, { cause: err });
  }
  return err instanceof Error ? err : new Error(String(err));
}
