import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidInputError } from '../../core/errors';
import { validateKey, validatePrefix, validateRunId } from '../../core/store/keys';

describe('artifact keys and run IDs', () => {
  it('accepts ordinary relative keys', () => {
    for (const key of ['a', 'runs/r1/iteration-2/pairs.jsonl', 'ckpt/model.safetensors', 'x/y=1/z@2,3+4']) {
      assert.equal(validateKey(key), key);
    }
  });

  it('rejects traversal, absolute paths and reserved names', () => {
    const bad = ['', '/abs', '..', '../x', 'a/../b', 'a/./b', 'a//b', 'a/', '.hidden', 'a/.srlm/x', 'a\\b', 'a b', 'a\nb', 'é', 'x'.repeat(800)];
    for (const key of bad) assert.throws(() => validateKey(key), InvalidInputError, JSON.stringify(key));
  });

  it('validates prefixes', () => {
    assert.equal(validatePrefix(''), '');
    assert.equal(validatePrefix('runs/'), 'runs/');
    assert.throws(() => validatePrefix('../'), InvalidInputError);
  });

  it('validates run IDs', () => {
    assert.equal(validateRunId('tiny-s0-abc123'), 'tiny-s0-abc123');
    for (const id of ['', '-x', 'a/b', '../x', 'a..b', 'x'.repeat(101), 'a b']) {
      assert.throws(() => validateRunId(id), InvalidInputError, JSON.stringify(id));
    }
  });
});
