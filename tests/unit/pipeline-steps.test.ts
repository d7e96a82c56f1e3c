import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RunConfig } from '../../core/config';
import { DatasetError } from '../../core/data/jsonl';
import { PromptRow } from '../../core/data/rows';
import { fetchModel, getJsonl } from '../../core/pipeline/artifacts';
import * as steps from '../../core/pipeline/steps';
import type { ArtifactRef } from '../../core/store/artifact';
import { LocalStore } from '../../core/store/local';
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
    assert.deepEqual(data.counts, { ift: 32, eft: 16, evalPrompts: 6, rankedEval: 3 });
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
    const withJudge = (c: RunConfig, samples: number): RunConfig => ({ ...c, iterations: { ...c.iterations, overrides: [{ iteration: 1, judge: { samples } }] } });
    // More judge samples: prompts and candidates are reused, judgments recomputed.
    const changedJudge = await run(withJudge(config, 3));
    assert.deepEqual(changedJudge.map((s) => s.reused), [true, true, false]);
    assert.equal((changedJudge[2] as { stats: { judgments: number } }).stats.judgments, 3 * (first[1] as { count: number }).count);
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
