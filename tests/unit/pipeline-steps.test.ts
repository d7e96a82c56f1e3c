import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseConfig, presetConfig, type RunConfig } from '../../core/config';
import { DatasetError } from '../../core/data/jsonl';
import { CandidateRow, HeadToHeadRow, JudgmentRow, PromptRow } from '../../core/data/rows';
import { saveTextModel } from '../../core/method/text-model';
import { DecoderModel } from '../../core/model/decoder';
import { fetchModel, getJson, getJsonl, putJsonl, putModel } from '../../core/pipeline/artifacts';
import * as steps from '../../core/pipeline/steps';
import type { ArtifactRef } from '../../core/store/artifact';
import { LocalStore } from '../../core/store/local';
import { makeTinyWorld, oracleScore, parseTask, tinyModelConfig, tinyTextModel } from '../../core/worlds/tiny';
import { writePipelineFixture } from '../support/pipeline-fixture';
import { tempDir } from '../support/servers';

describe('pipeline steps (no Temporal): keyed by their inputs, recomputed only when those change', () => {
  const tmp = tempDir('steps');
  let config: RunConfig;
  let ctx: steps.StepContext;
  const saved = process.env.SRLM_MODEL_CACHE;

  before(async () => {
    const fixture = await writePipelineFixture(path.join(tmp.dir, 'fixture'));
    const c = fixture.configFor(path.join(tmp.dir, 'store'), { model: 'm', orchestration: 'o' });
    config = c;
    process.env.SRLM_MODEL_CACHE = path.join(tmp.dir, 'cache');
    ctx = { store: new LocalStore(path.join(tmp.dir, 'store')), backend: 'test', scratch: path.join(tmp.dir, 'scratch'), heartbeat: () => undefined };
  });
  after(() => {
    if (saved === undefined) delete process.env.SRLM_MODEL_CACHE;
    else process.env.SRLM_MODEL_CACHE = saved;
    tmp.remove();
  });

  it('reuses finished steps, and a changed setting recomputes only the steps it feeds', async () => {
    const runId = 'steps';
    const data = await steps.prepareData(ctx, { runId, config });
    assert.deepEqual(data.counts, { ift: 32, eft: 24, evalPrompts: 6, rankedEval: 3 });
    const base = await steps.prepareBase(ctx, { runId, config });
    const m1 = await steps.sftStep(ctx, { runId, config, name: 'M1', base: base.model, ift: data.ift, eft: data.eft });
    assert.equal(m1.reused, false);
    assert.equal((await steps.sftStep(ctx, { runId, config, name: 'M1', base: base.model, ift: data.ift, eft: data.eft })).reused, true);

    const run = async (c: RunConfig) => {
      const p = await steps.promptsStep(ctx, { runId, config: c, iteration: 1, model: m1.model, ift: data.ift, earlier: [], evalPrompts: data.evalPrompts! });
      const cand = await steps.candidatesStep(ctx, { runId, config: c, iteration: 1, model: m1.model, prompts: p.prompts, shard: 0, shards: 1 });
      const j = await steps.judgeStep(ctx, { runId, config: c, iteration: 1, model: m1.model, candidates: cand.candidates, shard: 0 });
      return [p, cand, j];
    };
    const first = await run(config);
    assert.deepEqual(first.map((s) => s.reused), [false, false, false]);
    assert.deepEqual((await run(config)).map((s) => s.reused), [true, true, true]);
    // Another batch size changes how the work runs, not what it makes: everything is reused.
    const rebatched: RunConfig = { ...config, iterations: { ...config.iterations, overrides: [{ iteration: 1, candidates: { batchSize: 3 }, judge: { batchSize: 5 } }] } };
    assert.deepEqual((await run(rebatched)).map((s) => s.reused), [true, true, true]);
    const withJudge = (c: RunConfig, samples: number): RunConfig => ({ ...c, iterations: { ...c.iterations, overrides: [{ iteration: 1, judge: { samples } }] } });
    // More judge samples: prompts and candidates are reused, judgments recomputed.
    const changedJudge = await run(withJudge(config, 4));
    assert.deepEqual(changedJudge.map((s) => s.reused), [true, true, false]);
    assert.equal((changedJudge[2] as { stats: { judgments: number } }).stats.judgments, 4 * (first[1] as { count: number }).count);
    // More candidates per prompt: candidates and judgments recomputed, prompts reused.
    const moreCandidates: RunConfig = { ...config, iterations: { ...config.iterations, overrides: [{ iteration: 1, candidates: { n: 2 } }] } };
    assert.deepEqual((await run(moreCandidates)).map((s) => s.reused), [true, false, false]);
    // A fixed prompt generator named by its directory (here a copy of M1's files): stored with the
    // run, a step of its own, and the same prompts as M1 writes as 'self'.
    const fixed: RunConfig = { ...config, iterations: { ...config.iterations, overrides: [{ iteration: 1, prompts: { generator: await fetchModel(ctx.store, m1.model) } }] } };
    const p = await steps.promptsStep(ctx, { runId, config: fixed, iteration: 1, model: m1.model, ift: data.ift, earlier: [], evalPrompts: data.evalPrompts! });
    assert.equal(p.reused, false);
    assert.notEqual(p.key, first[0]!.key);
    assert.deepEqual(await getJsonl(ctx.store, p.prompts, PromptRow), await getJsonl(ctx.store, (first[0] as { prompts: ArtifactRef }).prompts, PromptRow));
    assert.ok((await ctx.store.list(`runs/${runId}/fixed-models/`)).some((l) => l.key.endsWith('model.json')));
  });

  it('rejects a bad dataset row with its file, line and field before anything is stored', async () => {
    const bad = path.join(tmp.dir, 'eft-bad.jsonl');
    writeFileSync(bad, '{"instruction": "Reverse: a b", "response": "b a", "judgment": "Score: 5", "score": 5}\n{"instruction": "Reverse: c d", "response": "d c", "judgment": "Score: 9", "score": 9}\n');
    await assert.rejects(steps.prepareData(ctx, { runId: 'bad', config: { ...config, data: { ...config.data, eft: bad } } }), (err: unknown) => {
      assert.ok(err instanceof DatasetError);
      assert.match(err.message, /eft-bad\.jsonl:2: score: /);
      return true;
    });
    assert.deepEqual(await ctx.store.list('runs/bad/'), []);
  });
});

