import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../core/compute/backend';
import type { CandidateRow, JudgmentRow } from '../../core/data/rows';
import { generateCandidates } from '../../core/method/candidates';
import { judgeCandidates } from '../../core/method/judging';
import { buildPairs } from '../../core/method/pairs';
import { degenerate, extractPrompt, generatePrompts, PromptFilter, selfInstructPrompt } from '../../core/method/prompts';
import { lcsLength, rougeL, RougePool } from '../../core/method/rouge';
import { complete, loadTextModel, saveTextModel, type TextModel } from '../../core/method/text-model';
import { judgePrompt } from '../../core/judge/prompt';
import { ModelConfig } from '../../core/model/config';
import { DecoderModel } from '../../core/model/decoder';
import { INSTRUCTION_TEMPLATE, jinjaTemplate, templateFromTokenizerConfig } from '../../core/tokenizer/template';
import { ByteTokenizer } from '../../core/tokenizer/tokenizer';
import { trainSft } from '../../core/train/sft';
import { tempDir } from '../support/servers';

const tinyConfig = ModelConfig.parse({
  family: 'llama', vocabSize: 259, hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 8,
  intermediateSize: 64, maxPositions: 160, normEps: 1e-5, tieEmbeddings: true, padTokenId: 0, eosTokenId: 1,
});

function randomTextModel(seed: number): TextModel {
  return { model: DecoderModel.initialise(tinyConfig, seed), tokenizer: new ByteTokenizer(), template: INSTRUCTION_TEMPLATE };
}

describe('ROUGE-L', () => {
  // Each value was also checked with the rouge_score package (Google's ROUGE implementation).
  it('matches hand-computed F-measures', () => {
    // the cat sat on the mat / the cat is on the mat: LCS = the cat on the mat = 5; P = R = 5/6.
    assert.ok(Math.abs(rougeL('The cat sat on the mat.', 'the cat is on the mat') - 5 / 6) < 1e-12);
    // 3 words vs 5 words, LCS 3: P = 1, R = 3/5, F = 2·0.6/1.6 = 0.75.
    assert.ok(Math.abs(rougeL('name three colours', 'Name, please, three bright colours!') - 0.75) < 1e-12);
    // Order matters: LCS of a b c d / d c b a is 1; F = 1/4.
    assert.equal(rougeL('a b c d', 'd c b a'), 0.25);
    assert.equal(rougeL('', 'anything'), 0);
    assert.equal(lcsLength('ABCBDAB', 'BDCABA'), 4);
  });

  it('pools texts and finds only those above the threshold', () => {
    const pool = new RougePool(['Write a poem about the sea.', 'List three prime numbers.']);
    assert.equal(pool.nearest('list three prime numbers', 0.7), 1);
    assert.ok(Math.abs(pool.nearest('Write a short poem about the sea.', 0.7)! - (2 * 6) / 13) < 1e-12);
    assert.equal(pool.nearest('Explain how tides work.', 0.7), null);
  });
});

