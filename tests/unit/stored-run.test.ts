import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseConfig, presetConfig } from '../../core/config';
import { PromptRow } from '../../core/data/rows';
import { putJson, putJsonl } from '../../core/pipeline/artifacts';
import { emptyLine } from '../../workflows/types';
import { findStoredModel, readStoredRun, storedAnswers } from '../../core/pipeline/stored-run';
import { dataStepKey, responsesStepKey } from '../../core/pipeline/steps';
import { LocalStore } from '../../core/store/local';
import { tempDir } from '../support/servers';

describe('a finished run read from the store alone (what srlm export uses)', () => {
  let tmp: ReturnType<typeof tempDir>;
  let store: LocalStore;
  const config = parseConfig(presetConfig('tiny'), 'preset:tiny');
  const model = (key: string, marker: string) => putJson(store, `${key}/model.json`, { kind: 'srlm-model', files: {}, marker });

  before(() => {
    tmp = tempDir('stored-run');
    store = new LocalStore(tmp.dir);
  });
  after(() => tmp.remove());

  it('tells an unknown run from one that has not finished', async () => {
    await assert.rejects(readStoredRun(store, 'nothing-here'), /no run nothing-here in the store/);
    await putJson(store, 'runs/half/config.json', { runId: 'half', source: 'preset:tiny', config });
    await assert.rejects(readStoredRun(store, 'half'), /run half has no report .* yet/);
    await assert.rejects(readStoredRun(store, '../escape'), /invalid run ID/);
  });

  it('names the method\'s models as the report does and the arms\' as control/M2, and finds each one\'s own answers', async () => {
    const refs = {
      M0: await model('runs/r1/steps/base-x/model', 'M0'),
      SFT: await model('runs/r1/steps/sft-SFT-x/model', 'SFT'),
      M1: await model('runs/r1/steps/sft-M1-x/model', 'M1'),
      M2: await model('runs/r1/steps/iteration-1/dpo-a/model', 'method M2'),
      controlM2: await model('runs/r1/steps/iteration-1/dpo-b/model', 'control M2'),
    };
    const row = (name: string, uri: string) => ({ name, oracleMean: null, sampledOracleMean: null, uri });
    await putJson(store, 'runs/r1/config.json', { runId: 'r1', source: 'preset:tiny', config });
    await putJson(store, 'runs/r1/report/report.json', {
      runId: 'r1',
      ...emptyLine(),
      models: [row('M0', refs.M0.uri), row('SFT', refs.SFT.uri), row('M1', refs.M1.uri), row('M2', refs.M2.uri)],
      control: { judge: 'random', ...emptyLine(), models: [row('M2', refs.controlM2.uri)] },
    });
    const run = await readStoredRun(store, 'r1');
    assert.deepEqual(run.models.map((m) => m.name), ['M0', 'SFT', 'M1', 'M2', 'control/M2']);
    assert.throws(() => findStoredModel(run, 'M3'), /run r1 has no model "M3"; its models are M0, SFT, M1, M2, control\/M2/);

    // Seed data with three evaluation prompts, and answers for the method's M2 and the control arm's M2.
    const prompts: PromptRow[] = ['Reverse: a b', 'Sort: c a b', 'Count: x y'].map((instruction, i) => ({ id: `e${i}`, instruction, source: 'eval' }));
    const dataKey = dataStepKey('r1', config);
    const evalPrompts = await putJsonl(store, `${dataKey}/eval-prompts.jsonl`, prompts, PromptRow);
    await putJson(store, `${dataKey}/result.json`, { evalPrompts });
    const answer = async (name: string, ref: typeof refs.M2, texts: string[]) => {
      const key = responsesStepKey('r1', name, ref, evalPrompts, config.evaluation.maxNewTokens);
      await putJson(store, `${key}/result.json`, { responses: await putJson(store, `${key}/responses.json`, texts) });
    };
    await answer('M2', refs.M2, ['b a', 'a b c', '2']);
    await answer('M2', refs.controlM2, ['a b', 'c a b', 'two']);
    await answer('M1', refs.M1, ['only one']);

    assert.deepEqual(await storedAnswers(store, run, findStoredModel(run, 'M2')), [
      { id: 'e0', instruction: 'Reverse: a b', output: 'b a' },
      { id: 'e1', instruction: 'Sort: c a b', output: 'a b c' },
      { id: 'e2', instruction: 'Count: x y', output: '2' },
    ]);
    assert.deepEqual((await storedAnswers(store, run, findStoredModel(run, 'control/M2'))).map((a) => a.output), ['a b', 'c a b', 'two']);
    await assert.rejects(storedAnswers(store, run, findStoredModel(run, 'M1')), /holds 1 answers for 3 evaluation prompts/);
    await assert.rejects(storedAnswers(store, run, findStoredModel(run, 'M0')), /no stored answers of M0 .*not evaluated/);
    await assert.rejects(storedAnswers(store, run, findStoredModel(run, 'SFT')), /no stored answers of SFT/);
  });
});
