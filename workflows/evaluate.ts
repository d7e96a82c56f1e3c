import type { OracleEvaluation } from '../core/pipeline/steps';
import type { JudgeMetricsReport, ModelReport } from '../core/pipeline/report';
import type { RewardModelMetrics } from '../core/eval/metrics';
import { on, recorded } from './proxies';
import type { Arm, ArtifactRef, RunConfig, StepRecord } from './types';

/** Whether the run has an oracle to measure with (a built-in world). Deterministic: config only. */
export const hasOracle = (config: RunConfig) => config.model.base.startsWith('builtin:');

/** A model measured by the world's oracle (greedy answers; its own judge on its own candidates), or null without an oracle. */
export async function oracleEvaluation(
  steps: StepRecord[],
  config: RunConfig,
  input: { runId: string; name: string; model: ArtifactRef; responses: ArtifactRef; evalPrompts: ArtifactRef; iteration?: number; arm?: Arm },
): Promise<OracleEvaluation | null> {
  if (!hasOracle(config)) return null;
  const { iteration, arm, ...args } = input;
  const label = arm ? `${input.name} (${arm})` : input.name;
  const r = await recorded(steps, `evaluateWithOracle[${label}]`, iteration, () =>
    on(config, 'model', `${label} measured by the oracle: its answers, and its judge on its own candidates`).evaluateWithOracle({ ...args, config }),
  undefined, arm);
  return r.evaluation;
}

export const modelRow = (name: string, e: OracleEvaluation | null): ModelReport => ({ name, oracleMean: e?.oracleMean ?? null, sampledOracleMean: e?.onPolicy?.candidateOracleMean ?? null, uri: null });

export const judgeRow = (model: string, metrics: RewardModelMetrics, e: OracleEvaluation | null): JudgeMetricsReport => ({ model, ...metrics, onPolicyAccuracy: e?.onPolicy?.accuracy ?? null, onPolicyPairs: e?.onPolicy?.pairs ?? null });

/** Keeps at most `max` evenly spaced points (the first and last always): DPO curves for the report. */
export function thin<T>(points: T[], max = 200): T[] {
  if (points.length <= max) return points;
  const out: T[] = [];
  for (let i = 0; i < max; i++) out.push(points[Math.round((i * (points.length - 1)) / (max - 1))]!);
  return out;
}
