import { defineQuery, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import { on, recorded } from './proxies';
import { SrlmIteration, SrlmRunId, SrlmStage } from './search-attributes';
import type { IterationInput, IterationResult, StepRecord } from './types';

export const iterationProgressQuery = defineQuery<{ iteration: number; step: string | null; steps: StepRecord[] }>('progress');

/**
 * One self-rewarding iteration (the paper's Section 2.3), M_t → M_{t+1}: new prompts by
 * self-instruct → N candidates per prompt → the model judges each k times → best-vs-worst pairs →
 * DPO → the new model answers the held-out prompts, and is compared with M_t and the SFT baseline
 * and evaluated as a judge. Generation and judging fan out in shards over the model workers.
 */
export async function selfRewardingIteration(input: IterationInput): Promise<IterationResult> {
  const { runId, config, iteration: t, data } = input;
  const steps: StepRecord[] = [];
  let current: string | null = null;
  setHandler(iterationProgressQuery, () => ({ iteration: t, step: current, steps }));
  const stage = (name: string) => {
    current = name;
    upsertSearchAttributes([
      { key: SrlmRunId, value: runId },
      { key: SrlmIteration, value: t },
      { key: SrlmStage, value: name },
    ]);
  };
  const next = `M${t + 1}`;
  const model = input.model.ref;

  stage('prompts');
  const prompts = await recorded(steps, 'generatePrompts', t, () =>
    on(config, 'model', `iteration ${t}: ${input.model.name} writes new prompts (self-instruct)`).generatePrompts({ runId, config, iteration: t, model, ift: data.ift, earlier: input.earlierPrompts, ...(data.evalPrompts ? { evalPrompts: data.evalPrompts } : {}) }),
  (r) => r.prompts);

  stage('candidates');
  const shardSize = config.iterations.settings.candidates.shardSize;
  const shards = Math.max(1, Math.ceil(prompts.count / shardSize));
  const candidates = await Promise.all(
    Array.from({ length: shards }, (_, shard) =>
      recorded(steps, `sampleCandidates[${shard + 1}/${shards}]`, t, () =>
        on(config, 'model', `iteration ${t}: candidates for prompt shard ${shard + 1}/${shards}`).sampleCandidates({ runId, config, iteration: t, model, prompts: prompts.prompts, shard, shards }),
      (r) => r.candidates),
    ),
  );

  stage('judging');
  const judgments = await Promise.all(
    candidates.map((c, shard) =>
      recorded(steps, `judgeCandidates[${shard + 1}/${shards}]`, t, () =>
        on(config, 'model', `iteration ${t}: ${input.model.name} judges shard ${shard + 1}/${shards} (additive 5-point rubric)`).judgeCandidates({ runId, config, iteration: t, model, candidates: c.candidates, shard }),
      (r) => r.judgments),
    ),
  );

  stage('pairs');
  const pairs = await recorded(steps, 'buildPairs', t, () =>
    on(config, 'orchestration', `iteration ${t}: preference pairs (best vs worst mean score)`).buildPairs({ runId, config, iteration: t, candidates: candidates.map((c) => c.candidates), judgments: judgments.map((j) => j.judgments) }),
  (r) => r.pairs);

  stage('dpo');
  const dpo = await recorded(steps, 'trainDpo', t, () =>
    on(config, 'model', `iteration ${t}: DPO on ${pairs.stats.pairs} pairs → ${next}`).trainDpo({ runId, config, iteration: t, model, pairs: pairs.pairs }),
  (r) => r.model);

  const report: IterationResult['report'] = {
    headToHead: [],
    judgeMetrics: [],
    pairs: [{ iteration: t, count: pairs.stats.pairs, stats: pairs.stats }],
    prompts: [{ iteration: t, count: prompts.count }],
    training: [{ model: next, steps: dpo.steps, firstLoss: dpo.history[0]?.loss ?? null, finalLoss: dpo.history.at(-1)?.loss ?? null, final: dpo.final }],
  };

  let responses: IterationResult['responses'];
  if (data.evalPrompts) {
    stage('evaluate');
    const evalPrompts = data.evalPrompts;
    const answered = await recorded(steps, `answerEvalPrompts[${next}]`, t, () =>
      on(config, 'model', `${next} answers the held-out prompts`).answerEvalPrompts({ runId, config, name: next, model: dpo.model, evalPrompts }),
    (r) => r.responses);
    responses = answered.responses;
    const versus = [{ name: input.model.name, ref: model, responses: input.model.responses }, ...(input.model.name === 'SFT' ? [] : [{ name: 'SFT', ref: input.sft.ref, responses: input.sft.responses }])];
    for (const other of versus) {
      if (!other.responses) continue;
      const otherResponses = other.responses;
      const h2h = await recorded(steps, `headToHead[${next} vs ${other.name}]`, t, () =>
        on(config, 'model', `${next} vs ${other.name}, judge: ${config.evaluation.judge}`).headToHead({ runId, config, a: { name: next, model: dpo.model, responses: answered.responses }, b: { name: other.name, model: other.ref, responses: otherResponses }, evalPrompts, judge: config.evaluation.judge }),
      (r) => r.rows);
      report.headToHead.push(h2h.summary);
    }
  }
  if (data.rankedEval) {
    const rankedEval = data.rankedEval;
    const jm = await recorded(steps, `judgeMetrics[${next}]`, t, () => on(config, 'model', `${next} as a judge on held-out ranked sets`).judgeMetrics({ runId, config, name: next, model: dpo.model, rankedEval }));
    report.judgeMetrics.push({ model: next, ...jm.metrics });
  }
  current = 'done';
  return { iteration: t, model: dpo.model, name: next, ...(responses ? { responses } : {}), prompts: { ref: prompts.prompts, count: prompts.count }, report, steps };
}