describe('self-instruct prompts', () => {
  it('builds the few-shot prompt and extracts one task from a completion', () => {
    const text = selfInstructPrompt(['Add 2 and 3.', 'Name a  colour.\n']);
    assert.match(text, /\nTask: Add 2 and 3\.\nTask: Name a colour\.\nTask:$/);
    assert.throws(() => selfInstructPrompt(['x'], 'no slot'), /\{tasks\} slot/);
    assert.equal(extractPrompt(' Reverse the word "stone".\nTask: more'), 'Reverse the word "stone".');
    assert.equal(extractPrompt('\n  task: Count the vowels in banana'), 'Count the vowels in banana');
  });

  it('flags degenerate text', () => {
    assert.equal(degenerate('Sort these numbers: 4, 1, 3.'), null);
    assert.match(degenerate('aaaaaaaaaaaa')!, /repeated 10/);
    assert.match(degenerate('tell me tell me tell me tell me tell me more')!, /repeated 3/);
    assert.match(degenerate('1 2 3 4 5 6 7 8 + 9')!, /letters/);
    assert.match(degenerate('bad \u0007 bell')!, /control/);
  });

  it('keeps new prompts and rejects duplicates, near duplicates, bad lengths and degenerate text, counting each', () => {
    const filter = new PromptFilter({ rougeLThreshold: 0.7, minChars: 10, maxChars: 60 }, ['List three prime numbers.']);
    const verdicts = [
      'Name the capital of France.', // new
      'name the capital of  france.', // exact duplicate (case, spacing) of the one kept just before
      'List three prime numbers!', // near duplicate of the pool (F = 1)
      'Please name the capital city of France.', // near duplicate of a kept prompt: LCS 5 of 5 and 7 → F = 10/12
      'Hi.', // too short
      'x'.repeat(3) + ' '.repeat(2) + 'Describe '.repeat(1) + 'a very long and winding road through the hills at dusk.', // too long
      'go go go go go go go go go go', // degenerate
      '   ', // empty
      'Explain why the sky is blue.', // new
    ].map((t) => filter.consider(t));
    assert.deepEqual(verdicts, [null, 'duplicate', 'near duplicate', 'near duplicate', 'too short', 'too long', 'degenerate', 'empty', null]);
    assert.deepEqual(filter.rejected, { empty: 1, 'too short': 1, 'too long': 1, degenerate: 1, duplicate: 1, 'near duplicate': 2 });
  });

  it('generates prompts deterministically, with IDs per iteration and every generated text accounted for', async () => {
    await initBackend(undefined, () => undefined);
    const tm = randomTextModel(3);
    const settings = { count: 6, fewShotIft: 2, fewShotGenerated: 1, temperature: 1, topP: 1, maxNewTokens: 12, rougeLThreshold: 0.7, minChars: 1, maxChars: 200, maxRounds: 2 };
    const input = { iftPrompts: ['Add 2 and 3.', 'Name a colour.', 'Reverse abc.'], earlierGenerated: [], pool: ['Add 2 and 3.'], iteration: 2, seed: 9 };
    const a = await generatePrompts(tm, input, settings);
    const b = await generatePrompts(tm, input, { ...settings, batchSize: 4 });
    assert.deepEqual(a, b, 'same seed, different batch size: same prompts');
    const rejected = Object.values(a.stats.rejected).reduce((x, y) => x + y, 0);
    assert.ok(a.stats.kept + rejected <= a.stats.generated && a.stats.generated >= 9, JSON.stringify(a.stats));
    assert.equal(a.prompts.length, a.stats.kept);
    a.prompts.forEach((p, i) => {
      assert.equal(p.id, `it2-p0000${i}`);
      assert.equal(p.iteration, 2);
      assert.equal(p.source, 'generated');
    });
    tm.model.dispose();
  });
});

