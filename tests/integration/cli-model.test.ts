import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HeadToHeadRow } from '../../core/data/rows';
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

  it('trains DPO on text pairs from the SFT model, then compares the two head-to-head and evaluates the judge', async () => {
    const m1 = path.join(tmp.dir, 'm1'); // written by the test above
    const words = ['cat', 'dog', 'sun', 'sea', 'map', 'pen', 'cup', 'box'];
    const pairs = words.map((w, i) => {
      const items = [w, words[(i + 1) % 8]!, words[(i + 3) % 8]!];
      return { promptId: `p${i}`, instruction: `Reverse: ${items.join(' ')}`, chosen: [...items].reverse().join(' '), rejected: items.join(' '), chosenScore: 5, rejectedScore: 1 };
    });
    const pairsFile = path.join(tmp.dir, 'pairs.jsonl');
    writeFileSync(pairsFile, pairs.map((p) => JSON.stringify(p)).join('\n'));
    const m2 = path.join(tmp.dir, 'm2');
    const dpo = await srlm(['train', 'dpo', '--model', m1, '--pairs', pairsFile, '--out', m2, '--lr', '1e-3', '--lr-end', '1e-4', '--batch-size', '4', '--max-steps', '12', '--dropout', '0', '--json']);
    assert.equal(dpo.code, 0, dpo.stderr);
    const summary = JSON.parse(dpo.stdout);
    assert.equal(summary.pairs, 8);
    assert.equal(summary.steps, 12);
    assert.ok(summary.final['rewards/margins'] > summary.first['rewards/margins'], JSON.stringify([summary.first, summary.final]));
    assert.match(dpo.stderr, /rewards\/accuracies/);
    assert.ok(existsSync(path.join(m2, 'tokenizer_config.json')));

    const bad = path.join(tmp.dir, 'pairs-bad.jsonl');
    writeFileSync(bad, `${JSON.stringify(pairs[0])}\n${JSON.stringify({ ...pairs[1], chosenScore: 'high' })}\n`);
    const refused = await srlm(['train', 'dpo', '--model', m1, '--pairs', bad, '--out', path.join(tmp.dir, 'never')]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /pairs-bad\.jsonl:2: chosenScore: /);

    const promptsFile = path.join(tmp.dir, 'prompts.jsonl');
    writeFileSync(promptsFile, pairs.slice(0, 4).map((p) => JSON.stringify({ instruction: p.instruction })).join('\n'));
    const out = path.join(tmp.dir, 'h2h.jsonl');
    const h2h = await srlm(['eval', 'head-to-head', '--a', m2, '--b', m1, '--prompts', promptsFile, '--judge', 'self', '--samples', '1', '--max-new-tokens', '12', '--judge-max-new-tokens', '8', '--out', out, '--json']);
    assert.equal(h2h.code, 0, h2h.stderr);
    const r = JSON.parse(h2h.stdout);
    assert.equal(r.n, 4);
    assert.equal(r.wins + r.ties + r.losses, 4);
    assert.equal(r.winRate, (r.wins + r.ties / 2) / 4);
    assert.ok(r.ci95[0] <= r.winRate && r.winRate <= r.ci95[1]);
    const rows = readFileSync(out, 'utf8').trim().split('\n').map((l) => HeadToHeadRow.parse(JSON.parse(l)));
    assert.deepEqual(rows.map((x) => x.promptId), ['prompt-1', 'prompt-2', 'prompt-3', 'prompt-4']);
    const oracle = await srlm(['eval', 'head-to-head', '--a', m2, '--b', m1, '--prompts', promptsFile, '--judge', 'oracle']);
    assert.equal(oracle.code, 2);

    const ranked = path.join(tmp.dir, 'ranked.jsonl');
    writeFileSync(ranked, [{ id: 'r1', instruction: 'Reverse: a b', responses: [{ text: 'b a', rank: 0 }, { text: 'a b', rank: 1 }, { text: 'x', rank: 2 }] }, { id: 'r2', instruction: 'Reverse: c d', responses: [{ text: 'd c', rank: 0 }, { text: 'c d', rank: 0 }] }].map((x) => JSON.stringify(x)).join('\n'));
    const judged = await srlm(['eval', 'judge', '--model', m2, '--ranked', ranked, '--samples', '1', '--judge-max-new-tokens', '8', '--json']);
    assert.equal(judged.code, 0, judged.stderr);
    const metrics = JSON.parse(judged.stdout);
    // Pairs with different human ranks: 3 in r1, none in r2.
    assert.deepEqual([metrics.sets, metrics.pairs], [2, 3]);
  });
});
