/**
 * How a finished run's own judge scored its candidates, against the oracle (built-in worlds only):
 * per iteration of the method, every judgment of every candidate, counted by the candidate's oracle
 * score (rows) and the judge's score (columns). The diagonal is the judge agreeing with the oracle;
 * a large column 5 under a low oracle score is the judge passing wrong answers, which is what makes
 * the chosen side of a pair wrong. Figures only; nothing is asserted.
 *
 * It reads the iterations' workflow histories to pair each judgments shard with the candidates it
 * judged (the arms' candidates share prompt IDs with the method's), so it needs the run's Temporal
 * (TEMPORAL_ADDRESS, else the local dev server) and its store.
 *
 *   npm run build && node dist/bench/judge-errors.js RUN_ID [--arm control|ceiling]
 */
import { WorkflowNotFoundError, defaultPayloadConverter } from '@temporalio/client';
import { connectClient, resolveTarget } from '../cli/common';
import type { RunConfig } from '../core/config';
import { CandidateRow, JudgmentRow } from '../core/data/rows';
import { candidateKey } from '../core/eval/oracle-diagnostics';
import { getJsonl } from '../core/pipeline/artifacts';
import { loadWorld } from '../core/pipeline/world';
import '../core/worlds/index';
import type { ArtifactRef } from '../core/store/artifact';
import { openStore } from '../core/store/open';

interface JudgeInput {
  config: RunConfig;
  candidates: ArtifactRef;
}

/** [oracle score 0-5][judge score 0-5, or 6 for a reply without a score] */
export type Confusion = number[][];

/** Adds one shard's judgments to `m` (a fresh matrix when not given) and returns it. */
export function confusion(
  candidates: CandidateRow[],
  judgments: JudgmentRow[],
  oracle: (instruction: string, response: string) => number,
  m: Confusion = Array.from({ length: 6 }, () => new Array<number>(7).fill(0)),
): Confusion {
  const byKey = new Map(candidates.map((c) => [candidateKey(c.promptId, c.index), c]));
  for (const j of judgments) {
    const c = byKey.get(candidateKey(j.promptId, j.candidate));
    if (!c) throw new Error(`judgment for candidate ${j.candidate} of ${j.promptId} has no candidate in its shard`);
    m[oracle(c.instruction, c.response)]![j.score ?? 6]! += 1;
  }
  return m;
}

function print(title: string, m: Confusion): void {
  const total = m.flat().reduce((a, b) => a + b, 0);
  const exact = m.reduce((a, row, o) => a + row[o]!, 0);
  console.log(`\n${title}: ${total} judgments, ${((100 * exact) / total).toFixed(1)}% give the oracle's score`);
  console.log(`  oracle  candidates×samples  ${['0', '1', '2', '3', '4', '5', 'none'].map((h) => h.padStart(6)).join('')}   judged 5`);
  m.forEach((row, o) => {
    const n = row.reduce((a, b) => a + b, 0);
    if (n === 0) return;
    const cells = row.map((x) => `${((100 * x) / n).toFixed(0)}%`.padStart(6)).join('');
    console.log(`  ${String(o).padStart(6)}  ${String(n).padStart(18)}  ${cells}   ${((100 * row[5]!) / n).toFixed(1)}%`);
  });
}

async function main(): Promise<void> {
  const [runId, ...rest] = process.argv.slice(2);
  if (!runId || runId.startsWith('-')) throw new Error('usage: node dist/bench/judge-errors.js RUN_ID [--arm control|ceiling]');
  const arm = rest[0] === '--arm' ? rest[1] : undefined;
  if (rest.length && !(arm === 'control' || arm === 'ceiling')) throw new Error('--arm takes control or ceiling');
  const { target } = await resolveTarget(undefined);
  const client = await connectClient(target);
  try {
    for (let iteration = 1; ; iteration++) {
      const workflowId = `${runId}${arm ? `/${arm}` : ''}/iteration-${iteration}`;
      const handle = client.workflow.getHandle(workflowId);
      try {
        await handle.describe(); // fetchHistory says NOT_FOUND as a bare gRPC error; describe as this
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
        if (iteration === 1) throw new Error(`no workflow ${workflowId} in Temporal at ${target.address}`);
        break;
      }
      const history = await handle.fetchHistory();
      const inputs = new Map<string, JudgeInput>();
      const shards: { input: JudgeInput; judgments: ArtifactRef }[] = [];
      for (const e of history.events ?? []) {
        const s = e.activityTaskScheduledEventAttributes;
        if (s?.activityType?.name === 'judgeCandidates') inputs.set(String(e.eventId), defaultPayloadConverter.fromPayload(s.input!.payloads![0]!) as JudgeInput);
        const c = e.activityTaskCompletedEventAttributes;
        const input = c && inputs.get(String(c.scheduledEventId));
        if (input) shards.push({ input, judgments: (defaultPayloadConverter.fromPayload(c.result!.payloads![0]!) as { judgments: ArtifactRef }).judgments });
      }
      if (shards.length === 0) throw new Error(`${workflowId} has no completed judgeCandidates activity`);
      const { config } = shards[0]!.input;
      const world = config.model.base.startsWith('builtin:') ? await loadWorld(config.model.base.slice('builtin:'.length)) : undefined;
      if (!world) throw new Error(`run ${runId} is not on a built-in world (${config.model.base}); there is no oracle to compare with`);
      const store = openStore(config.store.uri, config.store.s3);
      let total: Confusion | undefined;
      for (const { input, judgments } of shards) {
        total = confusion(await getJsonl(store, input.candidates, CandidateRow), await getJsonl(store, judgments, JudgmentRow), (i, r) => world.oracleScore(i, r, config.seed), total);
      }
      print(`${workflowId} (rows: the candidates' oracle score; columns: the judge's scores)`, total!);
    }
  } finally {
    await client.connection.close();
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
