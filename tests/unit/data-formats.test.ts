import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { z } from 'zod';
import { headToHeadToAlpacaEval, toAlpacaEvalOutputs, writeAlpacaEvalOutputs } from '../../core/data/alpaca-eval';
import { importAlpaca, importOpenAssistant } from '../../core/data/importers';
import { DatasetError, readAllJsonl, readJsonl, writeJsonl } from '../../core/data/jsonl';
import { CandidateRow, EftRow, HeadToHeadRow, IftRow, JudgmentRow, PairRow, PromptRow, RankedSetRow } from '../../core/data/rows';
import { InvalidInputError } from '../../core/errors';
import { tempDir } from '../support/servers';

const fixture = (name: string) => path.join(__dirname, '..', '..', '..', 'tests', 'fixtures', 'data', name);

async function collect<T>(rows: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const row of rows) out.push(row);
  return out;
}

/** Asserts `run` rejects with a DatasetError for file:line: field, and a problem matching `problem`. */
async function rejectsAt(run: () => Promise<unknown>, file: string, line: number, field: string, problem: RegExp): Promise<void> {
  await assert.rejects(run, (err: unknown) => {
    assert.ok(err instanceof DatasetError, `expected a DatasetError, got ${String(err)}`);
    assert.ok(err instanceof InvalidInputError);
    assert.equal(err.file, file);
    assert.equal(err.line, line);
    assert.equal(err.field, field);
    const prefix = `${file}:${line}: ${field ? `${field}: ` : ''}`;
    assert.ok(err.message.startsWith(prefix), `${err.message} should start with ${prefix}`);
    assert.match(err.message.slice(prefix.length), problem);
    return true;
  });
}

const head: HeadToHeadRow = {
  promptId: 'p1', instruction: 'Name a prime.', a: 'm1', b: 'm0', responseA: '7', responseB: 'Nine.', judge: 'm1', aFirst: 'a', bFirst: 'tie', outcome: 'tie',
};

/** A valid row of each schema, and rows each broken in one field. */
const SCHEMAS: { name: string; schema: z.ZodType; good: Record<string, unknown>; bad: [Record<string, unknown>, string, RegExp][] }[] = [
  {
    name: 'IftRow', schema: IftRow, good: { id: 'i1', instruction: 'Say hi.', response: 'Hi.' },
    bad: [[{ instruction: '' }, 'instruction', /too small/i], [{ response: 3 }, 'response', /expected string, received number/]],
  },
  {
    name: 'EftRow', schema: EftRow, good: { instruction: 'Say hi.', response: 'Hi.', judgment: 'Fine.\nScore: 4', score: 4 },
    bad: [[{ score: 6 }, 'score', /too big/i], [{ score: 2.5 }, 'score', /expected int/i], [{ instruction: '' }, 'instruction', /too small/i]],
  },
  {
    name: 'PromptRow', schema: PromptRow, good: { id: 'p1', instruction: 'Say hi.', source: 'generated', iteration: 1 },
    bad: [[{ source: 'web' }, 'source', /invalid option/i], [{ iteration: -1 }, 'iteration', /too small/i], [{ instruction: '' }, 'instruction', /too small/i]],
  },
  {
    name: 'CandidateRow', schema: CandidateRow, good: { promptId: 'p1', instruction: 'Say hi.', index: 0, response: '', finishReason: 'eos', tokens: 0 },
    bad: [[{ finishReason: 'done' }, 'finishReason', /invalid option/i], [{ index: '0' }, 'index', /expected number, received string/], [{ instruction: '' }, 'instruction', /too small/i]],
  },
  {
    name: 'JudgmentRow', schema: JudgmentRow, good: { promptId: 'p1', candidate: 0, sample: 2, reply: 'Score: 4', score: null },
    bad: [[{ score: 5.5 }, 'score', /too big/i], [{ score: -1 }, 'score', /too small/i], [{ reply: null }, 'reply', /expected string, received null/]],
  },
  {
    name: 'PairRow', schema: PairRow, good: { promptId: 'p1', instruction: 'Say hi.', chosen: 'Hi!', rejected: 'No.', chosenScore: 4.5, rejectedScore: 1 },
    bad: [[{ chosenScore: 7 }, 'chosenScore', /too big/i], [{ rejected: 3 }, 'rejected', /expected string/i], [{ instruction: '' }, 'instruction', /too small/i]],
  },
  {
    name: 'HeadToHeadRow', schema: HeadToHeadRow, good: { ...head },
    bad: [[{ outcome: null }, 'outcome', /invalid option/i], [{ aFirst: 'c' }, 'aFirst', /invalid option/i], [{ instruction: '' }, 'instruction', /too small/i]],
  },
  {
    name: 'RankedSetRow', schema: RankedSetRow, good: { id: 'r1', instruction: 'Say hi.', responses: [{ text: 'Hi.', rank: 0 }, { text: 'Yo.', rank: 1 }] },
    bad: [
      [{ responses: [{ text: 'Hi.', rank: 0 }] }, 'responses', /too small/i],
      [{ responses: [{ text: 'Hi.', rank: 0 }, { text: 'Yo.', rank: -1 }] }, 'responses[1].rank', /too small/i],
      [{ responses: [{ text: 'Hi.', rank: 0 }, { text: 'Yo.', rank: 1, score: 3 }] }, 'responses[1].score', /^unknown field$/],
      [{ instruction: '' }, 'instruction', /too small/i],
    ],
  },
];

