import { defineQuery, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import { hasOracle, judgeRow, modelRow, oracleEvaluation, thin } from './evaluate';
import { on, recorded } from './proxies';
import { SrlmIteration, SrlmRunId, SrlmStage } from './search-attributes';
import type { IterationInput, IterationResult, StepRecord } from './types';

export const iterationProgressQuery = defineQuery<{ iteration: number; arm: string | null; step: string | null; steps: StepRecord[] }>('progress');

/**
 * One self-rewarding iteration (the paper's Section 2.3), M_t → M_{t+1}: new prompts by
 * self-instruct → N candidates per prompt → the model judges each k times → best-vs-worst pairs →
 * DPO → the new model answers the held-out prompts, and is compared with M_t and the SFT baseline
 * and evaluated as a judge. Generation and judging fan out in shards over the model workers.
 *
 * A reference arm's iteration is the same but for who scores the candidates (its config's
 * `judge.by`: random or the oracle). With a built-in world, the oracle also reports how the pairs
 * look to it and how well the judge ranked the candidates — for the report, never for the loop.
 */
/** Share of judge replies with no valid score over the shards (null when no shard reported its stats). */
function parseFailures(stats: ({ judgments: number; failed: number } | undefined)[]): number | null {
  const known = stats.filter((x): x is { judgments: number; failed: number } => x !== undefined);
  const total = known.reduce((n, x) => n + x.judgments, 0);
  return known.length === 0 || total === 0 ? null : known.reduce((n, x) => n + x.failed, 0) / total;
}

export async function selfRewardingIteration(input: IterationInput): Promise<IterationResult> {
  const { runId, config, iteration: t, data, arm } = input;
  const steps: StepRecord[] = [];
  let current: string | null = null;
  setHandler(iterationProgressQuery, () => ({ iteration: t, arm: arm ?? null, step: current, steps }));
  const stage = (name: string) => {
    current = name;
    upsertSearchAttributes([
      { key: SrlmRunId, value: runId },
      { key: SrlmIteration, value: t },
      { key: SrlmStage, value: arm ? `${arm}:${name}` : name },
    ]);
  };
  const rec = <T>(name: string, run: () => Promise<T>, artifactOf?: (r: T) => StepRecord['artifact']) => recorded(steps, name, t, run, artifactOf, arm);
  const tag = arm ? ` [${arm} arm: ${config.iterations.settings.judge.by} judge]` : '';
  const next = `M${t + 1}`;
  const model = input.model.ref;

  stage('prompts');
  const prompts = await rec('generatePrompts', () =>
    on(config, 'model', `iteration ${t}: ${input.model.name} writes new prompts (self-instruct)${tag}`).generatePrompts({ runId, config, iteration: t, model, ift: data.ift, earlier: input.earlierPrompts, ...(data.evalPrompts ? { evalPrompts: data.evalPrompts } : {}) }),
  (r) => r.prompts);

  stage('candidates');
  const shardSize = config.iterations.settings.candidates.shardSize;
  const shards = Math.max(1, Math.ceil(prompts.count / shardSize));
  const candidates = await Promise.all(
    Array.from({ length: shards }, (_, shard) =>
      rec(`sampleCandidates[${shard + 1}/${shards}]`, () =>
        on(config, 'model', `iteration ${t}: candidates for prompt shard ${shard + 1}/${shards}${tag}`).sampleCandidates({ runId, config, iteration: t, model, prompts: prompts.prompts, shard, shards }),
      (r) => r.candidates),
    ),
  );

  stage('judging');
  const by = config.iterations.settings.judge.by;
  const judgments = await Promise.all(
    candidates.map((c, shard) =>
      rec(`judgeCandidates[${shard + 1}/${shards}]`, () =>
        on(config, 'model', by === 'self' ? `iteration ${t}: ${input.model.name} judges shard ${shard + 1}/${shards} (additive 5-point rubric)` : `iteration ${t}: the ${by} judge scores shard ${shard + 1}/${shards}${tag}`).judgeCandidates({ runId, config, iteration: t, model, candidates: c.candidates, shard }),
      (r) => r.judgments),
    ),
  );

  stage('pairs');
  const pairs = await rec('buildPairs', () =>
    on(config, 'orchestration', `iteration ${t}: preference pairs (best vs worst mean score)${tag}`).buildPairs({ runId, config, iteration: t, candidates: candidates.map((c) => c.candidates), judgments: judgments.map((j) => j.judgments) }),
  (r) => r.pairs);
  const diagnosed = hasOracle(config)
    ? (await rec('diagnoseIteration', () =>
        on(config, 'orchestration', `iteration ${t}: how the pairs and the judge look to the oracle (report only)${tag}`).diagnoseIteration({ runId, config, iteration: t, candidates: candidates.map((c) => c.candidates), judgments: judgments.map((j) => j.judgments), pairs: pairs.pairs }),
      )).diagnostics
    : null;

  stage('dpo');
  const dpo = await rec('trainDpo', () =>
    on(config, 'model', `iteration ${t}: DPO on ${pairs.stats.pairs} pairs → ${next}${tag}`).trainDpo({ runId, config, iteration: t, model, pairs: pairs.pairs }),
  (r) => r.model);

  const report: IterationResult['report'] = {
    headToHead: [],
    headToHeadSampled: [],
    judgeMetrics: [],
    pairs: [{ iteration: t, count: pairs.stats.pairs, stats: pairs.stats, oracleAgree: diagnosed?.pairs.agree ?? null, oracleTie: diagnosed?.pairs.tie ?? null, oracleReversed: diagnosed?.pairs.reversed ?? null, judgeAccuracy: diagnosed?.judge.accuracy ?? null, promptsUnderstood: typeof diagnosed?.prompts?.understood === 'number' ? diagnosed.prompts.understood / Math.max(1, diagnosed.prompts.count) : null, judgeParseFailures: parseFailures(judgments.map((j) => j.stats)) }],
    prompts: [{ iteration: t, count: prompts.count }],
    training: [{ model: next, steps: dpo.steps, firstLoss: dpo.history[0]?.loss ?? null, finalLoss: dpo.history.at(-1)?.loss ?? null, final: dpo.final }],
    dpo: [{ model: next, iteration: t, points: thin(dpo.history.map((h) => ({ step: h.step, loss: h.loss, margin: h['rewards/margins'], accuracy: h['rewards/accuracies'] }))) }],
    models: [],
  };

  let responses: IterationResult['responses'];
  let evaluation: Awaited<ReturnType<typeof oracleEvaluation>> = null;
  if (data.evalPrompts) {
    stage('evaluate');
    const evalPrompts = data.evalPrompts;
    const answered = await rec(`answerEvalPrompts[${next}]`, () =>
      on(config, 'model', `${next} answers the held-out prompts${tag}`).answerEvalPrompts({ runId, config, name: next, model: dpo.model, evalPrompts }),
    (r) => r.responses);
    responses = answered.responses;
    const versus = [{ name: input.model.name, ref: model, responses: input.model.responses }, ...(input.model.name === 'SFT' ? [] : [{ name: 'SFT', ref: input.sft.ref, responses: input.sft.responses }])];
    for (const other of versus) {
      if (!other.responses) continue;
      const otherResponses = other.responses;
      const h2h = await rec(`headToHead[${next} vs ${other.name}]`, () =>
        on(config, 'model', `${next} vs ${other.name}, judge: ${config.evaluation.judge}${tag}`).headToHead({ runId, config, a: { name: next, model: dpo.model, responses: answered.responses }, b: { name: other.name, model: other.ref, responses: otherResponses }, evalPrompts, judge: config.evaluation.judge }),
      (r) => r.rows);
      report.headToHead.push(h2h.summary);
      if (h2h.sampled) (report.headToHeadSampled ??= []).push(h2h.sampled.summary);
    }
    evaluation = await oracleEvaluation(steps, config, { runId, name: next, model: dpo.model, responses: answered.responses, evalPrompts, iteration: t, ...(arm ? { arm } : {}) });
  }
  report.models.push(modelRow(next, evaluation));
  if (data.rankedEval) {
    const rankedEval = data.rankedEval;
    const jm = await rec(`judgeMetrics[${next}]`, () => on(config, 'model', `${next} as a judge on held-out ranked sets${tag}`).judgeMetrics({ runId, config, name: next, model: dpo.model, rankedEval }));
    report.judgeMetrics.push(judgeRow(next, jm.metrics, evaluation));
  }
  current = 'done';
  return { iteration: t, model: dpo.model, name: next, ...(responses ? { responses } : {}), prompts: { ref: prompts.prompts, count: prompts.count }, report, steps };
}