describe('candidates and judgments', () => {
  before(async () => {
    await initBackend(undefined, () => undefined);
  });

  it('samples N candidates per prompt, reproducibly whatever the batching, with a flat tensor count', async () => {
    const tm = randomTextModel(4);
    const prompts = [
      { id: 'p1', instruction: 'Add 2 and 3.', source: 'ift' as const },
      { id: 'p2', instruction: 'Name a colour, please.', source: 'generated' as const, iteration: 1 },
    ];
    const s = { n: 3, temperature: 0.7, topP: 0.9, topK: 0, maxNewTokens: 8 };
    const before = tf.memory().numTensors;
    const a = await generateCandidates(tm, prompts, { ...s, batchSize: 6 }, 11);
    const b = await generateCandidates(tm, prompts, { ...s, batchSize: 1 }, 11);
    const c = await generateCandidates(tm, [prompts[1]!], { ...s, batchSize: 2 }, 11);
    assert.equal(tf.memory().numTensors, before);
    assert.equal(a.length, 6);
    assert.deepEqual(a.map((x) => [x.promptId, x.index]), [['p1', 0], ['p1', 1], ['p1', 2], ['p2', 0], ['p2', 1], ['p2', 2]]);
    assert.deepEqual(a, b);
    assert.deepEqual(c, a.slice(3), 'a prompt gets the same candidates in another shard');
    assert.ok(new Set(a.map((x) => x.response)).size > 1, 'sampled candidates differ');
    const d = await generateCandidates(tm, prompts, s, 12);
    assert.notDeepEqual(d, a);
    tm.model.dispose();
  });

  it('judges each candidate k times and parses the scores (a model trained to answer "Score: 4")', async () => {
    const tm = randomTextModel(5);
    const { tokenizer } = tm;
    // Judge prompts are longer than the model's context: what the model sees is the prompt's end.
    const limit = tinyConfig.maxPositions - 12;
    const examples = ['Add 2 and 3.', 'Name a colour.', 'Say hi.', 'Count to 3.'].map((q, i) => {
      const prompt = tokenizer.encode(tm.template.format(judgePrompt(q, `answer ${i}`)));
      return { prompt: prompt.slice(prompt.length - limit), response: [...tokenizer.encode('Score: 4'), 1] };
    });
    await trainSft(tm.model, examples, {
      lr: 1e-2, lrEnd: 1e-3, schedule: 'cosine', warmupSteps: 0, batchSize: 4, gradientAccumulation: 1, epochs: 200, dropout: 0,
      weightDecay: 0, gradClip: 1, maxSeqLen: 200, checkpointEverySteps: 1e9, checkpointEverySeconds: 1e9, seed: 0, maxSteps: 60,
    });
    const candidates: CandidateRow[] = [0, 1].map((index) => ({ promptId: 'q', instruction: 'Add 2 and 3.', index, response: `It is ${5 + index}.`, finishReason: 'eos', tokens: 5 }));
    const { judgments, stats } = await judgeCandidates(tm, candidates, { samples: 3, temperature: 0.7, topP: 0.9, maxNewTokens: 12 }, 1);
    assert.equal(judgments.length, 6);
    assert.deepEqual(judgments.map((j) => [j.candidate, j.sample]), [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]);
    assert.deepEqual(judgments.map((j) => j.score), [4, 4, 4, 4, 4, 4], JSON.stringify(judgments.map((j) => j.reply)));
    assert.deepEqual(stats, { judgments: 6, parsed: 6, failed: 0, failureRate: 0 });
    // A random model's replies hold no score: counted as failures, never guessed.
    const random = randomTextModel(6);
    const r = await judgeCandidates(random, candidates, { samples: 2, temperature: 1, topP: 1, maxNewTokens: 6 }, 1);
    assert.equal(r.stats.failed, r.judgments.filter((j) => j.score === null).length);
    assert.equal(r.stats.failureRate, r.stats.failed / 4);
    tm.model.dispose();
    random.model.dispose();
  });

  it('completes greedily to the same text with any batch size, and cuts at stop strings', async () => {
    const tm = randomTextModel(7);
    const requests = ['a', 'bcd', 'efghij'].map((prompt) => ({ prompt, seed: 0 }));
    const one = await complete(tm, requests, { maxNewTokens: 10, greedy: true, batchSize: 1 });
    const all = await complete(tm, requests, { maxNewTokens: 10, greedy: true, batchSize: 3 });
    assert.deepEqual(one, all);
    const first = one[0]!.text;
    const cut = first.slice(1, 2);
    if (cut) {
      const stopped = await complete(tm, [requests[0]!], { maxNewTokens: 10, greedy: true, stop: [cut] });
      assert.equal(stopped[0]!.text, first.slice(0, first.indexOf(cut)));
      assert.equal(stopped[0]!.finishReason, 'stop');
    }
    tm.model.dispose();
  });
});

describe('prompt templates', () => {
  it('renders a transformers chat template for one user turn, and saves ours with the checkpoint', async () => {
    const llama2 = jinjaTemplate("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}{{ '[INST] ' + m['content'] + ' [/INST]' }}{% endif %}{% endfor %}", { bos_token: '<s>' });
    assert.equal(llama2.format('Hi there'), '<s>[INST] Hi there [/INST]');
    const fromConfig = templateFromTokenizerConfig({ chat_template: [{ name: 'default', template: "{{ messages[0]['content'] }}{% if add_generation_prompt %}\nA:{% endif %}" }], eos_token: { content: '</s>' } });
    // As in transformers, templates render with trim_blocks: the newline right after a block tag is dropped.
    assert.equal(fromConfig!.format('Q'), 'QA:');
    assert.equal(templateFromTokenizerConfig({}), null);
    assert.throws(() => jinjaTemplate('{% for %}'), /not a valid Jinja chat template/);
    // Ours, written as a chat template, renders exactly as the plain template.
    assert.equal(jinjaTemplate(INSTRUCTION_TEMPLATE.jinja).format('Sort: b a'), INSTRUCTION_TEMPLATE.format('Sort: b a'));
    const { dir, remove } = tempDir('srlm-textmodel-');
    const tm = randomTextModel(8);
    await saveTextModel(tm, dir);
    const loaded = loadTextModel(dir);
    assert.equal(loaded.template.format('Sort: b a'), '### Instruction:\nSort: b a\n\n### Response:\n');
    assert.equal(loaded.tokenizer.eosTokenId, 1);
    tm.model.dispose();
    loaded.model.dispose();
    remove();
  });
});

