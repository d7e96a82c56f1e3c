import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { meanScore, parseJudgeScore } from '../../core/judge/parse';

/** [reply, expected score or null]: realistic judge replies and adversarial ones. */
const CASES: [string, number | null][] = [
  // The format the prompt asks for.
  ['The response is relevant and answers the question directly.\nScore: 4', 4],
  ['Score: 5', 5],
  ['Score: 0', 0],
  ['It is off topic.\n\nScore: 0', 0],
  ['Justification: covers most of it.\nScore: 3', 3],
  // Case and spacing.
  ['score: 2', 2],
  ['SCORE: 1', 1],
  ['Score:4', 4],
  ['Score :   3', 3],
  ['Score:\n4', 4],
  ['Score：4', 4],
  ['Score:\u00a05', 5],
  // Markdown.
  ['**Score:** 4', 4],
  ['**Score: 4**', 4],
  ['### Score: 3', 3],
  ['`Score: 2`', 2],
  ['Score: **5**', 5],
  ['_Score_: _1_', 1],
  ['- **Score**: 4', 4],
  // Out of five, decimals, trailing text.
  ['Score: 4/5', 4],
  ['Score: 4 / 5', 4],
  ['Score: 3 out of 5', 3],
  ['Score: 4.5', 4.5],
  ['Score: 4.0', 4],
  ['Score: 3.5/5', 3.5],
  ['Score: 4. The answer could be shorter.', 4],
  ['Score: 4 points', 4],
  ['Score: 2 (addresses part of the question)', 2],
  ['Score: 5!', 5],
  // Other labels and phrasings.
  ['Final score: 3', 3],
  ['Total score: 4', 4],
  ['Score (out of 5): 4', 4],
  ['Score = 3', 3],
  ['Score - 2', 2],
  ['I would give this response a score of 4.', 4],
  ['The final score is 3.', 3],
  ['Score: four', 4],
  ['Score: Five', 5],
  // Several scores: the last one counts.
  ['First pass: Score: 2. On reflection the answer is complete.\nScore: 4', 4],
  ['Criterion 1 met, criterion 2 met.\nScore: 1\nScore: 2', 2],
  ['The score of this response depends on accuracy. Score: 3', 3],
  ['The score is high overall.\nScore: 5', 5],
  // Failures: nothing to take, or nothing unambiguous.
  ['', null],
  ['   ', null],
  ['This response is great.', null],
  ['4', null],
  ['The answer deserves 4 points.', null],
  ['Score:', null],
  ['Score: N/A', null],
  ['Score: <total points>', null],
  ['Score: 7', null],
  ['Score: -1', null],
  ['Score: 5.5', null],
  ['Score: 45', null],
  ['Score: 8/10', null],
  ['Score: 3-4', null],
  ['Score: 3 to 4', null],
  ['Score: 4,5', null],
  ['Score: 3\nActually, Score: 9', null],
  ['Score: ten', null],
  ['Points: 4', null],
  ['Scores: 4', null],
];

describe('judge score parser', () => {
  it(`parses ${CASES.length} realistic and adversarial replies`, () => {
    assert.ok(CASES.length >= 50);
    for (const [reply, expected] of CASES) {
      const r = parseJudgeScore(reply);
      if (expected === null) assert.equal(r.ok, false, `${JSON.stringify(reply)} should fail, got ${JSON.stringify(r)}`);
      else assert.deepEqual(r, { ok: true, score: expected }, JSON.stringify(reply));
    }
  });

  it('says why a reply failed', () => {
    const r = parseJudgeScore('Score: 8/10');
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.reason : '', /out of 10/);
    assert.match((parseJudgeScore('no label here') as { reason: string }).reason, /no "Score:" label/);
  });

  it('averages k judgments and counts the failures', () => {
    assert.deepEqual(meanScore(['Score: 4', 'Score: 5', 'Score: 3']), { mean: 4, parsed: 3, failed: 0 });
    assert.deepEqual(meanScore(['Score: 4', 'no idea', 'Score: 5']), { mean: 4.5, parsed: 2, failed: 1 });
    assert.deepEqual(meanScore(['?', '']), { mean: null, parsed: 0, failed: 2 });
  });
});

describe('judge prompt', () => {
  it('fills both slots once, leaving braces in the user text alone, and asks for Score: N', async () => {
    const { judgePrompt, ADDITIVE_JUDGE_TEMPLATE } = await import('../../core/judge/prompt.js');
    const p = judgePrompt('Explain {response} placeholders', 'They are {instruction} slots.');
    assert.match(p, /Question: Explain \{response\} placeholders\n/);
    assert.match(p, /Response: They are \{instruction\} slots\.\n/);
    assert.match(p, /Score: <total points>"\.$/);
    assert.equal((ADDITIVE_JUDGE_TEMPLATE.match(/^- Add/gm) ?? []).length, 5, 'five cumulative criteria');
    assert.throws(() => judgePrompt('a', 'b', 'no slots'), /needs both \{instruction\} and \{response\}/);
  });
});

describe('srlm judge parse', () => {
  it('reads JSON-encoded replies from stdin and prints {"scores": [...]}', async () => {
    const { spawnSync } = await import('node:child_process');
    const path = await import('node:path');
    const srlm = path.join(__dirname, '..', '..', 'cli', 'srlm.js');
    const input = ['"Relevant and complete.\\nScore: 4"', '"**Score:** 5/5"', '"I cannot judge this."', '', '"Score: 3-4"'].join('\n');
    const ok = spawnSync(process.execPath, [srlm, 'judge', 'parse', '--json'], { input, encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    assert.deepEqual(JSON.parse(ok.stdout), { scores: [4, 5, null, null] });
    const bad = spawnSync(process.execPath, [srlm, 'judge', 'parse', '--json'], { input: '"Score: 1"\n{"reply": 1}\n', encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /stdin:2: .*expected string, received object/);
  });
});
