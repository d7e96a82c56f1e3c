import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CandidateRow, JudgmentRow } from '../../core/data/rows';
import { meanJudgeScores, onPolicyAccuracy, pairOracleCounts } from '../../core/eval/oracle-diagnostics';
import { lineChart, renderHtml, renderMarkdown, renderText, type LineReport, type RunReport } from '../../core/pipeline/report';

/** A toy oracle: the score is the number written at the start of the response. */
const oracle = (_instruction: string, response: string) => Number(response.split(' ')[0]);

const cand = (promptId: string, index: number, response: string): CandidateRow => ({ promptId, instruction: `task ${promptId}`, index, response, finishReason: 'eos', tokens: 1 });
const judgment = (promptId: string, candidate: number, sample: number, score: number | null): JudgmentRow => ({ promptId, candidate, sample, reply: score === null ? 'no score' : `Score: ${score}`, score });

describe('oracle diagnostics', () => {
  it('tallies self-chosen pairs as the oracle sees them: chosen better, equal, or worse', () => {
    const pairs = [
      { instruction: 'x', chosen: '5 a', rejected: '2 b' }, // agree
      { instruction: 'x', chosen: '3 a', rejected: '3 b' }, // tie
      { instruction: 'x', chosen: '1 a', rejected: '4 b' }, // reversed
      { instruction: 'x', chosen: '4 a', rejected: '0 b' }, // agree
    ];
    assert.deepEqual(pairOracleCounts(pairs, oracle), { pairs: 4, agree: 2, tie: 1, reversed: 1 });
  });

  it('averages parsed judgments per candidate; a candidate with none parsed has no score', () => {
    const m = meanJudgeScores([judgment('p', 0, 0, 4), judgment('p', 0, 1, null), judgment('p', 0, 2, 1), judgment('p', 1, 0, null), judgment('q', 0, 0, 3)]);
    assert.equal(m.get('p\u00000'), 2.5);
    assert.equal(m.get('p\u00001'), null);
    assert.equal(m.get('q\u00000'), 3);
  });

  it('measures the judge on the candidates against the oracle, worked by hand', () => {
    // Prompt p: oracle 5, 3, 3, 0. Judge means 4, 2, 5, 1.
    //   pairs with differing oracle scores: (0,1) judge 4>2 ✓, (0,2) 4<5 ✗, (0,3) 4>1 ✓, (1,3) 2>1 ✓, (2,3) 5>1 ✓ → 4 of 5
    //   (1,2) has equal oracle scores and is not counted.
    // Prompt q: oracle 2, 4. Judge means 3, 3 → one pair, a judge tie (not correct).
    // Prompt r: every oracle score equal → no pairs, skipped.
    // Prompt s: oracle 1, 2; candidate 1 has no parsed judgment → ranks below candidate 0 → wrong.
    const candidates = [
      cand('p', 0, '5 a'), cand('p', 1, '3 b'), cand('p', 2, '3 c'), cand('p', 3, '0 d'),
      cand('q', 0, '2 a'), cand('q', 1, '4 b'),
      cand('r', 0, '1 a'), cand('r', 1, '1 b'),
      cand('s', 0, '1 a'), cand('s', 1, '2 b'),
    ];
    const scores = meanJudgeScores([
      judgment('p', 0, 0, 4), judgment('p', 1, 0, 2), judgment('p', 2, 0, 5), judgment('p', 3, 0, 1),
      judgment('q', 0, 0, 3), judgment('q', 1, 0, 3),
      judgment('r', 0, 0, 5), judgment('r', 1, 0, 0),
      judgment('s', 0, 0, 2), judgment('s', 1, 0, null),
    ]);
    const r = onPolicyAccuracy(candidates, scores, oracle);
    assert.equal(r.prompts, 3);
    assert.equal(r.pairs, 7);
    assert.equal(r.accuracy, 4 / 7);
    assert.equal(r.ties, 1 / 7);
    // Oracle scores sum: 11 + 6 + 2 + 3 = 22 over 10 candidates.
    assert.equal(r.candidateOracleMean, 2.2);
  });

  it('says there is nothing to measure when every prompt’s candidates score the same', () => {
    const r = onPolicyAccuracy([cand('p', 0, '3 a'), cand('p', 1, '3 b')], new Map(), oracle);
    assert.equal(r.pairs, 0);
    assert.ok(Number.isNaN(r.accuracy));
    assert.equal(r.candidateOracleMean, 3);
  });
});

