import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { DeterminismViolationError } from '@temporalio/workflow';
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import { bundleWorkflows } from '../../workers/create';

/** Histories of a full run (bench/pipeline.js --save-histories), committed so CI replays them with no server. */
const DIR = path.join(__dirname, '..', '..', '..', 'tests', 'fixtures', 'histories');
const quiet = { log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

function histories() {
  return readdirSync(DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({ workflowId: f.replace(/\.json$/, '').replace(/__/g, '/'), history: JSON.parse(readFileSync(path.join(DIR, f), 'utf8')) as unknown }));
}

describe('workflow replay (determinism)', () => {
  it('replays the committed histories of a full run with the current workflow code', async () => {
    const all = histories();
    assert.deepEqual(all.map((h) => h.workflowId), ['bench-pipeline', 'bench-pipeline/iteration-1', 'bench-pipeline/iteration-2']);
    const bundle = await bundleWorkflows();
    for (const { workflowId, history } of all) await Worker.runReplayHistory({ workflowBundle: bundle }, history, workflowId);
  });

  it('catches a change to the workflow code that would break running workflows', async () => {
    const [run] = histories();
    const broken = await bundleWorkflowCode({ workflowsPath: path.join(__dirname, '..', 'fixtures', 'broken-workflow', 'index.js'), logger: quiet });
    await assert.rejects(Worker.runReplayHistory({ workflowBundle: broken }, run!.history, run!.workflowId), (err: unknown) => {
      assert.ok(err instanceof DeterminismViolationError, String(err));
      return true;
    });
  });
});
