import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { evaluateJudge, headToHead, sampledHeadToHead, type PairwiseJudge, type PointwiseJudge } from '../../core/eval/head-to-head';

const prompts = ['p1', 'p2', 'p3', 'p4', 'p5'].map((id) => ({ id, instruction: `question ${id}` }));
// A programmatic judge: the number of "!" in a response is its score; "??" means no score.
const bangs: PointwiseJudge = {
  kind: 'pointwise',
  name: 'bangs',
  score: async (items) => items.map((it) => (it.response.includes('??') ? null : (it.response.match(/!/g) ?? []).length)),
};

describe('head-to-head', () => {
  it('turns pointwise scores into wins, ties and losses, a missing score into a tie', async () => {
    const a = { name: 'M2', responses: ['!!', '!', '', '!!!', '??'] };
    const b = { name: 'M1', responses: ['!', '!', '!', '!', '!'] };
    const { rows, summary } = await headToHead(prompts, a, b, bangs);
    assert.deepEqual(rows.map((r) => r.outcome), ['a', 'tie', 'b', 'a', 'tie']);
    assert.deepEqual(rows.map((r) => [r.aFirst, r.bFirst]), [['a', 'a'], ['tie', 'tie'], ['b', 'b'], ['a', 'a'], [null, null]]);
    // 2 wins, 2 ties, 1 loss of 5: (2 + 1) / 5 = 0.6.
    assert.deepEqual([summary.wins, summary.ties, summary.losses, summary.n, summary.winRate], [2, 2, 1, 5, 0.6]);
    assert.deepEqual([summary.a, summary.b, summary.judge], ['M2', 'M1', 'bangs']);
    assert.ok(summary.ci95[0] < 0.6 && summary.ci95[1] > 0.6);
    assert.equal(rows[0]!.responseA, '!!');
  });

  it('asks a pairwise judge in both orders and calls a disagreement a tie', async () => {
    // Prefers the longer response, but when lengths are equal always picks whichever is shown first.
    const calls: string[] = [];
    const biased: PairwiseJudge = {
      kind: 'pairwise',
      name: 'biased',
      compare: async (items) =>
        items.map((it) => {
          calls.push(`${it.first}|${it.second}`);
          return it.first.length > it.second.length ? 'first' : it.first.length < it.second.length ? 'second' : 'first';
        }),
    };
    const { rows, summary } = await headToHead(prompts.slice(0, 3), { name: 'A', responses: ['long', 'x', 'ab'] }, { name: 'B', responses: ['s', 'yyy', 'cd'] }, biased);
    assert.deepEqual(calls, ['long|s', 'x|yyy', 'ab|cd', 's|long', 'yyy|x', 'cd|ab']);
    assert.deepEqual(rows.map((r) => [r.aFirst, r.bFirst, r.outcome]), [['a', 'a', 'a'], ['b', 'b', 'b'], ['a', 'b', 'tie']]);
    assert.equal(summary.winRate, 0.5);
  });

  it('compares sampled answers sample by sample and summarises them per prompt', async () => {
    const two = prompts.slice(0, 2);
    const a = { name: 'M2', samples: [['!!', '!', '!'], ['', '!!', '??']] };
    const b = { name: 'M1', samples: [['!', '!', ''], ['!', '!', '!']] };
    const { rows, summary } = await sampledHeadToHead(two, a, b, bangs);
    assert.deepEqual(rows.map((r) => r.promptId), ['p1#0', 'p1#1', 'p1#2', 'p2#0', 'p2#1', 'p2#2']);
    assert.deepEqual(rows.map((r) => r.outcome), ['a', 'tie', 'a', 'b', 'a', 'tie']);
    assert.ok(rows.every((r) => r.instruction === (r.promptId.startsWith('p1') ? 'question p1' : 'question p2')));
    // 3 wins, 2 ties, 1 loss of 6: 4 / 6; prompt means 5/6 and 1/2.
    assert.deepEqual([summary.wins, summary.ties, summary.losses, summary.n, summary.prompts, summary.samples], [3, 2, 1, 6, 2, 3]);
    assert.ok(Math.abs(summary.winRate - 4 / 6) < 1e-12);
    await assert.rejects(sampledHeadToHead(two, a, { name: 'M1', samples: [['!'], ['!']] }, bangs), /same number of samples/);
    await assert.rejects(sampledHeadToHead(prompts, a, b, bangs), /5 prompts/);
  });

  it('refuses a response count that does not match the prompts', async () => {
    await assert.rejects(headToHead(prompts, { name: 'A', responses: [] }, { name: 'B', responses: [] }, bangs), /one response per prompt/);
  });

  it('scores ranked sets with a judge and reports the paper\'s reward-model metrics', async () => {
    const sets = [
      // Human order matches the judge's: all 3 pairs agree; best gets 5 points.
      { id: 's1', instruction: 'q1', responses: [{ text: '!!!!!', rank: 0 }, { text: '!!', rank: 1 }, { text: '', rank: 2 }] },
      // Reversed: one pair, and the judge orders it the other way.
      { id: 's2', instruction: 'q2', responses: [{ text: '!', rank: 0 }, { text: '!!!', rank: 1 }] },
    ];
    const m = await evaluateJudge(bangs, sets);
    assert.equal(m.sets, 2);
    assert.equal(m.pairs, 4);
    assert.equal(m.pairwiseAccuracy, 3 / 4);
    assert.equal(m.exactMatch, 0.5);
    assert.equal(m.fiveBest, 0.5);
    assert.equal(m.spearman, 0); // mean of +1 and -1
  });
});
