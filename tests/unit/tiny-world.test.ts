import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EftRow, IftRow, PromptRow, RankedSetRow } from '../../core/data/rows';
import { evaluateJudge } from '../../core/eval/head-to-head';
import { parseJudgeScore } from '../../core/judge/parse';
import { judgePrompt } from '../../core/judge/prompt';
import { Rng } from '../../core/random';
import { initBackend } from '../../core/compute/backend';
import { selfInstructPrompt } from '../../core/method/prompts';
import { complete } from '../../core/method/text-model';
import { loadWorld } from '../../core/pipeline/world';
import { INSTRUCTION_TEMPLATE } from '../../core/tokenizer/template';
import '../../core/worlds/index';
import {
  FAMILIES, makeTinyWorld, oracleJudge, oracleScore, parseTask, PHRASINGS, randomInstruction, ranksOf, responseWithScore, TINY_JUDGE_TEMPLATE, TASK_LIST_INSTRUCTION, TINY_SELF_INSTRUCT_TEMPLATE, tinyBaseModel, tinyModelConfig, tinyTokenizer,
} from '../../core/worlds/tiny';

const score = (instruction: string, response: string) => oracleScore(instruction, response).score;

/** [response, expected score] cases per instruction. */
const CASES: [string, [string, number][]][] = [
  ['Reverse: cat dog sun', [
    ['sun dog cat', 5],
    ['  sun   dog cat ', 5], // whitespace is not content
    ['sun dog cat.', 4], // punctuation is extra
    ['The answer is sun dog cat', 4],
    ['sun dog cat sun dog cat', 4], // repeated answer
    ['sun, dog, cat', 4],
    ['SUN DOG CAT', 4], // case differs from the exact answer
    ['cat dog sun', 3], // right items, wrong order (the input echoed)
    ['dog sun cat', 3],
    ['sun tree dog cat', 3], // every item, a stranger between
    ['sun dog', 2], // 2 of 3
    ['cat sun', 2],
    ['sun', 1], // 1 of 3
    ['cat tree moon', 1],
    ['tree moon', 0], // none of the input's words
    ['7', 0],
    ['I do not know.', 0],
    ['', 0],
    ['   \n ', 0],
  ]],
  ['Sort these numbers: 4 1 3 1', [
    ['1 1 3 4', 5],
    ['Sorted: 1 1 3 4', 4],
    ['1 1 3 4 1 1 3 4', 4],
    ['1 1 3 4 9', 4],
    ['1 3 4', 2], // a repeated item counts once per copy: 3 of 4
    ['4 1 3 1', 3],
    ['1 1 4 3', 3],
    ['1 4', 2],
    ['4', 1],
    ['9 8', 0],
    ['cat', 0],
  ]],
  ['Count the words: cat dog cat', [
    ['3', 5],
    ['three', 4], // the right number, not in the plain form
    ['There are 3 words.', 4],
    ['3 3', 4],
    ['3 4', 3], // the right count among wrong ones
    ['2', 2], // off by one
    ['4', 2],
    ['7', 1],
    ['cat dog cat', 1], // relevant words, no count
    ['moon', 0],
    ['', 0],
  ]],
  ['Repeat cat 3 times', [
    ['cat cat cat', 5],
    ['cat cat cat cat', 4], // one too many: the answer plus extra
    ['cat cat cat.', 4],
    ['cat dog cat cat', 3],
    ['cat cat', 2],
    ['cat', 1],
    ['cat 3 times', 1],
    ['dog dog dog', 0],
  ]],
  ['Write in capitals: cat dog', [
    ['CAT DOG', 5],
    ['Here: CAT DOG', 4],
    ['CAT DOG CAT DOG', 4],
    ['DOG CAT', 3],
    ['CAT dog', 2],
    ['cat dog', 1], // relevant, but nothing in capitals
    ['Cat Dog', 1],
    ['SUN', 0],
  ]],
];

