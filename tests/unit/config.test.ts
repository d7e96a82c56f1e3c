import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import {
  ConfigError,
  PRESETS,
  applyAssignments,
  loadConfigFile,
  parseConfig,
  presetConfig,
  settingsForIteration,
} from '../../core/config';
import { defaultRunId } from '../../cli/run-config';
import { canonicalJson } from '../../core/canonical-json';
import { InvalidInputError } from '../../core/errors';
import { registerWorld } from '../../core/pipeline/world';

const fixture = (name: string) => path.join(__dirname, '..', '..', '..', 'tests', 'fixtures', 'config', name);
const minimal = { model: { base: './m0' }, data: { ift: 'ift.jsonl', eft: 'eft.jsonl' } };

describe('run config', () => {
  it('fills in the paper\'s settings as defaults', () => {
    const c = parseConfig(minimal);
    const it1 = c.iterations.settings;
    assert.equal(c.iterations.count, 2); // M1 → M2 → M3
    assert.equal(it1.candidates.n, 4);
    assert.equal(it1.candidates.temperature, 0.7);
    assert.equal(it1.candidates.topP, 0.9);
    assert.equal(it1.judge.samples, 3);
    assert.equal(it1.dpo.beta, 0.1);
    assert.equal(it1.dpo.loss, 'sigmoid');
    assert.equal(it1.dpo.lr, 1e-6);
    assert.equal(it1.dpo.lrEnd, 1e-7);
    assert.equal(it1.dpo.batchSize, 16);
    assert.equal(it1.dpo.dropout, 0.1);
    assert.equal(it1.prompts.fewShotIft, 6);
    assert.equal(it1.prompts.fewShotGenerated, 2);
    assert.equal(it1.prompts.temperature, 0.6);
    assert.equal(it1.prompts.topP, 0.9);
    assert.equal(c.sft.lr, 5.5e-6);
    assert.equal(c.sft.lrEnd, 1.1e-6);
    assert.equal(c.sft.batchSize, 16);
    assert.equal(c.temporal.taskQueues.model, 'srlm-model');
    assert.equal(c.compute.backend, 'auto');
  });

  it('loads a YAML file and merges per-iteration overrides', () => {
    const c = loadConfigFile(fixture('good.yaml'));
    assert.equal(c.seed, 7);
    assert.equal(c.iterations.count, 3);
    assert.equal(settingsForIteration(c, 1).dpo.lr, 2e-6);
    assert.equal(settingsForIteration(c, 2).dpo.lr, 5e-7);
    assert.equal(settingsForIteration(c, 2).dpo.beta, 0.2, 'fields not overridden keep their shared value, not the default');
    assert.deepEqual(c.iterations.overrides, [{ iteration: 2, dpo: { lr: 5e-7 } }], 'an override holds only what it changes');
    assert.equal(settingsForIteration(c, 3).dpo.lr, 2e-6);
  });

  it('names the file, line and field of every mistake in a YAML file', () => {
    assert.throws(() => loadConfigFile(fixture('bad-beta.yaml')), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.ok(err instanceof InvalidInputError, 'config errors are non-retryable input errors');
      const byPath = Object.fromEntries(err.issues.map((i) => [i.path, i]));
      assert.equal(byPath['iterations.settings.dpo.beta']?.line, 12);
      assert.match(byPath['iterations.settings.dpo.beta']!.message, /number/);
      assert.equal(byPath['iterations.settings.candidates.temprature']?.line, 15);
      assert.match(byPath['iterations.settings.candidates.temprature']!.message, /unknown field/);
      assert.match(err.message, /bad-beta\.yaml:12:\d+: iterations\.settings\.dpo\.beta: /);
      assert.equal(err.issues.every((i) => i.file.endsWith('bad-beta.yaml')), true);
      return true;
    });
  });

  it('names the file, line and field in a JSON file, including a missing field', () => {
    assert.throws(() => loadConfigFile(fixture('bad.json')), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      const paths = err.issues.map((i) => i.path).sort();
      assert.deepEqual(paths, ['data.eft', 'sft.batchSize']);
      const batch = err.issues.find((i) => i.path === 'sft.batchSize')!;
      assert.equal(batch.line, 5);
      const eft = err.issues.find((i) => i.path === 'data.eft')!;
      assert.equal(eft.line, 4, 'a missing field points at its parent');
      return true;
    });
  });

  it('reports unreadable and malformed files clearly', () => {
    assert.throws(() => loadConfigFile(fixture('does-not-exist.yaml')), /cannot read config file .*does-not-exist\.yaml/);
  });

  it('applies --set assignments and validates them', () => {
    const c = applyAssignments(presetConfig('tiny'), ['seed=5', 'iterations.settings.dpo.lr=2e-5', 'store.uri=s3://b/p']);
    assert.equal(c.seed, 5);
    assert.equal(c.iterations.settings.dpo.lr, 2e-5);
    assert.equal(c.store.uri, 's3://b/p');
    assert.throws(() => applyAssignments(presetConfig('tiny'), ['iterations.settings.dpo.bta=1']), /iterations\.settings\.dpo\.bta: unknown field/);
    assert.throws(() => applyAssignments(presetConfig('tiny'), ['seed']), /expected key=value/);
  });

  it('keeps secrets out: the Temporal API key is named by an environment variable only', () => {
    assert.throws(() => parseConfig({ ...minimal, temporal: { apiKey: 'secret' } }), /temporal\.apiKey: unknown field/);
    assert.equal(parseConfig({ ...minimal, temporal: { apiKeyEnv: 'MY_KEY' } }).temporal.apiKeyEnv, 'MY_KEY');
  });

  it('refuses reference arms and an oracle judge without a built-in world, naming the field', () => {
    assert.throws(() => parseConfig({ ...minimal, evaluation: { arms: ['ceiling'] } }), /evaluation\.arms: the reference arms need a built-in world/);
    assert.throws(() => parseConfig({ ...minimal, iterations: { settings: { judge: { by: 'oracle' } } } }), /iterations\.settings\.judge\.by: "oracle" needs a built-in world/);
    assert.throws(() => parseConfig({ ...minimal, evaluation: { arms: ['floor'] } }), /evaluation\.arms\[0\]/);
    assert.throws(() => parseConfig({ ...minimal, iterations: { settings: { prompts: { generator: 'world' } } } }), /iterations\.settings\.prompts\.generator: "world" needs a built-in world/);
    const tiny = parseConfig(presetConfig('tiny'));
    assert.equal(tiny.iterations.settings.judge.by, 'self', 'the method judges itself');
  });

  it('accepts the example config in examples/ (the README points users at it)', () => {
    const c = loadConfigFile(path.join(__dirname, '..', '..', '..', 'examples', 'run.yaml'));
    assert.equal(c.store.uri, 's3://my-bucket/srlm');
    assert.equal(settingsForIteration(c, 2).dpo.lr, 5e-7);
  });

  it('has presets that validate', () => {
    for (const name of Object.keys(PRESETS)) assert.doesNotThrow(() => parseConfig(presetConfig(name), name));
    assert.throws(() => presetConfig('huge'), /unknown preset "huge"; available: tiny/);
  });
});

describe('default run ID', () => {
  it('follows the config, and the version of a built-in world it names', () => {
    const own = parseConfig(minimal);
    assert.equal(defaultRunId(own), defaultRunId(parseConfig(minimal)), 'the same config, the same ID');
    assert.notEqual(defaultRunId(own), defaultRunId(parseConfig({ ...minimal, seed: 1 })));
    assert.match(defaultRunId(own), /^run-s0-[0-9a-f]{10}$/);
    // A world registered for this test, at two versions: the same config gets a new ID.
    const load = async () => { throw new Error('not loaded'); };
    const config = parseConfig({ model: { base: 'builtin:test-world' }, data: { ift: 'builtin:test-world/ift', eft: 'builtin:test-world/eft' } });
    registerWorld('test-world', '1', load);
    const v1 = defaultRunId(config);
    registerWorld('test-world', '2', load);
    const v2 = defaultRunId(config);
    assert.notEqual(v1, v2);
    registerWorld('test-world', '1', load);
    assert.equal(defaultRunId(config), v1);
    // The user's own data: the ID is the config's hash alone, as before there were world versions.
    assert.equal(defaultRunId(own), `run-s0-${createHash('sha256').update(canonicalJson(own)).digest('hex').slice(0, 10)}`);
  });
});
