import assert from 'node:assert/strict';
import { readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ArtifactNotFoundError } from '../../core/errors';
import { LocalStore } from '../../core/store/local';
import { openStore } from '../../core/store/open';
import { storeContract } from '../support/store-contract';
import { tempDir } from '../support/servers';

describe('LocalStore (file://)', () => {
  let tmp: ReturnType<typeof tempDir>;
  let store: LocalStore;
  before(() => {
    tmp = tempDir('local-store');
    store = new LocalStore(tmp.dir);
  });
  after(() => tmp.remove());

  storeContract({
    store: () => store,
    tamper: async (key, bytes) => writeFileSync(path.join(tmp.dir, key), bytes),
  });

  it('keeps data as plain files (a checkpoint is an ordinary directory) and leaves no temp files', async () => {
    await store.put('ckpt/config.json', '{}');
    assert.deepEqual(readdirSync(path.join(tmp.dir, 'ckpt')), ['config.json']);
    assert.deepEqual(readdirSync(path.join(tmp.dir, '.srlm', 'tmp')), []);
  });

  it('says a published artifact whose data file was deleted by hand is gone, and not to retry', async () => {
    await store.put('gone/result.json', '{}');
    unlinkSync(path.join(tmp.dir, 'gone', 'result.json'));
    await assert.rejects(store.get('gone/result.json'), (err: unknown) => {
      assert.ok(err instanceof ArtifactNotFoundError);
      assert.equal(err.retryable, false);
      assert.match(err.message, /gone\/result\.json does not exist \(its manifest .*gone\/result\.json\.json is published but the data file is gone/);
      return true;
    });
  });

  it('is what openStore gives for file:// URIs and plain paths', () => {
    assert.ok(openStore(`file://${tmp.dir}`) instanceof LocalStore);
    assert.equal(openStore(tmp.dir).rootUri, `file://${tmp.dir}`);
    assert.throws(() => openStore('gs://bucket/x'), /unsupported store URI/);
  });
});
