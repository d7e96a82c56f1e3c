/**
 * JSONL read line by line (streams, so large files never sit in memory whole), each row validated
 * by a zod schema; a bad row is an error naming the file, the line and the field.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
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
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const field = issue.code === 'unrecognized_keys' ? formatPath([...issue.path, issue.keys[0]!]) : formatPath(issue.path);
      throw new DatasetError(file, n, field, issue.code === 'unrecognized_keys' ? 'unknown field' : issue.message);
    }
    yield { line: n, row: parsed.data };
  }
}

export async function readAllJsonl<S extends z.ZodType>(file: string, schema: S): Promise<z.infer<S>[]> {
  const rows: z.infer<S>[] = [];
  for await (const { row } of readJsonl(file, schema)) rows.push(row);
  return rows;
}
