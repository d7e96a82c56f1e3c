/**
 * The one change srlm makes to tfjs-node's binding source before building it (BINDING_PATCH in
 * infra/native-backend.ts): graph sessions take their thread counts from SRLM_GRAPH_THREADS.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { initBackend } from '../../core/compute/backend';
import { GraphBuilder } from '../../core/compute/graph';
import { BINDING_PATCH, patchBinding } from '../../infra/native-backend';

const pkg = path.dirname(require.resolve('@tensorflow/tfjs-node/package.json'));

describe('tfjs-node binding patch', () => {
  it('inserts the session thread setting once, after the session options are made', async () => {
    const original = readFileSync(path.join(pkg, 'binding', 'tfjs_backend.cc'), 'utf8');
    // Test a pristine copy (the installed source may already carry the patch).
    const pristine = original.replace(BINDING_PATCH.code, '').replace(/(#include <(cstdio|cstdlib)>\n)+#include <cstring>\n/, '#include <cstring>\n');
    assert.ok(pristine.includes(BINDING_PATCH.anchor), 'tfjs-node\'s LoadSavedModel no longer has the line the patch follows');
    const dir = mkdtempSync(path.join(tmpdir(), 'srlm-patch-'));
    try {
      mkdirSync(path.join(dir, 'binding'));
      const file = path.join(dir, 'binding', 'tfjs_backend.cc');
      writeFileSync(file, pristine);
      const lines: string[] = [];
      await patchBinding(dir, (l) => lines.push(l));
      await patchBinding(dir, (l) => lines.push(l));
      const patched = readFileSync(file, 'utf8');
      assert.equal(patched.split('TF_SetConfig(session_options').length - 1, 1);
      assert.ok(patched.indexOf(BINDING_PATCH.anchor) < patched.indexOf('SRLM_GRAPH_THREADS'));
      assert.ok(patched.includes('#include <cstdio>\n') && patched.includes('#include <cstdlib>\n'));
      assert.equal(patched.split('#include <cstdlib>').length - 1, 1);
      assert.equal(lines.length, 0);
      // A source an earlier version patched (other code in the block) gets this block in its place.
      const earlier = BINDING_PATCH.code.replace('int srlm_intra = ', 'int srlm_n_earlier = 0; int srlm_intra = ');
      writeFileSync(file, pristine.replace(BINDING_PATCH.anchor, `${BINDING_PATCH.anchor}${earlier}`));
      await patchBinding(dir, (l) => lines.push(l));
      const upgraded = readFileSync(file, 'utf8');
      assert.equal(upgraded.split('TF_SetConfig(session_options').length - 1, 1);
      assert.ok(upgraded.includes(BINDING_PATCH.code) && !upgraded.includes('srlm_n_earlier'));
      assert.equal(upgraded.replace(BINDING_PATCH.code, ''), patched.replace(BINDING_PATCH.code, ''), 'nothing else changed');
      // Source without the anchor is left alone, with a line saying so.
      writeFileSync(file, 'int main() {}\n');
      await patchBinding(dir, (l) => lines.push(l));
      assert.equal(readFileSync(file, 'utf8'), 'int main() {}\n');
      assert.match(lines[0] ?? '', /graphs will share the eager thread pool/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gives sessions that ask for N inter-op threads one shared pool of N, not the process-wide pool', async (t) => {
    if (process.env.SRLM_EXPECT_NATIVE !== '1' || process.platform !== 'linux') return t.diagnostic('native backend not provisioned in this run');
    await initBackend(undefined, () => undefined);
    // TensorFlow names its inter-op pools' threads tf_Compute…; count them (Linux: /proc).
    const computeThreads = () => readdirSync('/proc/self/task').filter((id) => readFileSync(`/proc/self/task/${id}/comm`, 'utf8').startsWith('tf_Compute')).length;
    const open = async (threads: number | [number, number]) => {
      const g = new GraphBuilder();
      const x = g.input('x', 'float32');
      return g.compile({ y: { ref: g.unary('Square', x), dtype: 'float32' } }, threads);
    };
    // A one-thread session first: were the pools process-wide, it would have sized the only one.
    const one = await open(1);
    const before = computeThreads();
    // 3 inter-op threads: a count no other graph in this process asks for.
    const first = await open([1, 3]);
    assert.equal(computeThreads(), before + 3, 'the first session of 3 inter-op threads starts a pool of 3');
    const second = await open([1, 3]);
    assert.equal(computeThreads(), before + 3, 'the second shares it');
    for (const f of [one, first, second]) f.dispose();
  });

  it('is in the binding the harness built', (t) => {
    if (process.env.SRLM_EXPECT_NATIVE !== '1') return t.diagnostic('native backend not provisioned in this run');
    const lib = path.join(pkg, 'lib');
    const binding = readdirSync(lib).map((d) => path.join(lib, d, 'tfjs_binding.node')).find((f) => existsSync(f));
    assert.ok(binding, 'no tfjs_binding.node');
    assert.ok(readFileSync(binding).includes(Buffer.from('SRLM_GRAPH_THREADS')), 'the built binding does not read SRLM_GRAPH_THREADS');
  });
});