const h2h = (a: string, b: string, wins: number, ties: number, losses: number) => {
  const n = wins + ties + losses;
  const winRate = (wins + ties / 2) / n;
  return { a, b, judge: 'oracle', wins, ties, losses, n, winRate, ci95: [winRate - 0.1, winRate + 0.1] as [number, number] };
};
const metrics = { sets: 10, pairs: 50, pairwiseAccuracy: 0.6, pairwiseTies: 0.1, fiveBest: 0.5, exactMatch: 0.2, spearman: 0.4, spearmanSets: 10, kendall: 0.3, kendallSets: 10, unscored: 0 };
const stats = { prompts: 20, pairs: 12, tied: 6, tooFewScored: 2, belowMargin: 0, identical: 0, unscoredCandidates: 1, partlyScoredCandidates: 0 };

function line(offset: number): LineReport {
  return {
    headToHead: [h2h('M2', 'M1', 30 + offset, 40, 30), h2h('M3', 'M2', 35 + offset, 40, 25)],
    judgeMetrics: [{ model: 'M2', ...metrics, onPolicyAccuracy: 0.55, onPolicyPairs: 80 }],
    pairs: [{ iteration: 1, count: 12, stats, oracleAgree: 7, oracleTie: 3, oracleReversed: 2, judgeAccuracy: 0.58, promptsUnderstood: 0.45, judgeParseFailures: 0.025 }, { iteration: 2, count: 12, stats, oracleAgree: 8, oracleTie: 2, oracleReversed: 2, judgeAccuracy: 0.6 }],
    prompts: [{ iteration: 1, count: 20 }, { iteration: 2, count: 20 }],
    training: [{ model: 'M2', steps: 3, firstLoss: 0.69, finalLoss: 0.5, final: null }],
    dpo: [{ model: 'M2', iteration: 1, points: [{ step: 1, loss: 0.69, margin: 0, accuracy: 0 }, { step: 2, loss: 0.6, margin: 0.2, accuracy: 0.7 }, { step: 3, loss: 0.5, margin: 0.5, accuracy: 0.9 }] }],
    models: [{ name: 'M2', oracleMean: 3.1 + offset / 10, sampledOracleMean: 2.9, uri: 'file:///x/M2' }, { name: 'M3', oracleMean: 3.3 + offset / 10, sampledOracleMean: 3, uri: 'file:///x/M3' }],
  };
}

const report: RunReport = {
  runId: 'r<1>',
  ...line(0),
  headToHead: [h2h('M1', 'SFT', 50, 30, 20), ...line(0).headToHead],
  models: [{ name: 'SFT', oracleMean: 2.5, sampledOracleMean: 2.2, uri: null }, { name: 'M1', oracleMean: 3, sampledOracleMean: 2.8, uri: null }, ...line(0).models],
  judgeMetrics: [{ model: 'M1', ...metrics, onPolicyAccuracy: 0.52, onPolicyPairs: 90 }, { model: 'M2', ...metrics, pairwiseAccuracy: Number.NaN, onPolicyAccuracy: null, onPolicyPairs: null }],
  control: { judge: 'random', ...line(-10) },
  ceiling: { judge: 'oracle', ...line(10) },
};