describe('row schemas through readJsonl', () => {
  const tmp = tempDir('data-rows');
  after(() => tmp.remove());

  /** A file whose line 2 is `row` (line 1 is the valid row), so errors must name line 2. */
  function fileWith(name: string, good: Record<string, unknown>, row: Record<string, unknown>): string {
    const file = path.join(tmp.dir, `${name}.jsonl`);
    writeFileSync(file, `${JSON.stringify(good)}\n${JSON.stringify(row)}\n`);
    return file;
  }

  for (const { name, schema, good, bad } of SCHEMAS) {
    it(`${name}: accepts a good row and names the line and field of a bad one`, async () => {
      const okFile = fileWith(`${name}-ok`, good, good);
      assert.deepEqual(await readAllJsonl(okFile, schema), [good, good]);

      const unknown = fileWith(`${name}-unknown`, good, { ...good, colour: 'blue' });
      await rejectsAt(() => readAllJsonl(unknown, schema), unknown, 2, 'colour', /^unknown field$/);

      for (const field of Object.keys(good)) {
        if (schema.safeParse({ ...good, [field]: undefined }).success) continue; // optional
        const missing = fileWith(`${name}-missing-${field}`, good, Object.fromEntries(Object.entries(good).filter(([k]) => k !== field)));
        // zod says "expected string, received undefined", or for an enum "Invalid option: expected one of ...".
        await rejectsAt(() => readAllJsonl(missing, schema), missing, 2, field, /received undefined|^Invalid option/);
      }
      for (const [i, [change, field, problem]] of bad.entries()) {
        const file = fileWith(`${name}-bad-${i}`, good, { ...good, ...change });
        await rejectsAt(() => readAllJsonl(file, schema), file, 2, field, problem);
      }
    });
  }

  it('reports invalid JSON with its line and no field, and skips blank lines in the count', async () => {
    const file = path.join(tmp.dir, 'broken.jsonl');
    writeFileSync(file, '{"instruction":"a","response":"b"}\n\n{"instruction":\n');
    await rejectsAt(() => collect(readJsonl(file, IftRow)), file, 3, '', /^not valid JSON/);
  });
});