describe('tiny world oracle', () => {
  for (const [instruction, cases] of CASES) {
    it(`scores every level for "${instruction}"`, () => {
      for (const [response, expected] of cases) {
        assert.equal(score(instruction, response), expected, `${JSON.stringify(response)} should score ${expected}`);
      }
      const levels = new Set(cases.map(([, s]) => s));
      for (let s = 0; s <= 5; s++) assert.ok(levels.has(s), `no case of score ${s}`);
    });
  }

  it('reads every phrasing of every family, and new phrasings by keyword', () => {
    const rng = new Rng(1);
    for (const family of FAMILIES) {
      for (let i = 0; i < 40; i++) {
        const instruction = randomInstruction(family, rng);
        const parsed = parseTask(instruction);
        assert.ok(parsed.ok && parsed.task.family === family, `${instruction} → ${JSON.stringify(parsed)}`);
      }
      assert.equal(PHRASINGS[family].length, 4);
    }
    assert.deepEqual(parseTask('Repeat 3 times: owl'), { ok: true, task: { family: 'repeat', items: ['owl'], expected: ['owl', 'owl', 'owl'] } });
    assert.deepEqual(parseTask('Say moon two times.'), { ok: true, task: { family: 'repeat', items: ['moon'], expected: ['moon', 'moon'] } });
    assert.equal(score('Please reverse this list: a b c', 'c b a'), 5);
    assert.equal(score('Sort from small to big: 3 2', '2 3'), 5);
    assert.equal(score('Reverse the order: 1 2 3', '3 2 1'), 0); // reverse needs words
  });

  it('scores unknown or unreadable instructions 0 with a reason', () => {
    for (const instruction of ['Write a poem about the sea.', 'Translate: cat', 'Sort: cat dog', 'Reverse:', 'Repeat cat many times', `Count: ${'a '.repeat(13)}`]) {
      const v = oracleScore(instruction, 'cat');
      assert.equal(v.score, 0, instruction);
      assert.match(v.justification, /^Not a task I can check: .+\.$/);
    }
  });

  it('gives a justification that names the level, and judges as a pointwise judge', async () => {
    assert.equal(oracleScore('Reverse: cat dog sun', 'cat dog sun').justification, 'Every item, but not in the right order.');
    assert.equal(oracleScore('Count: cat dog', '3').justification, 'Close, but the count is off by one.');
    const judge = oracleJudge();
    assert.equal(judge.name, 'oracle');
    assert.equal(judge.kind, 'pointwise');
    assert.deepEqual(await judge.score([{ instruction: 'Sort: 2 1', response: '1 2' }, { instruction: 'Sort: 2 1', response: '' }]), [5, 0]);
  });
});