describe('run report', () => {
  it('renders every table of the method and both arms in Markdown, with the oracle view of the pairs', () => {
    const md = renderMarkdown(report);
    assert.match(md, /\| M1 \| SFT \| oracle \| 50 \| 30 \| 20 \| 100 \| 65\.0% \| 55\.0%–75\.0% \|/);
    assert.match(md, /\| 1 \| 20 \| 45\.0% \| 12 \| 7 \/ 3 \/ 2 \| 58\.0% \| 2\.5% \| 6 \| 1 \|/);
    assert.match(md, /\| 2 \| 20 \| n\/a \| 12 \| 8 \/ 2 \/ 2 \| 60\.0% \| n\/a \|/, 'a share the run did not record prints as n/a');
    assert.match(md, /\| M1 \| 60\.0% \| 52\.0% \(90 pairs\) \|/);
    assert.match(md, /\| M2 \| n\/a \| n\/a \|/, 'undefined metrics print as n/a');
    assert.match(md, /Control arm: a random judge/);
    assert.match(md, /Ceiling arm: the oracle/);
    assert.match(md, /\| M3 \| 3\.30 \| 3\.00 \| file:\/\/\/x\/M3 \|/);
  });

  it('renders a self-contained HTML page with the five charts and escaped text', () => {
    const html = renderHtml(report);
    assert.equal((html.match(/<svg /g) ?? []).length, 5);
    for (const title of ['Win rate of each iteration', 'Mean oracle score', 'Each model as a judge', 'DPO loss over steps', 'DPO reward margin']) assert.ok(html.includes(title), title);
    assert.ok(html.includes('srlm run r&lt;1&gt;'));
    assert.ok(!html.includes('<script'), 'no scripts');
    assert.ok(!/(src|href)="http/.test(html), 'nothing fetched');
    // The win-rate chart has one whisker per line and iteration: 3 lines × 2 iterations.
    const winChart = html.slice(html.indexOf('Win rate of each iteration'), html.indexOf('Mean oracle score'));
    assert.equal((winChart.match(/<circle /g) ?? []).length, 6);
  });

  it('prints aligned text tables for the terminal', () => {
    const text = renderText(report);
    assert.match(text, /^HEAD-TO-HEAD$/m);
    assert.match(text, /^ {2}M1 +SFT +oracle +50 +30 +20 +100 +65\.0%/m);
    assert.match(text, /CEILING ARM/);
  });

  it('shows the sampled head-to-heads in a table of their own and as dashed lines on the win-rate chart', () => {
    const sampled = (a: string, b: string, winRate: number) => ({ a, b, judge: 'oracle', wins: 300, ties: 200, losses: 220, n: 720, winRate, ci95: [winRate - 0.05, winRate + 0.05] as [number, number], prompts: 180, samples: 4 });
    const withSampled: RunReport = { ...report, headToHeadSampled: [sampled('M2', 'M1', 0.55), sampled('M3', 'M2', 0.6)], ceiling: { ...report.ceiling!, headToHeadSampled: [sampled('M2', 'M1', 0.58)] } };
    const md = renderMarkdown(withSampled);
    assert.match(md, /## Head-to-head, sampled decoding\n\nEach model answers every held-out prompt several times/);
    assert.match(md, /\| M3 \| M2 \| oracle \| 300 \| 200 \| 220 \| 720 \| 180 × 4 \| 60\.0% \| 55\.0%–65\.0% \|/);
    assert.match(md, /### Head-to-head, sampled \(ceiling\)/);
    assert.doesNotMatch(renderMarkdown(report), /sampled decoding/, 'no section without sampled rows');
    assert.match(renderText(withSampled), /^HEAD-TO-HEAD, SAMPLED DECODING$/m);
    const html = renderHtml(withSampled);
    const winChart = html.slice(html.indexOf('Win rate of each iteration'), html.indexOf('Mean oracle score'));
    // Greedy: 3 lines × 2 iterations; sampled: the method's 2 and the ceiling's 1, dashed.
    assert.equal((winChart.match(/<circle /g) ?? []).length, 9);
    assert.match(winChart, /method, sampled/);
    assert.match(winChart, /ceiling, sampled/);
    assert.ok((winChart.match(/stroke-dasharray="5 4"/g) ?? []).length >= 2, 'sampled lines and their legend are dashed');
  });

  it('zooms the win-rate axis to 25-75% when every plotted interval fits there, whatever the comparisons it does not plot', () => {
    const axis = (r: RunReport) => {
      const html = renderHtml(r);
      const winChart = html.slice(html.indexOf('Win rate of each iteration'), html.indexOf('Mean oracle score'));
      return />38%</.test(winChart) ? 'zoomed' : />100%</.test(winChart) ? 'whole' : 'neither';
    };
    assert.equal(axis(report), 'zoomed');
    // M3 vs SFT far from 50% is in the tables, not on this chart.
    assert.equal(axis({ ...report, headToHead: [...report.headToHead, h2h('M3', 'SFT', 90, 5, 5)] }), 'zoomed');
    // A plotted comparison outside 25-75% shows the whole axis.
    assert.equal(axis({ ...report, ceiling: { ...report.ceiling!, headToHead: [h2h('M2', 'M1', 90, 5, 5), ...report.ceiling!.headToHead.slice(1)] } }), 'whole');
  });

  it('says a judge that scored nothing was not measured, rather than 0% right', () => {
    const md = renderMarkdown({ ...report, judgeMetrics: [{ model: 'SFT', ...metrics, pairwiseAccuracy: Number.NaN, pairwiseTies: Number.NaN, fiveBest: Number.NaN, exactMatch: Number.NaN, spearman: Number.NaN, kendall: Number.NaN, unscored: 200, onPolicyAccuracy: null, onPolicyPairs: 202 }] });
    assert.match(md, /\| SFT \| no scores \(200 replies\) \| n\/a \| n\/a \| n\/a \|/);
  });

  it('draws a chart for points it has and says so when it has none', () => {
    const svg = lineChart({ title: 't', yLabel: 'y', series: [{ name: 's', color: '#000', points: [{ x: 0, y: 1 }, { x: 1, y: 2 }] }] });
    assert.match(svg, /<polyline[^>]+points="[\d.]+,[\d.]+ [\d.]+,[\d.]+"/);
    assert.match(lineChart({ title: 't', yLabel: 'y', series: [{ name: 's', color: '#000', points: [] }] }), /no data/);
  });
});