describe('writeJsonl', () => {
  const tmp = tempDir('data-write');
  after(() => tmp.remove());

  it('round-trips rows from an iterable or an async generator', async () => {
    const rows: IftRow[] = [
      { id: 'a', instruction: 'Line one\nline two', response: 'Tab\there, "quotes", ünïcödé' },
      { instruction: 'Second', response: 'Two' },
    ];
    const file = path.join(tmp.dir, 'ift.jsonl');
    assert.equal(await writeJsonl(file, rows, IftRow), 2);
    assert.equal(readFileSync(file, 'utf8').split('\n').length, 3); // two lines and the final newline
    assert.deepEqual(await collect(readJsonl(file, IftRow)), rows.map((row, i) => ({ line: i + 1, row })));
    assert.ok(!existsSync(`${file}.tmp`));

    async function* many() {
      for (let i = 0; i < 5000; i++) yield { promptId: `p${i}`, candidate: i % 4, sample: 0, reply: 'x'.repeat(100), score: i % 2 ? null : 3 };
    }
    const big = path.join(tmp.dir, 'judgments.jsonl');
    assert.equal(await writeJsonl(big, many(), JudgmentRow), 5000);
    const back = await readAllJsonl(big, JudgmentRow);
    assert.equal(back.length, 5000);
    assert.deepEqual(back[4999], { promptId: 'p4999', candidate: 3, sample: 0, reply: 'x'.repeat(100), score: null });

    const empty = path.join(tmp.dir, 'empty.jsonl');
    assert.equal(await writeJsonl(empty, []), 0);
    assert.equal(readFileSync(empty, 'utf8'), '');
  });

  it('writes nothing under the real name when a row is invalid, and keeps an older file', async () => {
    const file = path.join(tmp.dir, 'bad.jsonl');
    async function* rows() {
      yield { instruction: 'ok', response: 'ok' };
      yield { instruction: 'ok', response: 'ok' };
      yield { instruction: 'ok', reply: 'wrong field' };
    }
    await rejectsAt(() => writeJsonl(file, rows(), IftRow), file, 3, 'response', /received undefined/);
    assert.ok(!existsSync(file));
    assert.ok(!existsSync(`${file}.tmp`));

    const old = path.join(tmp.dir, 'old.jsonl');
    writeFileSync(old, '{"instruction":"old","response":"old"}\n');
    await rejectsAt(() => writeJsonl(old, [{ instruction: 'new', response: 'new' }, { instruction: 'new', response: 'new', extra: 1 }], IftRow), old, 2, 'extra', /^unknown field$/);
    assert.equal(readFileSync(old, 'utf8'), '{"instruction":"old","response":"old"}\n');
    assert.deepEqual(readdirSync(tmp.dir).filter((f) => f.endsWith('.tmp')), []);
  });

  it('fails on a value that is not JSON, and passes the source generator\'s own error through', async () => {
    const file = path.join(tmp.dir, 'nojson.jsonl');
    await rejectsAt(() => writeJsonl(file, [{ a: 1 }, { n: 1n }]), file, 2, '', /cannot be written as JSON/);
    assert.ok(!existsSync(file));
    async function* failing() {
      yield { a: 1 };
      throw new Error('source broke');
    }
    await assert.rejects(() => writeJsonl(file, failing()), /source broke/);
    assert.ok(!existsSync(file) && !existsSync(`${file}.tmp`));
  });
});