describe('tiny world data', () => {
  const world = makeTinyWorld(7);

  it('is deterministic per seed', () => {
    assert.deepEqual(makeTinyWorld(7), world);
    const other = makeTinyWorld(8);
    assert.notDeepEqual(other.ift, world.ift);
    assert.notDeepEqual(other.eft, world.eft);
    assert.notDeepEqual(other.evalPrompts, world.evalPrompts);
  });

  it('has the default sizes and valid rows', () => {
    assert.equal(world.ift.length, 520);
    assert.equal(world.eft.length, 480);
    assert.equal(world.evalPrompts.length, 100);
    assert.equal(world.rankedEval.length, 50);
    for (const r of world.ift) IftRow.parse(r);
    for (const r of world.eft) EftRow.parse(r);
    for (const r of world.evalPrompts) assert.equal(PromptRow.parse(r).source, 'eval');
    for (const r of world.rankedEval) RankedSetRow.parse(r);
    const small = makeTinyWorld(7, { ift: 12, eft: 12, eval: 5, ranked: 3, pretrainPages: 2, pretrainSentences: 2, taskLists: 2 });
    assert.deepEqual([small.ift.length - 2, small.eft.length, small.evalPrompts.length, small.rankedEval.length, small.pretrain.length], [12, 12, 5, 3, 4]);
  });

  it('answers every IFT instruction correctly, across all families', () => {
    const families = new Map<string, number>();
    for (const r of world.ift.filter((row) => row.instruction !== TASK_LIST_INSTRUCTION)) {
      assert.equal(score(r.instruction, r.response), 5, r.instruction);
      const p = parseTask(r.instruction);
      assert.ok(p.ok);
      families.set(p.task.family, (families.get(p.task.family) ?? 0) + 1);
    }
    assert.deepEqual([...families.values()], [100, 100, 100, 100, 100]);
  });

  it('balances EFT scores and writes the oracle judgment', () => {
    const counts = [0, 0, 0, 0, 0, 0];
    for (const r of world.eft) {
      const v = oracleScore(r.instruction, r.response);
      assert.equal(v.score, r.score, `${r.instruction} / ${r.response}`);
      assert.equal(r.judgment, `${v.justification}\nScore: ${r.score}`);
      assert.deepEqual(parseJudgeScore(r.judgment), { ok: true, score: r.score });
      counts[r.score]!++;
    }
    assert.deepEqual(counts, [80, 80, 80, 80, 80, 80]);
  });

  it('keeps held-out prompts out of every training split', () => {
    const evalSet = new Set([...world.evalPrompts.map((p) => p.instruction), ...world.rankedEval.map((s) => s.instruction)]);
    assert.equal(evalSet.size, world.evalPrompts.length + world.rankedEval.length);
    for (const r of [...world.ift, ...world.eft]) assert.ok(!evalSet.has(r.instruction), r.instruction);
    const pretrainText = world.pretrain.join('\n');
    for (const e of evalSet) assert.ok(!pretrainText.includes(`Task: ${e}\n`) && !pretrainText.endsWith(`Task: ${e}`), e);
    for (const p of world.evalPrompts) assert.ok(parseTask(p.instruction).ok);
  });

  it('ranks each set as the oracle does, rank 0 best, ties sharing a rank', () => {
    let ties = 0;
    for (const set of world.rankedEval) {
      assert.equal(set.responses.length, 4);
      assert.equal(new Set(set.responses.map((r) => r.text)).size, 4);
      const scores = set.responses.map((r) => score(set.instruction, r.text));
      assert.deepEqual(set.responses.map((r) => r.rank), ranksOf(scores));
      if (new Set(scores).size < 4) ties++;
    }
    assert.ok(ties > 0 && ties < world.rankedEval.length / 2, `ties in ${ties} sets`);
    assert.deepEqual(ranksOf([3, 5, 3, 0]), [1, 0, 1, 2]);
  });

  it('gives the oracle judge a perfect pairwise accuracy on the ranked sets', async () => {
    const m = await evaluateJudge(oracleJudge(), world.rankedEval);
    assert.equal(m.pairwiseAccuracy, 1);
    assert.equal(m.exactMatch, 1);
  });

  it('pretrains on task lines and prose, never on answers', () => {
    const pages = world.pretrain.filter((t) => t.includes('\nTask: '));
    assert.equal(pages.length, 240);
    assert.equal(world.pretrain.length - pages.length, 240);
    const answers = new Set(world.ift.map((r) => r.response));
    for (const t of world.pretrain) for (const line of t.split('\n')) assert.ok(!answers.has(line.replace(/^Task: /, '')) || parseTask(line.replace(/^Task: /, '')).ok, line);
    for (const p of pages) assert.ok(!p.endsWith('Task:'));
  });

  it('finds responses for every target score of every family', () => {
    const rng = new Rng(3);
    for (const family of FAMILIES) {
      for (let target = 0; target <= 5; target++) {
        let found = 0;
        for (let i = 0; i < 20; i++) {
          const instruction = randomInstruction(family, rng);
          const hit = responseWithScore(instruction, target, rng);
          if (hit) {
            assert.equal(score(instruction, hit.response), target);
            found++;
          }
        }
        assert.ok(found > 0, `${family} never scored ${target}`);
      }
    }
  });
});

