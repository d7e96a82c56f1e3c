import assert from 'node:assert/strict';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { after, before, describe, it } from 'node:test';
import { StoreUnavailableError } from '../../core/errors';
import { readAll } from '../../core/store/hashing';
import { openStore } from '../../core/store/open';
import { PART_SIZE, S3Store } from '../../core/store/s3';
import { storeContract } from '../support/store-contract';
import { startTestS3, type TestS3 } from '../support/servers';

/** Deterministic pseudo-random bytes (an AES-CTR keystream), produced lazily so 70 MiB never sits in memory twice. */
async function* pseudoRandom(total: number, seed: string, onChunk?: (sent: number) => Promise<void> | void) {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(1 << 20);
  let sent = 0;
  while (sent < total) {
    const n = Math.min(zeros.length, total - sent);
    const block = cipher.update(zeros.subarray(0, n));
    sent += n;
    yield block;
    if (onChunk) await onChunk(sent);
  }
}

async function sha256Of(source: AsyncIterable<Buffer>): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of source) h.update(chunk);
  return h.digest('hex');
}

describe('S3Store against a real S3 server (Versity S3 Gateway)', () => {
  let s3: TestS3;
  let store: S3Store;
  before(async () => {
    s3 = await startTestS3();
    store = new S3Store({ bucket: s3.bucket, prefix: 'artifacts', client: s3.client() });
  });
  after(async () => s3?.stop());

  storeContract({
    store: () => store,
    tamper: async (key, bytes) => {
      await s3.client().send(new PutObjectCommand({ Bucket: s3.bucket, Key: `artifacts/${key}`, Body: bytes }));
    },
  });

  it('uploads ≥ 64 MiB as a multipart upload and reads it back with a matching sha256', async () => {
    const total = 70 * 1024 * 1024;
    const expected = await sha256Of(pseudoRandom(total, 'big'));
    const ref = await store.put('big/model.safetensors', pseudoRandom(total, 'big'));
    assert.equal(ref.bytes, total);
    assert.equal(ref.sha256, expected);
    // It really went up in parts: an S3 multipart ETag ends in -<number of parts>.
    const head = await s3.client().send(new HeadObjectCommand({ Bucket: s3.bucket, Key: 'artifacts/big/model.safetensors' }));
    assert.match(head.ETag ?? '', new RegExp(`-${Math.ceil(total / PART_SIZE)}"?$`));
    assert.equal(head.ContentLength, total);
    const back = await sha256Of((await store.getStream(ref)) as AsyncIterable<Buffer>);
    assert.equal(back, expected);
  });

  it('works through openStore with the standard AWS environment', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      AWS_ACCESS_KEY_ID: s3.accessKey,
      AWS_SECRET_ACCESS_KEY: s3.secretKey,
      AWS_REGION: 'us-east-1',
    });
    try {
      const viaEnv = openStore(`s3://${s3.bucket}/env-prefix`);
      const ref = await viaEnv.put('x/hello.txt', 'hello');
      assert.equal(ref.uri, `s3://${s3.bucket}/env-prefix/x/hello.txt`);
      assert.equal((await readAll(await viaEnv.getStream('x/hello.txt'))).toString(), 'hello');
    } finally {
      process.env = saved;
    }
  });

  it('gives a clear retryable error when the S3 server goes away during an upload, and publishes nothing', async () => {
    const flaky = new S3Store({ bucket: s3.bucket, prefix: 'artifacts', client: s3.client({ maxAttempts: 2 }), queueSize: 1 });
    let killed = false;
    const body = pseudoRandom(64 * 1024 * 1024, 'interrupted', async (sent) => {
      // Stop the server once two parts are on their way.
      if (!killed && sent >= 2 * PART_SIZE + (1 << 20)) {
        killed = true;
        await s3.kill('SIGKILL');
      }
    });
    await assert.rejects(flaky.put('interrupted/model.safetensors', body), (err: unknown) => {
      assert.ok(err instanceof StoreUnavailableError, `expected StoreUnavailableError, got ${String(err)}`);
      assert.equal(err.retryable, true);
      assert.match(err.message, /S3 unavailable while uploading s3:\/\/srlm-test\/artifacts\/interrupted\/model\.safetensors/);
      return true;
    });
    assert.ok(killed, 'the server was stopped during the upload');
    await s3.start();
    assert.equal(await store.head('interrupted/model.safetensors'), undefined);
    assert.deepEqual(await store.list('interrupted/'), []);
    await assert.rejects(
      s3.client().send(new HeadObjectCommand({ Bucket: s3.bucket, Key: 'artifacts/interrupted/model.safetensors' })),
      (err: { name?: string }) => err.name === 'NotFound',
    );
    // After the outage, the same write simply succeeds (what an activity retry does).
    const data = randomBytes(1000);
    const ref = await store.put('interrupted/model.safetensors', data);
    assert.ok((await store.get(ref)).equals(data));
  });
});
