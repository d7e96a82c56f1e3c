import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tempDir } from '../support/servers';

const SRLM = path.join(__dirname, '..', '..', 'cli', 'srlm.js');
const FIX = path.join(__dirname, '..', '..', '..', 'tests', 'fixtures');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function srlm(args: string[], options: { killOn?: RegExp } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SRLM, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let killed = false;
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      if (options.killOn && !killed && options.killOn.test(stderr)) {
        killed = true;
        child.kill('SIGTERM');
      }
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('srlm model and srlm train sft', () => {
  let tmp: ReturnType<typeof tempDir>;
  before(() => (tmp = tempDir('cli-model')));
  after(() => tmp.remove());

  it('prints logits and greedy continuations that match the transformers fixtures', async () => {
    const expected = JSON.parse(readFileSync(path.join(FIX, 'hf', 'gpt2', 'expected.json'), 'utf8')) as { greedy_cases: { input_ids: number[][]; new_tokens: number[][] }[]; logits_cases: { input_ids: number[][]; logits: number[][][] }[] };
    const g = expected.greedy_cases[0]!;
    const r = await srlm(['model', 'generate', '--model', path.join(FIX, 'hf', 'gpt2'), '--ids', g.input_ids[0]!.join(','), '--max-new-tokens', String(g.new_tokens[0]!.length), '--greedy', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(out.newIds, g.new_tokens[0]);
    assert.deepEqual(out.ids, [...g.input_ids[0]!, ...g.new_tokens[0]!]);
    const noCache = JSON.parse((await srlm(['model', 'generate', '--model', path.join(FIX, 'hf', 'gpt2'), '--ids', g.input_ids[0]!.join(','), '--max-new-tokens', String(g.new_tokens[0]!.length), '--greedy', '--no-cache', '--json'])).stdout);
    assert.deepEqual(noCache.newIds, g.new_tokens[0]);

    const c = expected.logits_cases[0]!;
    const l = await srlm(['model', 'logits', '--model', path.join(FIX, 'hf', 'gpt2'), '--ids', c.input_ids[0]!.join(',')]);
    assert.equal(l.code, 0, l.stderr);
    const logits = JSON.parse(l.stdout).logits as number[][];
    const diff = Math.max(...logits.flatMap((row, t) => row.map((v, k) => Math.abs(v - c.logits[0]![t]![k]!))));
    assert.ok(diff < 1e-4, `max diff ${diff}`);
  });

  it('rejects bad ids and a bad dataset row with the file, line and field', async () => {
    const bad = await srlm(['model', 'logits', '--model', path.join(FIX, 'hf', 'gpt2'), '--ids', '1,x']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--ids 1,x: expected comma-separated token ids/);
    const model = path.join(tmp.dir, 'init-for-bad');
    assert.equal((await srlm(['model', 'init', '--config', path.join(FIX, 'sft', 'tiny-llama-config.json'), '--tokenizer', 'bytes', '--out', model])).code, 0);
    const r = await srlm(['train', 'sft', '--model', model, '--data', path.join(FIX, 'sft', 'bad-row.jsonl'), '--out', path.join(tmp.dir, 'never')]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /bad-row\.jsonl:4: /);
  });

  it('initialises a model, trains it, survives SIGTERM and resumes from its saved state', async () => {
    const base = path.join(tmp.dir, 'm0');
    const init = await srlm(['model', 'init', '--config', path.join(FIX, 'sft', 'tiny-llama-config.json'), '--tokenizer', 'bytes', '--out', base, '--seed', '1']);
    assert.equal(init.code, 0, init.stderr);
    assert.equal(JSON.parse(init.stdout).family, 'llama');
    const out = path.join(tmp.dir, 'm1');
    const args = ['train', 'sft', '--model', base, '--data', path.join(FIX, 'sft', 'reverse.jsonl'), '--out', out, '--lr', '3e-3', '--lr-end', '3e-4',
      '--batch-size', '8', '--max-steps', '40', '--max-seq-len', '64', '--dropout', '0', '--checkpoint-every-steps', '1000', '--json'];
    // Stopped with SIGTERM after step 10 is reported: it saves its state and exits 130.
    const first = await srlm(args, { killOn: /step 10\/40/ });
    assert.equal(first.code, 130, first.stderr);
    assert.match(first.stderr, /saving training state/);
    assert.equal(existsSync(path.join(out, 'model.safetensors')), false);
    const second = await srlm(args);
    assert.equal(second.code, 0, second.stderr);
    const summary = JSON.parse(second.stdout);
    assert.ok(summary.resumedFrom >= 10, `resumed from ${summary.resumedFrom}`);
    assert.equal(summary.steps, 40);
    assert.ok(summary.finalLoss < summary.firstLoss || summary.finalLoss < 1.5, `loss ${summary.firstLoss} → ${summary.finalLoss}`);
    assert.ok(existsSync(path.join(out, 'tokenizer.json')));
    const gen = await srlm(['model', 'generate', '--model', out, '--prompt', '### Instruction:\nReverse: cat dog sun\n\n### Response:\n', '--max-new-tokens', '12', '--greedy', '--json']);
    assert.equal(gen.code, 0, gen.stderr);
    assert.equal(typeof JSON.parse(gen.stdout).text, 'string');
  });
});