describe('tiny world model and judge template', () => {
  it('has a short judge template with both slots that fits the model', () => {
    const config = tinyModelConfig();
    const tokenizer = tinyTokenizer();
    assert.equal(config.vocabSize, tokenizer.vocabSize);
    assert.ok(TINY_JUDGE_TEMPLATE.length < 200);
    assert.match(TINY_JUDGE_TEMPLATE, /Score: N/);
    const world = makeTinyWorld(1);
    const longest = Math.max(...world.eft.map((r) => tokenizer.encode(INSTRUCTION_TEMPLATE.format(judgePrompt(r.instruction, r.response, TINY_JUDGE_TEMPLATE))).length + tokenizer.encode(r.judgment).length + 1));
    assert.ok(longest <= 96, `${longest} tokens`);
    assert.ok(longest < config.maxPositions);
    for (const text of world.pretrain) assert.ok(tokenizer.encode(text).length + 2 <= config.maxPositions, text);
  });

  it('pretrains on pages in its own self-instruct template, which IFT task lists teach too', () => {
    const world = makeTinyWorld(2);
    const header = INSTRUCTION_TEMPLATE.format(TASK_LIST_INSTRUCTION);
    const pages = world.pretrain.filter((t) => t.includes('\nTask: '));
    for (const page of pages) assert.ok(page.startsWith(`${header}Task: `) && !page.endsWith('Task:'), page);
    assert.equal(selfInstructPrompt(['Reverse: cat dog', 'Sort: 2 1'], TINY_SELF_INSTRUCT_TEMPLATE), `${header}Task: Reverse: cat dog\nTask: Sort: 2 1\nTask:`);
    const lists = world.ift.filter((r) => r.instruction === TASK_LIST_INSTRUCTION);
    assert.equal(lists.length, 20);
    const held = new Set([...world.evalPrompts.map((p) => p.instruction), ...world.rankedEval.map((r) => r.instruction)]);
    for (const r of lists) {
      const lines = r.response.split('\n');
      assert.ok(lines.length >= 3 && lines.length <= 4);
      for (const line of lines) {
        assert.match(line, /^Task: /);
        assert.ok(parseTask(line.slice(6)).ok && !held.has(line.slice(6)), line);
      }
    }
  });

  it('is registered as the built-in world "tiny", with its data, oracle and templates', async () => {
    const world = await loadWorld('tiny');
    assert.ok(world);
    assert.equal(world.name, 'tiny');
    assert.deepEqual(world.data(3).ift, makeTinyWorld(3).ift);
    assert.deepEqual(Object.keys(world.data(3)).sort(), ['eft', 'evalPrompts', 'ift', 'rankedEval']);
    assert.equal(world.judgeTemplate, TINY_JUDGE_TEMPLATE);
    assert.equal(world.selfInstructTemplate, TINY_SELF_INSTRUCT_TEMPLATE);
    assert.equal(world.oracleScore('Reverse: cat dog', 'dog cat', 0), 5);
  });

  it('makes M0 by a short pretraining, reporting progress and stopping when aborted', async () => {
    await initBackend();
    const world = makeTinyWorld(4, { ift: 10, eft: 12, eval: 2, ranked: 1, pretrainPages: 16, pretrainSentences: 16 });
    const steps: number[] = [];
    const tm = await tinyBaseModel(4, world.pretrain, { epochs: 1, batchSize: 8, hiddenSize: 16, numLayers: 1 }, (step, total, loss) => {
      assert.equal(total, 4);
      assert.ok(Number.isFinite(loss));
      steps.push(step);
    });
    assert.deepEqual(steps, [1, 2, 3, 4]);
    assert.equal(tm.tokenizer.vocabSize, tinyTokenizer().vocabSize);
    assert.equal(tm.template, INSTRUCTION_TEMPLATE);
    const [reply] = await complete(tm, [{ prompt: INSTRUCTION_TEMPLATE.format('Reverse: cat dog'), seed: 1 }], { maxNewTokens: 4 });
    assert.equal(typeof reply!.text, 'string');
    tm.model.dispose();

    const controller = new AbortController();
    controller.abort();
    const stopped: number[] = [];
    const untrained = await tinyBaseModel(4, world.pretrain, { epochs: 1, batchSize: 8, hiddenSize: 16, numLayers: 1 }, (step) => stopped.push(step), controller.signal);
    assert.deepEqual(stopped, []);
    untrained.model.dispose();
  });
});
