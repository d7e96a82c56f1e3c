/**
 * Our decoders against transformers: logits on padded batches and greedy continuations, for
 * Llama with grouped-query attention and untied embeddings, Llama with tied embeddings, GPT-2,
 * and bf16 / f16 checkpoints (fixtures from tests/fixtures/hf/make_fixtures.py).
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../core/compute/backend';
import { loadCheckpoint } from '../../core/model/checkpoint';
import { graphsAvailable } from '../../core/compute/graph';
import { positionsFromMask } from '../../core/model/decoder';
import { forwardGraph, runForwardGraph } from '../../core/model/forward-graph';
import { generate } from '../../core/model/generate';
import { MODEL_FIXTURES, expected, fixtureDir, maxAbsDiff } from '../support/hf-fixtures';

describe('decoders match transformers', () => {
  before(async () => {
    await initBackend(undefined, () => undefined);
  });

  for (const name of MODEL_FIXTURES) {
    it(`${name}: logits within 1e-4 on padded and unpadded batches`, async (t) => {
      const { model } = loadCheckpoint(fixtureDir(name));
      try {
        for (const c of expected(name).logits_cases) {
          const ids = tf.tensor2d(c.input_ids, undefined, 'int32');
          const mask = tf.tensor2d(c.attention_mask, undefined, 'int32');
          const positions = positionsFromMask(mask);
          assert.deepEqual(positions.arraySync(), c.position_ids, `${c.name}: positions`);
          const { logits } = model.forward(ids, positions, mask);
          const diff = maxAbsDiff(logits.arraySync(), c.logits, c.attention_mask);
          assert.ok(diff <= 1e-4, `${name}/${c.name}: max |Δlogit| = ${diff}`);
          t.diagnostic(`${c.name}: max |Δlogit| vs transformers = ${diff.toExponential(2)} on ${tf.getBackend()}`);
          tf.dispose(logits);
          // Generation's folded weights (Llama) must give the same logits.
          const inference = model.inferenceWeights();
          if (inference) {
            const folded = model.forward(ids, positions, mask, { inference }).logits;
            const foldedDiff = maxAbsDiff(folded.arraySync(), c.logits, c.attention_mask);
            assert.ok(foldedDiff <= 1e-4, `${name}/${c.name} (inference weights): max |Δlogit| = ${foldedDiff}`);
            t.diagnostic(`${c.name}: inference weights, max |Δlogit| = ${foldedDiff.toExponential(2)}`);
            tf.dispose(folded);
            inference.dispose();
          }
          // The native backend's forward graph (generation's path): the last position's logits.
          if (graphsAvailable()) {
            const graph = await forwardGraph(model.config);
            const res = runForwardGraph(graph, model, ids, positions, tf.cast(mask, 'float32') as tf.Tensor2D, undefined);
            const got = res.logits.arraySync();
            tf.dispose([res.logits, res.next, ...res.present.flatMap((p) => [p.k, p.v])]);
            const T = c.input_ids[0]!.length;
            const rows = c.attention_mask.map((m, b) => (m[T - 1] === 1 ? b : -1)).filter((b) => b >= 0);
            assert.ok(rows.length > 0);
            const graphDiff = maxAbsDiff(rows.map((b) => [got[b]!]), rows.map((b) => [c.logits[b]![T - 1]!]), rows.map(() => [1]));
            assert.ok(graphDiff <= 1e-4, `${name}/${c.name} (forward graph): max |Δlogit| = ${graphDiff}`);
            t.diagnostic(`${c.name}: forward graph, last position of ${rows.length} row(s), max |Δlogit| = ${graphDiff.toExponential(2)}`);
          }
          tf.dispose([ids, mask, positions]);
        }
      } finally {
        model.dispose();
      }
    });

    it(`${name}: greedy continuations are token-identical, with and without the KV cache (and the forward graph)`, async () => {
      const { model } = loadCheckpoint(fixtureDir(name));
      try {
        for (const c of expected(name).greedy_cases) {
          const prompts = c.input_ids.map((row, b) => row.filter((_, t) => c.attention_mask[b]![t] === 1));
          // On the native backend: through the forward graph and through eager ops (SRLM_GRAPHS=0).
          for (const graphs of graphsAvailable() ? [true, false] : [false]) {
            for (const useCache of [true, false]) {
              const saved = process.env.SRLM_GRAPHS;
              if (!graphs) process.env.SRLM_GRAPHS = '0';
              try {
                const r = await generate(model, prompts, { maxNewTokens: c.max_new_tokens, greedy: true, eosTokenId: null, useCache });
                assert.deepEqual(r.tokens, c.new_tokens, `${name}/${c.name} (cache ${useCache}, graph ${graphs})`);
                assert.ok(r.finishReasons.every((f) => f === 'length'));
              } finally {
                if (saved === undefined) delete process.env.SRLM_GRAPHS;
                else process.env.SRLM_GRAPHS = saved;
              }
            }
          }
        }
      } finally {
        model.dispose();
      }
    });
  }
});
