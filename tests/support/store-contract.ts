/**
 * The behaviour every ArtifactStore must have, run against the local directory store and the
 * real S3 server alike, so the two implementations cannot drift apart.
 */
import assert from 'node:assert/strict';
import { randomBytes, createHash } from 'node:crypto';
import { readFileSync, existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { it } from 'node:test';
import { ArtifactIntegrityError, ArtifactNotFoundError, InvalidInputError } from '../../core/errors';
import type { ArtifactStore } from '../../core/store/artifact';
import { readAll } from '../../core/store/hashing';

export interface ContractHooks {
  store: () => ArtifactStore;
  /** Overwrite an artifact's stored bytes behind the store's back (a disk or bucket corrupted). */
  tamper: (key: string, bytes: Buffer) => Promise<void>;
}

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

export function storeContract(hooks: ContractHooks): void {
  it('puts, heads, gets and lists artifacts with their sha256', async () => {
    const store = hooks.store();
    const a = await store.put('runs/r1/a.txt', 'alpha\n');
    const b = await store.put('runs/r1/sub/b.bin', randomBytes(1000));
    await store.put('runs/r2/c.txt', 'gamma');
    assert.equal(a.sha256, sha('alpha\n'));
    assert.equal(a.bytes, 6);
    assert.equal(a.uri, store.uriFor('runs/r1/a.txt'));
    assert.deepEqual(await store.head('runs/r1/a.txt'), a);
    assert.equal((await store.get('runs/r1/a.txt')).toString(), 'alpha\n');
    assert.equal((await store.get(a)).toString(), 'alpha\n');
    const listed = await store.list('runs/r1/');
    assert.deepEqual(listed.map((l) => l.key), ['runs/r1/a.txt', 'runs/r1/sub/b.bin']);
    assert.equal(listed[1]!.sha256, b.sha256);
    assert.deepEqual((await store.list('runs/')).map((l) => l.key), ['runs/r1/a.txt', 'runs/r1/sub/b.bin', 'runs/r2/c.txt']);
    assert.deepEqual(await store.list('nothing-here/'), []);
    assert.equal(store.keyFor(a.uri), 'runs/r1/a.txt');
  });

  it('streams a body in and out, hashing on the way', async () => {
    const store = hooks.store();
    const chunks = Array.from({ length: 50 }, (_, i) => Buffer.alloc(10_000, i));
    const ref = await store.put('stream/data.bin', Readable.from(chunks));
    const whole = Buffer.concat(chunks);
    assert.equal(ref.bytes, whole.length);
    assert.equal(ref.sha256, sha(whole));
    const back = await readAll(await store.getStream(ref));
    assert.ok(back.equals(whole));
  });

  it('overwrites a key with new content and a new sha256', async () => {
    const store = hooks.store();
    const first = await store.put('over/x.json', '{"v":1}');
    const second = await store.put('over/x.json', '{"v":2}');
    assert.notEqual(first.sha256, second.sha256);
    assert.equal((await store.get('over/x.json')).toString(), '{"v":2}');
    // A reference to the old bytes no longer matches what is published: an error, not silent new data.
    await assert.rejects(store.get(first), ArtifactIntegrityError);
  });

  it('detects a tampered artifact on read and names it', async () => {
    const store = hooks.store();
    const ref = await store.put('tamper/model.safetensors', randomBytes(4096));
    await hooks.tamper('tamper/model.safetensors', randomBytes(4096));
    await assert.rejects(store.get('tamper/model.safetensors'), (err: unknown) => {
      assert.ok(err instanceof ArtifactIntegrityError);
      assert.match(err.message, /tamper\/model\.safetensors/);
      assert.equal(err.expected, ref.sha256);
      return true;
    });
    // download() must not leave the corrupt file in place either.
    const dest = path.join(os.tmpdir(), `srlm-dl-${randomBytes(4).toString('hex')}`);
    await assert.rejects(store.download('tamper/model.safetensors', dest), ArtifactIntegrityError);
    assert.equal(existsSync(dest), false);
  });

  it('downloads a verified artifact to a file', async () => {
    const store = hooks.store();
    const data = randomBytes(100_000);
    await store.put('dl/blob.bin', data);
    const dest = path.join(os.tmpdir(), `srlm-dl-${randomBytes(4).toString('hex')}`, 'blob.bin');
    const ref = await store.download('dl/blob.bin', dest);
    assert.ok(readFileSync(dest).equals(data));
    assert.equal(ref.sha256, sha(data));
  });

  it('rejects keys that could escape the store', async () => {
    const store = hooks.store();
    for (const bad of ['../x', 'a/../../x', '/etc/passwd', 'a//b', 'a/./b', '.srlm/manifests/x', 'a\\b', '', 'dir/', 'a/..']) {
      await assert.rejects(store.put(bad, 'x'), InvalidInputError, `put ${JSON.stringify(bad)}`);
      await assert.rejects(store.get(bad), InvalidInputError, `get ${JSON.stringify(bad)}`);
    }
    await assert.rejects(store.list('../'), InvalidInputError);
    assert.throws(() => store.keyFor(`${store.rootUri}/../outside`), InvalidInputError);
    assert.throws(() => store.keyFor('s3://other-bucket/x'), InvalidInputError);
  });

  it('reports a missing artifact as not found, and delete unpublishes', async () => {
    const store = hooks.store();
    await assert.rejects(store.get('missing/x'), ArtifactNotFoundError);
    assert.equal(await store.head('missing/x'), undefined);
    await store.put('del/x', 'bye');
    await store.delete('del/x');
    assert.equal(await store.head('del/x'), undefined);
    assert.deepEqual(await store.list('del/'), []);
  });

  it('publishes nothing when the body fails half way', async () => {
    const store = hooks.store();
    async function* failing() {
      yield Buffer.alloc(1024, 1);
      throw new Error('source broke');
    }
    await assert.rejects(store.put('half/x.bin', failing()), /source broke/);
    assert.equal(await store.head('half/x.bin'), undefined);
    assert.deepEqual(await store.list('half/'), []);
    await assert.rejects(store.get('half/x.bin'), ArtifactNotFoundError);
  });
}
