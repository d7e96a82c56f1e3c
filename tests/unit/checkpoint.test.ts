import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../core/compute/backend';
import { InvalidInputError } from '../../core/errors';
import { loadCheckpoint, saveCheckpoint } from '../../core/model/checkpoint';
import { positionsFromMask, type DecoderModel } from '../../core/model/decoder';
import { generate } from '../../core/model/generate';
import { readSafetensors, writeSafetensors } from '../../core/model/safetensors';
import { fixtureDir, HF_FIXTURES } from '../support/hf-fixtures';
import { tempDir } from '../support/servers';

function logitsOf(model: DecoderModel, rows: number[][]): number[][][] {
  return tf.tidy(() => {
    const ids = tf.tensor2d(rows, undefined, 'int32');
    const mask = tf.onesLike(ids) as tf.Tensor2D;
    const { logits } = model.forward(ids, positionsFromMask(mask), mask);
    return logits.arraySync();
  });
}

const ROWS = [[3, 17, 42, 5, 9, 60, 1, 88]];

describe('Hugging Face checkpoints', () => {
  let tmp: ReturnType<typeof tempDir>;
  before(async () => {
    await initBackend(undefined, () => undefined);
    tmp = tempDir('ckpt');
  });
  after(() => tmp.remove());

  for (const name of ['llama-gqa', 'llama-tied', 'gpt2']) {
    it(`${name}: save then load gives identical float32 weights and logits; bf16 stays close`, async () => {
      const original = loadCheckpoint(fixtureDir(name));
      const dir = path.join(tmp.dir, name);
      await saveCheckpoint(original.model, dir, { metadata: { backend: tf.getBackend() } });
      const again = loadCheckpoint(dir);
      assert.deepEqual(logitsOf(again.model, ROWS), logitsOf(original.model, ROWS));
      const config = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
      assert.equal(config.architectures[0], name === 'gpt2' ? 'GPT2LMHeadModel' : 'LlamaForCausalLM');
      const names = [...readSafetensors(readFileSync(path.join(dir, 'model.safetensors')), 'x').tensors.keys()];
      const theirs = [...readSafetensors(readFileSync(path.join(fixtureDir(name), 'model.safetensors')), 'x').tensors.keys()];
      assert.deepEqual(names.sort(), theirs.sort(), 'the same tensor names transformers writes');

      const bfDir = path.join(tmp.dir, `${name}-bf16`);
      await saveCheckpoint(original.model, bfDir, { dtype: 'bfloat16' });
      const bf = loadCheckpoint(bfDir);
      assert.equal(bf.storedDtype, 'BF16');
      const a = logitsOf(bf.model, ROWS).flat(2);
      const b = logitsOf(original.model, ROWS).flat(2);
      const diff = Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
      assert.ok(diff < 0.2 && diff > 0, `bf16 logits differ by ${diff}`);
      for (const m of [original.model, again.model, bf.model]) m.dispose();
    });
  }

  it('loads a directory without tokenizer.json, and carries tokenizer.json when present', async () => {
    const bare = loadCheckpoint(fixtureDir('gpt2'));
    assert.equal(bare.tokenizerJson, undefined);
    const dir = path.join(tmp.dir, 'with-tokenizer');
    const tokenizerJson = readFileSync(path.join(HF_FIXTURES, 'tokenizer', 'tokenizer.json'), 'utf8');
    await saveCheckpoint(bare.model, dir, { tokenizerJson });
    assert.equal(loadCheckpoint(dir).tokenizerJson, tokenizerJson);
    bare.model.dispose();
  });

  function brokenCopy(mutate: (tensors: Map<string, { shape: number[]; data: Float32Array }>) => void): string {
    const dir = path.join(tmp.dir, `broken-${Math.random().toString(36).slice(2)}`);
    mkdirSync(dir);
    copyFileSync(path.join(fixtureDir('llama-gqa'), 'config.json'), path.join(dir, 'config.json'));
    const { tensors } = readSafetensors(readFileSync(path.join(fixtureDir('llama-gqa'), 'model.safetensors')), 'x');
    mutate(tensors);
    writeFileSync(path.join(dir, 'model.safetensors'), writeSafetensors(tensors, 'F32'));
    return dir;
  }

  it('names a missing, an extra and a misshapen tensor', () => {
    const missing = brokenCopy((t) => t.delete('model.layers.1.mlp.up_proj.weight'));
    assert.throws(() => loadCheckpoint(missing), (e: unknown) => e instanceof InvalidInputError && /missing tensor model\.layers\.1\.mlp\.up_proj\.weight \[80,32\]/.test(e.message));
    const extra = brokenCopy((t) => t.set('model.layers.0.self_attn.q_norm.weight', { shape: [8], data: new Float32Array(8) }));
    assert.throws(() => loadCheckpoint(extra), /unexpected tensor model\.layers\.0\.self_attn\.q_norm\.weight/);
    const misshapen = brokenCopy((t) => t.set('model.norm.weight', { shape: [16], data: new Float32Array(16) }));
    assert.throws(() => loadCheckpoint(misshapen), /tensor model\.norm\.weight has shape \[16\], expected \[32\]/);
  });

  it('rejects a directory without config.json and a corrupt safetensors file', () => {
    assert.throws(() => loadCheckpoint(tmp.dir), /has no config\.json/);
    const dir = path.join(tmp.dir, 'corrupt');
    mkdirSync(dir);
    copyFileSync(path.join(fixtureDir('gpt2'), 'config.json'), path.join(dir, 'config.json'));
    writeFileSync(path.join(dir, 'model.safetensors'), Buffer.from([200, 0, 0, 0, 0, 0, 0, 0, 123]));
    assert.throws(() => loadCheckpoint(dir), /model\.safetensors: not a valid safetensors file: header length 200 exceeds the file/);
  });

  it('keeps the tensor count flat over 100 generation calls', async () => {
    const { model } = loadCheckpoint(fixtureDir('llama-gqa'));
    await generate(model, [[1, 2, 3]], { maxNewTokens: 4, greedy: true });
    const before = tf.memory().numTensors;
    for (let i = 0; i < 100; i++) {
      await generate(model, [[1, 2, 3], [7]], { maxNewTokens: 4, greedy: i % 2 === 0, temperature: 0.7, topP: 0.9, rng: new (await import('../../core/random.js')).Rng(i) });
    }
    assert.equal(tf.memory().numTensors, before);
    model.dispose();
  });
});
