/**
 * The pipeline's artifacts in the store: JSONL datasets (validated row by row on the way in and
 * out, errors naming the artifact's URI, line and field), JSON results, and model directories.
 *
 * A model is its Hugging Face files under a prefix plus `model.json`, an index of their refs
 * written last; the model's reference is the ref of that index. Workers fetch a model into a
 * local cache keyed by the index's sha256 and verify every file on the way.
 */
import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import type { z } from 'zod';
import { DatasetError, readJsonl } from '../data/jsonl';
import { InvalidInputError } from '../errors';
import { ArtifactRef, type ArtifactStore } from '../store/artifact';
import { formatPath } from '../config/load';

/** Rows as JSONL, each validated against the schema before anything is written. */
export async function putJsonl<S extends z.ZodType>(store: ArtifactStore, key: string, rows: readonly unknown[], schema: S): Promise<ArtifactRef> {
  const lines = rows.map((row, i) => {
    const parsed = schema.safeParse(row);
    if (!parsed.success) throw new DatasetError(store.uriFor(key), i + 1, formatPath(parsed.error.issues[0]!.path), parsed.error.issues[0]!.message);
    return `${JSON.stringify(parsed.data)}\n`;
  });
  return store.put(key, Readable.from(lines), { contentType: 'application/x-ndjson' });
}

/** Every row of a JSONL artifact, validated (the store verifies the sha256 as it streams). */
export async function getJsonl<S extends z.ZodType>(store: ArtifactStore, ref: ArtifactRef | string, schema: S): Promise<z.infer<S>[]> {
  const name = typeof ref === 'string' ? store.uriFor(ref) : ref.uri;
  const rows: z.infer<S>[] = [];
  for await (const { row } of readJsonl(await store.getStream(ref), schema, name)) rows.push(row);
  return rows;
}

export async function putJson(store: ArtifactStore, key: string, value: unknown): Promise<ArtifactRef> {
  return store.put(key, `${JSON.stringify(value, null, 2)}\n`, { contentType: 'application/json' });
}

export async function getJson<T>(store: ArtifactStore, ref: ArtifactRef | string): Promise<T> {
  const body = await store.get(ref);
  try {
    return JSON.parse(body.toString('utf8')) as T;
  } catch (err) {
    throw new InvalidInputError(`${typeof ref === 'string' ? store.uriFor(ref) : ref.uri} is not valid JSON: ${(err as Error).message}`);
  }
}

const MODEL_FILES = ['config.json', 'model.safetensors', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json'];

interface ModelIndex {
  kind: 'srlm-model';
  files: Record<string, ArtifactRef>;
}

/** Uploads a model directory under `prefix`; returns the ref of its index. */
export async function putModel(store: ArtifactStore, prefix: string, dir: string): Promise<ArtifactRef> {
  const files: Record<string, ArtifactRef> = {};
  for (const name of MODEL_FILES) {
    const file = path.join(dir, name);
    if (existsSync(file)) files[name] = await store.put(`${prefix}/${name}`, await fs.readFile(file));
  }
  if (!files['config.json'] || !files['model.safetensors']) throw new InvalidInputError(`${dir} is not a model directory (config.json and model.safetensors are required)`);
  return putJson(store, `${prefix}/model.json`, { kind: 'srlm-model', files } satisfies ModelIndex);
}

export function modelCacheDir(): string {
  return process.env.SRLM_MODEL_CACHE ?? path.join(process.env.SRLM_HOME ?? path.join(os.homedir(), '.srlm'), 'cache', 'models');
}

/**
 * Downloads the files of the model whose index is `index` (a ref, or the index's key) into `dir`,
 * each verified against the sha256 its index records; returns the index's file refs by name.
 */
export async function downloadModelFiles(store: ArtifactStore, index: ArtifactRef | string, dir: string): Promise<Record<string, ArtifactRef>> {
  const name = typeof index === 'string' ? store.uriFor(index) : index.uri;
  const parsed = await getJson<ModelIndex>(store, index);
  if (parsed?.kind !== 'srlm-model' || typeof parsed.files !== 'object') throw new InvalidInputError(`${name} is not a model index`);
  await fs.mkdir(dir, { recursive: true });
  for (const [file, fileRef] of Object.entries(parsed.files)) {
    if (!/^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(file)) throw new InvalidInputError(`${name} names a file ${JSON.stringify(file)} that is not a plain file name`);
    if (!ArtifactRef.safeParse(fileRef).success) throw new InvalidInputError(`${name}: files.${file} is not an artifact reference`);
    await store.download(fileRef, path.join(dir, file));
  }
  return parsed.files;
}

/** A local directory holding the model `ref` names, fetched (and verified) once per worker machine. */
export async function fetchModel(store: ArtifactStore, ref: ArtifactRef): Promise<string> {
  const dir = path.join(modelCacheDir(), ref.sha256);
  if (existsSync(path.join(dir, '.complete'))) return dir;
  const partial = `${dir}.partial-${process.pid}`;
  await fs.rm(partial, { recursive: true, force: true });
  await downloadModelFiles(store, ref, partial);
  await fs.writeFile(path.join(partial, '.complete'), ref.uri);
  await fs.rm(dir, { recursive: true, force: true });
  await fs.rename(partial, dir);
  return dir;
}
