import { createHash, type Hash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { ArtifactIntegrityError } from '../errors';
import type { Body } from './artifact';

/** A pass-through stream that hashes and counts what flows through it. */
export class HashingStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  bytes = 0;
  private digestValue: string | undefined;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    done(null, chunk);
  }

  digest(): string {
    this.digestValue ??= this.hash.digest('hex');
    return this.digestValue;
  }
}

/**
 * A pass-through stream that verifies the sha256 of everything that passed once the source ends.
 * On a mismatch it errors instead of ending.
 */
export class VerifyingStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  constructor(
    private readonly uri: string,
    private readonly expected: string,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    done(null, chunk);
  }
  override _flush(done: TransformCallback): void {
    const actual = this.hash.digest('hex');
    done(actual === this.expected ? null : new ArtifactIntegrityError(this.uri, this.expected, actual));
  }
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function toReadable(body: Body): Readable {
  if (typeof body === 'string' || body instanceof Uint8Array) return Readable.from([Buffer.from(body)]);
  if (body instanceof Readable) return body;
  return Readable.from(body as AsyncIterable<Uint8Array>);
}

export async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer | string>) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}