describe('Alpaca import', () => {
  const expected: IftRow[] = [
    {
      id: 'alpaca-0',
      instruction: 'Give three tips for staying healthy.',
      response: '1. Eat a balanced diet with plenty of fruit and vegetables.\n2. Exercise regularly.\n3. Get enough sleep.',
    },
    { id: 'alpaca-1', instruction: 'Translate the sentence into French.\n\nThe library opens at nine.', response: 'La bibliothèque ouvre à neuf heures.' },
    { id: 'alpaca-2', instruction: 'Name the largest planet in the solar system.', response: 'Jupiter.' },
  ];

  it('reads a JSON array and JSONL alike (input after a blank line; empty or absent input and extra fields ignored)', async () => {
    assert.deepEqual(await collect(importAlpaca(fixture('alpaca.json'))), expected);
    assert.deepEqual(await collect(importAlpaca(fixture('alpaca.jsonl'))), expected);
    for (const row of expected) assert.ok(IftRow.safeParse(row).success);
  });

  it('names file, line and field of a bad JSONL row', async () => {
    await rejectsAt(() => collect(importAlpaca(fixture('alpaca-bad-json.jsonl'))), fixture('alpaca-bad-json.jsonl'), 3, '', /^not valid JSON/);
    await rejectsAt(() => collect(importAlpaca(fixture('alpaca-missing-field.jsonl'))), fixture('alpaca-missing-field.jsonl'), 2, 'output', /received undefined/);
    await rejectsAt(() => collect(importAlpaca(fixture('alpaca-wrong-type.jsonl'))), fixture('alpaca-wrong-type.jsonl'), 2, 'output', /expected string, received number/);
  });

  it('names a bad JSON array item by the line it starts on and its index', async () => {
    await rejectsAt(() => collect(importAlpaca(fixture('alpaca-bad-item.json'))), fixture('alpaca-bad-item.json'), 3, '[1].output', /received undefined/);
    await rejectsAt(() => collect(importAlpaca(fixture('alpaca-bad-json-item.json'))), fixture('alpaca-bad-json-item.json'), 4, '[2]', /^not valid JSON/);
  });

  it('places items on lines in minified and nested arrays, and rejects a non-array', async () => {
    const tmp = tempDir('data-alpaca');
    try {
      const one = path.join(tmp.dir, 'one-line.json');
      writeFileSync(one, '[{"instruction":"a [ \\" ]","output":"b"},{"instruction":"c","output":""}]');
      await rejectsAt(() => collect(importAlpaca(one)), one, 1, '[1].output', /too small/i);
      const nested = path.join(tmp.dir, 'nested.json');
      writeFileSync(nested, '\n[\n {"instruction":"a","output":"b","meta":{"tags":["x,]", {"y":[1,2]}]}},\n\n {"instruction":"c"}\n]\n');
      await rejectsAt(() => collect(importAlpaca(nested)), nested, 5, '[1].output', /received undefined/);
      const trailing = path.join(tmp.dir, 'trailing.json');
      writeFileSync(trailing, '[\n{"instruction":"a","output":"b"},\n]\n');
      await rejectsAt(() => collect(importAlpaca(trailing)), trailing, 3, '', /^not valid JSON/);
      const missing = path.join(tmp.dir, 'none.json');
      await assert.rejects(() => collect(importAlpaca(missing)), (err: unknown) => err instanceof InvalidInputError && err.message.includes(missing));
    } finally {
      tmp.remove();
    }
  });
});