describe('pipeline steps on the tiny world: the reference arms’ judges and the oracle diagnostics', () => {
  const tmp = tempDir('steps-tiny');
  let config: RunConfig;
  let ctx: steps.StepContext;
  let model: ArtifactRef;
  let prompts: ArtifactRef;
  let candidates: ArtifactRef;
  let evalPrompts: ArtifactRef;
  const runId = 'tiny-steps';
  const saved = process.env.SRLM_MODEL_CACHE;
  const judgeBy = (by: 'self' | 'random' | 'oracle'): RunConfig => ({ ...config, iterations: { ...config.iterations, settings: { ...config.iterations.settings, judge: { ...config.iterations.settings.judge, by } } } });

  before(async () => {
    process.env.SRLM_MODEL_CACHE = path.join(tmp.dir, 'cache');
    config = parseConfig({ ...presetConfig('lists'), store: { uri: path.join(tmp.dir, 'store') }, evaluation: { judge: 'oracle', maxNewTokens: 8, onPolicyPrompts: 6 } });
    ctx = { store: new LocalStore(path.join(tmp.dir, 'store')), backend: 'test', scratch: path.join(tmp.dir, 'scratch'), heartbeat: () => undefined };
    // A small untrained model of the world's vocabulary: its answers are noise, of varied oracle score.
    const tm = tinyTextModel(DecoderModel.initialise(tinyModelConfig({ hiddenSize: 16, numLayers: 1, numHeads: 2 }), 3));
    await saveTextModel(tm, path.join(tmp.dir, 'model'));
    tm.model.dispose();
    model = await putModel(ctx.store, `runs/${runId}/model`, path.join(tmp.dir, 'model'));
    const world = makeTinyWorld(0, { ift: 10, eft: 12, eval: 8, ranked: 2 });
    // The world's own instructions, answered with 4 candidates each: readable by the oracle.
    prompts = await putJsonl(ctx.store, `runs/${runId}/prompts.jsonl`, world.ift.slice(0, 10).filter((r) => parseTask(r.instruction).ok).map((r, i) => ({ id: `p${i}`, instruction: r.instruction, source: 'ift' })), PromptRow);
    evalPrompts = await putJsonl(ctx.store, `runs/${runId}/eval.jsonl`, world.evalPrompts, PromptRow);
    const c = await steps.candidatesStep(ctx, { runId, config: { ...config, iterations: { ...config.iterations, settings: { ...config.iterations.settings, candidates: { ...config.iterations.settings.candidates, temperature: 1.5, topP: 1 } } } }, iteration: 1, model, prompts, shard: 0, shards: 1 });
    candidates = c.candidates;
  });
  after(() => {
    if (saved === undefined) delete process.env.SRLM_MODEL_CACHE;
    else process.env.SRLM_MODEL_CACHE = saved;
    tmp.remove();
  });

  it('scores candidates with the oracle (ceiling) or at random (floor), each a step of its own', async () => {
    const rows = await getJsonl(ctx.store, candidates, CandidateRow);
    const oracle = await steps.judgeStep(ctx, { runId, config: judgeBy('oracle'), iteration: 1, model, candidates, shard: 0 });
    const oracleRows = await getJsonl(ctx.store, oracle.judgments, JudgmentRow);
    assert.equal(oracleRows.length, rows.length * config.iterations.settings.judge.samples);
    for (const j of oracleRows) {
      const c = rows.find((r) => r.promptId === j.promptId && r.index === j.candidate)!;
      assert.equal(j.score, oracleScore(c.instruction, c.response).score);
    }
    const random = await steps.judgeStep(ctx, { runId, config: judgeBy('random'), iteration: 1, model, candidates, shard: 0 });
    assert.notEqual(random.key, oracle.key);
    const randomRows = await getJsonl(ctx.store, random.judgments, JudgmentRow);
    assert.ok(randomRows.every((j) => Number.isInteger(j.score) && j.score! >= 0 && j.score! <= 5));
    assert.ok(new Set(randomRows.map((j) => j.score)).size >= 4, 'random scores spread over the scale');
    // Seeded: a fresh store gives the same random judgments.
    const fresh = new LocalStore(path.join(tmp.dir, 'store2'));
    const again = await steps.judgeStep({ ...ctx, store: fresh }, { runId, config: judgeBy('random'), iteration: 1, model, candidates: await putJsonl(fresh, 'c.jsonl', rows, CandidateRow), shard: 0 });
    assert.deepEqual(await getJsonl(fresh, again.judgments, JudgmentRow), randomRows);
  });

  it('reports how the pairs look to the oracle: with the oracle judging, every pair agrees and the judge is exact', async () => {
    const rows = await getJsonl(ctx.store, candidates, CandidateRow);
    const diagnose = async (by: 'oracle' | 'random') => {
      const c = judgeBy(by);
      const j = await steps.judgeStep(ctx, { runId, config: c, iteration: 1, model, candidates, shard: 0 });
      const p = await steps.pairsStep(ctx, { runId, config: c, iteration: 1, candidates: [candidates], judgments: [j.judgments] });
      const d = await steps.iterationDiagnosticsStep(ctx, { runId, config: c, iteration: 1, candidates: [candidates], judgments: [j.judgments], pairs: p.pairs });
      return { pairs: p.stats.pairs, d: d.diagnostics! };
    };
    const ceiling = await diagnose('oracle');
    assert.ok(ceiling.pairs > 0, 'the noisy candidates differ in oracle score');
    assert.deepEqual(ceiling.d.pairs, { pairs: ceiling.pairs, agree: ceiling.pairs, tie: 0, reversed: 0 });
    assert.equal(ceiling.d.judge.accuracy, 1);
    const byHand = rows.reduce((s, c) => s + oracleScore(c.instruction, c.response).score, 0) / rows.length;
    assert.ok(Math.abs(ceiling.d.judge.candidateOracleMean - byHand) < 1e-12);
    const floor = await diagnose('random');
    assert.equal(floor.d.pairs.agree + floor.d.pairs.tie + floor.d.pairs.reversed, floor.pairs);
    assert.ok(floor.d.judge.accuracy < 1);
  });

  it('draws new prompts from the world’s task sampler (prompts.generator: world): real tasks, none seen before', async () => {
    const c: RunConfig = { ...config, iterations: { ...config.iterations, settings: { ...config.iterations.settings, prompts: { ...config.iterations.settings.prompts, generator: 'world', count: 30 } } } };
    const data = await steps.prepareData(ctx, { runId, config: c });
    const first = await steps.promptsStep(ctx, { runId, config: c, iteration: 1, model, ift: data.ift, earlier: [], evalPrompts: data.evalPrompts! });
    const rows = await getJsonl(ctx.store, first.prompts, PromptRow);
    assert.equal(rows.length, 30);
    assert.ok(rows.every((r) => parseTask(r.instruction).ok && r.source === 'generated'));
    const world = makeTinyWorld(0);
    const seen = new Set([...world.ift, ...world.eft, ...world.evalPrompts, ...world.rankedEval].map((r) => r.instruction));
    assert.ok(rows.every((r) => !seen.has(r.instruction)), 'no instruction of the world’s own splits');
    const second = await steps.promptsStep(ctx, { runId, config: c, iteration: 2, model, ift: data.ift, earlier: [first.prompts], evalPrompts: data.evalPrompts! });
    const again = new Set(rows.map((r) => r.instruction));
    assert.ok((await getJsonl(ctx.store, second.prompts, PromptRow)).every((r) => !again.has(r.instruction)), 'none of an earlier iteration’s');
    assert.equal((await steps.promptsStep(ctx, { runId, config: c, iteration: 1, model, ift: data.ift, earlier: [], evalPrompts: data.evalPrompts! })).reused, true);
  });

  it('compares two models with sampled decoding beside greedy: samples made once per model, the same seeds for both', async () => {
    const sampledConfig: RunConfig = { ...config, evaluation: { ...config.evaluation, sampled: true, samples: 3 } };
    const other = await putModel(ctx.store, `runs/${runId}/other`, await (async () => {
      const tm = tinyTextModel(DecoderModel.initialise(tinyModelConfig({ hiddenSize: 16, numLayers: 1, numHeads: 2 }), 4));
      await saveTextModel(tm, path.join(tmp.dir, 'other'));
      tm.model.dispose();
      return path.join(tmp.dir, 'other');
    })());
    const greedy = async (name: string, m: ArtifactRef) => ({ name, model: m, responses: (await steps.responsesStep(ctx, { runId, config, name, model: m, evalPrompts })).responses });
    const [x, y] = [await greedy('X', model), await greedy('Y', other)];
    const plain = await steps.headToHeadStep(ctx, { runId, config, a: x, b: y, evalPrompts, judge: 'oracle' });
    assert.equal(plain.sampled, undefined, 'off by default');
    const h = await steps.headToHeadStep(ctx, { runId, config: sampledConfig, a: x, b: y, evalPrompts, judge: 'oracle' });
    assert.deepEqual(h.summary, plain.summary, 'the greedy comparison is unchanged');
    const rows = await getJsonl(ctx.store, h.sampled!.rows, HeadToHeadRow);
    const prompts = await getJsonl(ctx.store, evalPrompts, PromptRow);
    assert.equal(rows.length, prompts.length * 3);
    assert.deepEqual([h.sampled!.summary.prompts, h.sampled!.summary.samples, h.sampled!.summary.n], [prompts.length, 3, prompts.length * 3]);
    // Each outcome is the oracle's verdict on the two samples, recomputed here.
    for (const r of rows) {
      const [sa, sb] = [oracleScore(r.instruction, r.responseA).score, oracleScore(r.instruction, r.responseB).score];
      assert.equal(r.outcome, sa > sb ? 'a' : sb > sa ? 'b' : 'tie');
    }
    assert.ok(new Set(rows.filter((r) => r.promptId.endsWith('#0') || r.promptId.endsWith('#1')).map((r) => r.responseA)).size > 1, 'the samples differ');
    // A model against itself draws the same samples (the same seeds): every comparison ties.
    const self = await steps.headToHeadStep(ctx, { runId, config: sampledConfig, a: x, b: { ...x, name: 'X2' }, evalPrompts, judge: 'oracle' });
    assert.deepEqual([self.sampled!.summary.ties, self.sampled!.summary.winRate], [prompts.length * 3, 0.5]);
    // X's samples were made once and shared by both comparisons.
    const made = (await ctx.store.list(`runs/${runId}/steps/eval/samples-X-`)).filter((k) => k.key.endsWith('/result.json'));
    assert.equal(made.length, 1);
  });

  it('measures a model by the oracle: its greedy answers, and its own judge on its own candidates', async () => {
    const responses = await steps.responsesStep(ctx, { runId, config, name: 'X', model, evalPrompts });
    const r = await steps.oracleEvalStep(ctx, { runId, config, name: 'X', model, responses: responses.responses, evalPrompts });
    const answers = await getJson<string[]>(ctx.store, responses.responses);
    const world = await getJsonl(ctx.store, evalPrompts, PromptRow);
    const byHand = answers.reduce((s, a, i) => s + oracleScore(world[i]!.instruction, a).score, 0) / answers.length;
    assert.ok(Math.abs(r.evaluation!.oracleMean - byHand) < 1e-12);
    const onPolicy = r.evaluation!.onPolicy!;
    assert.ok(onPolicy.prompts <= 6);
    assert.ok(Number.isFinite(onPolicy.candidateOracleMean));
    assert.equal((await steps.oracleEvalStep(ctx, { runId, config, name: 'X', model, responses: responses.responses, evalPrompts })).reused, true);
  });
});
