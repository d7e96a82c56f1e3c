/**
 * JSONL read line by line and written row by row (streams, so large files never sit in memory
 * whole), each row validated by a zod schema; a bad row is an error naming the file, the line and
 * the field.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { z } from 'zod';
import { InvalidInputError } from '../errors';
import { formatPath } from '../config/load';

export class DatasetError extends InvalidInputError {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly field: string,
    problem: string,
  ) {
    super(`${file}:${line}: ${field ? `${field}: ` : ''}${problem}`);
  }
}

/** Rows of a JSONL file, or of a stream (stdin) named `name` in errors. */
export async function* readJsonl<S extends z.ZodType>(source: string | NodeJS.ReadableStream, schema: S, name = typeof source === 'string' ? source : 'stream'): AsyncGenerator<{ line: number; row: z.infer<S> }> {
  let stream: NodeJS.ReadableStream;
  if (typeof source === 'string') {
    const file = createReadStream(source, { encoding: 'utf8' });
    await new Promise<void>((resolve, reject) => {
      file.once('open', () => resolve());
      file.once('error', (err) => reject(new InvalidInputError(`cannot read ${source}: ${err.message}`)));
    });
    stream = file;
  } else stream = source;
  const file = name;
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let n = 0;
  for await (const text of lines) {
    n++;
    if (text.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new DatasetError(file, n, '', `not valid JSON (${(err as Error).message})`);
    }
    yield { line: n, row: parseRow(schema, value, file, n) };
  }
}

/** The first problem of a failed parse: the field's path (`a.b[2].c`, '' for the row itself) and what is wrong. */
export function describeIssue(error: z.ZodError, prefix: readonly PropertyKey[] = []): { field: string; problem: string } {
  const issue = error.issues[0]!;
  if (issue.code === 'unrecognized_keys') return { field: formatPath([...prefix, ...issue.path, issue.keys[0]!]), problem: 'unknown field' };
  return { field: formatPath([...prefix, ...issue.path]), problem: issue.message };
}

/** `value` checked against `schema`; a DatasetError at `file:line` if it does not fit. `prefix` goes before the field's path. */
export function parseRow<S extends z.ZodType>(schema: S, value: unknown, file: string, line: number, prefix: readonly PropertyKey[] = []): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const { field, problem } = describeIssue(parsed.error, prefix);
  throw new DatasetError(file, line, field, problem);
}

/**
 * Writes `rows` as JSONL, one JSON value per line, each checked against `schema` when given (a bad
 * row is a DatasetError naming the row number, which is its line in the file, and the field).
 * Rows go to `file + '.tmp'`, which is flushed to disk and renamed to `file` only once every row
 * is written; on failure it is removed and `file` is left as it was. Returns the number of rows.
 */
export async function writeJsonl(file: string, rows: AsyncIterable<unknown> | Iterable<unknown>, schema?: z.ZodType): Promise<number> {
  const tmp = `${file}.tmp`;
  let n = 0;
  async function* lines(): AsyncGenerator<string> {
    for await (const row of rows) {
      n++;
      const value = schema ? parseRow(schema, row, file, n) : row;
      let json: string | undefined;
      try {
        json = JSON.stringify(value);
      } catch (err) {
        throw new DatasetError(file, n, '', `cannot be written as JSON (${(err as Error).message})`);
      }
      if (json === undefined) throw new DatasetError(file, n, '', `cannot be written as JSON (${typeof value})`);
      yield `${json}\n`;
    }
  }
  try {
    // pipeline waits for 'drain' when the file falls behind, so a fast source never piles up in memory.
    await pipeline(Readable.from(lines()), createWriteStream(tmp, { encoding: 'utf8', flush: true }));
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return n;
}

export async function readAllJsonl<S extends z.ZodType>(file: string, schema: S): Promise<z.infer<S>[]> {
  const rows: z.infer<S>[] = [];
  for await (const { row } of readJsonl(file, schema)) rows.push(row);
  return rows;
}
