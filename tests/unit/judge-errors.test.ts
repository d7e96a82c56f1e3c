import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { confusion } from '../../bench/judge-errors';

describe('judge-errors: the judge against the oracle on its own candidates', () => {
  const candidates = [
    { promptId: 'p1', instruction: 'say ok', index: 0, response: 'ok', finishReason: 'eos' as const, tokens: 1 },
    { promptId: 'p1', instruction: 'say ok', index: 1, response: 'no', finishReason: 'eos' as const, tokens: 1 },
    { promptId: 'p2', instruction: 'say ok', index: 0, response: 'ok', finishReason: 'eos' as const, tokens: 1 },
  ];
  const oracle = (_: string, response: string) => (response === 'ok' ? 5 : 1);

  it('counts each judgment under its candidate’s oracle score and its own score', () => {
    const judgments = [
      { promptId: 'p1', candidate: 0, sample: 0, reply: 'Score: 5', score: 5 },
      { promptId: 'p1', candidate: 0, sample: 1, reply: 'Score: 3', score: 3 },
      { promptId: 'p1', candidate: 1, sample: 0, reply: 'Score: 5', score: 5 }, // a wrong answer passed
      { promptId: 'p1', candidate: 1, sample: 1, reply: 'no score', score: null },
      { promptId: 'p2', candidate: 0, sample: 0, reply: 'Score: 5', score: 5 },
    ];
    const m = confusion(candidates, judgments, oracle);
    assert.deepEqual(m[5], [0, 0, 0, 1, 0, 2, 0]);
    assert.deepEqual(m[1], [0, 0, 0, 0, 0, 1, 1]);
    assert.equal(m.flat().reduce((a, b) => a + b, 0), judgments.length);
    // A second shard adds to the same matrix.
    assert.equal(confusion(candidates, judgments.slice(0, 1), oracle, m), m);
    assert.deepEqual(m[5], [0, 0, 0, 1, 0, 3, 0]);
  });

  it('refuses a judgment whose candidate is not in the shard (a shard paired with the wrong candidates)', () => {
    assert.throws(() => confusion(candidates, [{ promptId: 'p3', candidate: 0, sample: 0, reply: '', score: 1 }], oracle), /candidate 0 of p3/);
  });
});