describe('preference pairs', () => {
  const cand = (promptId: string, index: number, response: string): CandidateRow => ({ promptId, instruction: `question ${promptId}`, index, response, finishReason: 'eos', tokens: response.length });
  const judged = (promptId: string, candidate: number, scores: (number | null)[]): JudgmentRow[] => scores.map((score, sample) => ({ promptId, candidate, sample, reply: score === null ? 'no idea' : `Score: ${score}`, score }));

  const candidates = [
    // a: means 4, 2, 4.5 (one failed judgment of three), unscored → chosen 2, rejected 1.
    cand('a', 0, 'four'), cand('a', 1, 'two'), cand('a', 2, 'four and a half'), cand('a', 3, 'nothing parsed'),
    // b: all equal → tie, no pair.
    cand('b', 0, 'x'), cand('b', 1, 'y'),
    // c: only one scored candidate → no pair.
    cand('c', 0, 'scored'), cand('c', 1, 'unscored'),
    // d: top tier 5 (short and long), bottom tier 1 (short and long) → length control picks shortest 5 vs longest 1.
    cand('d', 0, 'a long excellent answer'), cand('d', 1, 'short 5'), cand('d', 2, 'bad'), cand('d', 3, 'a much longer bad answer'),
    // e: gap 0.5 only.
    cand('e', 0, 'p'), cand('e', 1, 'q'),
    // f: identical texts score differently → dropped.
    cand('f', 0, 'same'), cand('f', 1, 'same'),
  ];
  const judgments = [
    ...judged('a', 0, [4, 4, 4]), ...judged('a', 1, [2, 3, 1]), ...judged('a', 2, [5, null, 4]), ...judged('a', 3, [null, null, null]),
    ...judged('b', 0, [3, 3, 3]), ...judged('b', 1, [3, 3, 3]),
    ...judged('c', 0, [2, 2, 2]), ...judged('c', 1, [null, null, null]),
    ...judged('d', 0, [5, 5, 5]), ...judged('d', 1, [5, 5, 5]), ...judged('d', 2, [1, 1, 1]), ...judged('d', 3, [1, 1, 1]),
    ...judged('e', 0, [3, 3, 3]), ...judged('e', 1, [3, 3, 4.5]),
    ...judged('f', 0, [5, 5, 5]), ...judged('f', 1, [0, 0, 0]),
  ];

  it('takes the highest vs the lowest mean score, dropping ties, unscored candidates and identical texts', () => {
    const { pairs, stats } = buildPairs(candidates, judgments, { minMargin: 0, lengthControl: false });
    assert.deepEqual(
      pairs.map((p) => [p.promptId, p.chosen, p.rejected, p.chosenScore, p.rejectedScore]),
      [['a', 'four and a half', 'two', 4.5, 2], ['d', 'a long excellent answer', 'bad', 5, 1], ['e', 'q', 'p', 3.5, 3]],
    );
    assert.deepEqual(stats, { prompts: 6, pairs: 3, tied: 1, tooFewScored: 1, belowMargin: 0, identical: 1, unscoredCandidates: 2, partlyScoredCandidates: 1 });
  });

  it('applies a minimum margin and the length control', () => {
    const { pairs, stats } = buildPairs(candidates, judgments, { minMargin: 1, lengthControl: true });
    assert.deepEqual(pairs.map((p) => [p.promptId, p.chosen, p.rejected]), [['a', 'four and a half', 'two'], ['d', 'short 5', 'a much longer bad answer']]);
    assert.equal(stats.belowMargin, 1);
  });

  it('refuses a candidate with no judgments at all', () => {
    assert.throws(() => buildPairs([cand('z', 0, 'a'), cand('z', 1, 'b')], judged('z', 0, [1]), { minMargin: 0, lengthControl: false }), /candidate 1 of prompt z has no judgments/);
  });
});