describe('OpenAssistant import', () => {
  const P1 = 'Can you explain what a hash table is, in simple terms?';
  const best1 =
    'Think of a coat check. You hand over your coat and get a numbered ticket; later the number takes the attendant straight to your coat. A hash table does the same: a hash function turns a key into a slot number, and the value is kept in that slot. When two keys land on the same slot (a collision), the table keeps both there or tries the next slot.';
  const second1 =
    'A hash table stores values under keys. It runs each key through a hash function to pick a slot in an array, so finding a value takes about the same time however many entries there are.';
  const P2 = 'Wie lange muss ein Ei kochen, damit es weich ist?';
  const best2 = 'Für ein weiches Ei etwa vier bis fünf Minuten in kochendem Wasser, je nach Größe. Danach kurz mit kaltem Wasser abschrecken.';
  const id1 = 'oasst-6ab24d72-0181-4594-a9cd-deaf170242fb';
  const id2 = 'oasst-e3d0b7a8-2c51-4f0e-9a77-1d5c0f6b8e42';

  let flat: Awaited<ReturnType<typeof importOpenAssistant>>;
  let trees: Awaited<ReturnType<typeof importOpenAssistant>>;
  before(async () => {
    flat = await importOpenAssistant(fixture('oasst-messages.jsonl'));
    trees = await importOpenAssistant(fixture('oasst-trees.jsonl'));
  });

  it('gives the same result from flat messages and from trees', async () => {
    assert.deepEqual(flat, trees);
    for (const lang of [null, 'de', 'fr']) {
      assert.deepEqual(await importOpenAssistant(fixture('oasst-messages.jsonl'), { lang }), await importOpenAssistant(fixture('oasst-trees.jsonl'), { lang }));
    }
  });

  it('takes the rank-0 first-turn reply of English prompts for IFT and ranks the rest, best first', () => {
    assert.deepEqual(flat.ift, [{ id: id1, instruction: P1, response: best1 }]);
    assert.deepEqual(flat.ranked, [{ id: id1, instruction: P1, responses: [{ text: best1, rank: 0 }, { text: second1, rank: 1 }] }]);
    for (const row of flat.ift) assert.ok(IftRow.safeParse(row).success);
    for (const row of flat.ranked) assert.ok(RankedSetRow.safeParse(row).success);
  });

  it('counts what it skipped: another language, deleted and failed-review replies, later turns, unranked prompts', () => {
    assert.deepEqual(flat.skipped, [
      { reason: 'prompt not in language en', count: 1 },
      { reason: 'first-turn reply deleted or failed review', count: 2 },
      { reason: 'message below the first turn', count: 1 },
      { reason: 'prompt without a rank-0 reply (no IFT row)', count: 1 },
      { reason: 'prompt with fewer than 2 ranked replies (no ranked set)', count: 1 },
    ]);
  });

  it('keeps every language with lang: null, prompts in the order their roots appear', async () => {
    const all = await importOpenAssistant(fixture('oasst-messages.jsonl'), { lang: null });
    assert.deepEqual(all.ift.map((r) => [r.id, r.instruction, r.response]), [[id2, P2, best2], [id1, P1, best1]]);
    assert.deepEqual(all.ranked.map((r) => [r.id, r.responses.map((x) => x.rank)]), [[id2, [0, 1]], [id1, [0, 1]]]);
    assert.ok(!all.skipped.some((s) => s.reason.startsWith('prompt not in language')));
    const de = await importOpenAssistant(fixture('oasst-trees.jsonl'), { lang: 'de' });
    assert.deepEqual(de.ift.map((r) => r.id), [id2]);
    assert.deepEqual(de.skipped[0], { reason: 'prompt not in language de', count: 2 });
  });

  it('drops a deleted or failed-review prompt with its replies', async () => {
    const tmp = tempDir('data-oasst');
    try {
      const file = path.join(tmp.dir, 'deleted-root.jsonl');
      const lines = readFileSync(fixture('oasst-messages.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      for (const m of lines) if (m.message_id === '6ab24d72-0181-4594-a9cd-deaf170242fb') m.review_result = false;
      writeFileSync(file, lines.map((m) => JSON.stringify(m)).join('\n'));
      const result = await importOpenAssistant(file);
      assert.deepEqual([result.ift, result.ranked], [[], []]);
      assert.deepEqual(result.skipped.slice(0, 2), [
        { reason: 'prompt deleted or failed review', count: 1 },
        { reason: 'prompt not in language en', count: 1 },
      ]);
    } finally {
      tmp.remove();
    }
  });

  it('names file, line and field of malformed input', async () => {
    await rejectsAt(() => importOpenAssistant(fixture('oasst-missing-parent.jsonl')), fixture('oasst-missing-parent.jsonl'), 3, 'parent_id', /no message 6ab24d72-\S+ in the file/);
    await rejectsAt(() => importOpenAssistant(fixture('oasst-wrong-type.jsonl')), fixture('oasst-wrong-type.jsonl'), 3, 'rank', /expected number, received string/);
    const tmp = tempDir('data-oasst');
    try {
      const tree = JSON.parse(readFileSync(fixture('oasst-trees.jsonl'), 'utf8').split('\n')[1]!) as { prompt: { replies: { text: unknown; role: string }[] } };
      const badText = path.join(tmp.dir, 'tree-text.jsonl');
      tree.prompt.replies[2]!.text = '';
      writeFileSync(badText, `\n${JSON.stringify(tree)}\n`);
      await rejectsAt(() => importOpenAssistant(badText), badText, 2, 'prompt.replies[2].text', /too small/i);
      const badRole = path.join(tmp.dir, 'tree-role.jsonl');
      tree.prompt.replies[2]!.text = 'fine';
      tree.prompt.replies[1]!.role = 'prompter';
      writeFileSync(badRole, JSON.stringify(tree));
      await rejectsAt(() => importOpenAssistant(badRole), badRole, 1, 'prompt.replies[1].role', /assistant/);
      const duplicate = path.join(tmp.dir, 'duplicate.jsonl');
      const first = readFileSync(fixture('oasst-messages.jsonl'), 'utf8').split('\n')[0]!;
      writeFileSync(duplicate, `${first}\n${first}\n`);
      await rejectsAt(() => importOpenAssistant(duplicate), duplicate, 2, 'message_id', /appears twice/);
    } finally {
      tmp.remove();
    }
  });
});

describe('AlpacaEval export', () => {
  const tmp = tempDir('data-alpaca-eval');
  after(() => tmp.remove());

  it('attributes outputs to the generator, with the dataset when given', () => {
    const rows = [{ instruction: 'Say hi.', output: 'Hi.' }, { instruction: 'Count to 3.', output: '1, 2, 3' }];
    assert.deepEqual(toAlpacaEvalOutputs(rows, 'm1'), [
      { instruction: 'Say hi.', output: 'Hi.', generator: 'm1' },
      { instruction: 'Count to 3.', output: '1, 2, 3', generator: 'm1' },
    ]);
    assert.deepEqual(toAlpacaEvalOutputs(rows.slice(0, 1), 'm1', 'helpful_base'), [{ instruction: 'Say hi.', output: 'Hi.', generator: 'm1', dataset: 'helpful_base' }]);
    assert.throws(() => toAlpacaEvalOutputs(rows, ''), (err: unknown) => err instanceof InvalidInputError && /\[0\]\.generator/.test(err.message));
    assert.throws(() => toAlpacaEvalOutputs([...rows, { instruction: '', output: 'x' }], 'm1'), /\[2\]\.instruction/);
  });

  it('takes the named model\'s side of a head-to-head', () => {
    const rows: HeadToHeadRow[] = [head, { ...head, promptId: 'p2', instruction: 'Name a colour.', responseA: 'Red.', responseB: 'Blue.' }];
    assert.deepEqual(headToHeadToAlpacaEval(rows, 'a'), [
      { instruction: 'Name a prime.', output: '7', generator: 'm1' },
      { instruction: 'Name a colour.', output: 'Red.', generator: 'm1' },
    ]);
    assert.deepEqual(headToHeadToAlpacaEval(rows, 'b').map((o) => [o.output, o.generator]), [['Nine.', 'm0'], ['Blue.', 'm0']]);
  });

  it('writes model_outputs.json as a pretty JSON array', async () => {
    const file = path.join(tmp.dir, 'model_outputs.json');
    assert.equal(await writeAlpacaEvalOutputs(file, [{ instruction: 'Say hi.', output: 'Hi.' }], 'm1', 'helpful_base'), 1);
    const text = readFileSync(file, 'utf8');
    assert.equal(text, '[\n  {\n    "instruction": "Say hi.",\n    "output": "Hi.",\n    "generator": "m1",\n    "dataset": "helpful_base"\n  }\n]\n');
    assert.equal(await writeAlpacaEvalOutputs(file, headToHeadToAlpacaEval([head], 'b')), 1);
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), [{ instruction: 'Name a prime.', output: 'Nine.', generator: 'm0' }]);
    assert.ok(!existsSync(`${file}.tmp`));
  });
});
