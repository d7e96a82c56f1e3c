import { InvalidInputError } from '../errors';
import type { RunConfigInput } from './schema';

/**
 * Built-in presets: complete configs that run with no files. `tiny` sizes the paper's recipe for
 * 2 CPU cores; its model and data (`builtin:tiny`) are the synthetic task world built in by the
 * tiny-preset work (issue 7) — until that lands, the run workflow records the config and stops
 * there (see workflows/run.ts).
 */
export const PRESETS: Record<string, RunConfigInput> = {
  tiny: {
    name: 'tiny',
    seed: 0,
    model: { base: 'builtin:tiny' },
    data: { ift: 'builtin:tiny/ift', eft: 'builtin:tiny/eft', evalPrompts: 'builtin:tiny/eval-prompts', rankedEval: 'builtin:tiny/ranked-eval' },
    sft: { lr: 3e-3, lrEnd: 3e-4, batchSize: 16, dropout: 0.1, epochs: 3, maxSeqLen: 128, warmupSteps: 20 },
    iterations: {
      count: 2,
      settings: {
        prompts: { count: 200, maxNewTokens: 48 },
        candidates: { n: 4, temperature: 0.7, topP: 0.9, maxNewTokens: 48, shardSize: 50 },
        judge: { samples: 3, maxNewTokens: 48 },
        dpo: { lr: 1e-4, lrEnd: 1e-5, beta: 0.1, batchSize: 16, maxSeqLen: 128 },
      },
    },
    evaluation: { judge: 'oracle', maxNewTokens: 48 },
  },
};

export function presetConfig(name: string): RunConfigInput {
  const preset = PRESETS[name];
  if (!preset) throw new InvalidInputError(`unknown preset ${JSON.stringify(name)}; available: ${Object.keys(PRESETS).join(', ')}`);
  return structuredClone(preset);
}
