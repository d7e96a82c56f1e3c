import { InvalidInputError } from '../errors';
import type { RunConfigInput } from './schema';

/**
 * Built-in presets: complete configs that run with no files. `tiny` sizes the paper's recipe for
 * 2 CPU cores; its model and data (`builtin:tiny`) are the synthetic task world of
 * core/worlds/tiny.ts (word tokenizer, oracle judge, its own short judge and self-instruct templates).
 */
export const PRESETS: Record<string, RunConfigInput> = {
  tiny: {
    name: 'tiny',
    seed: 0,
    model: { base: 'builtin:tiny' },
    data: { ift: 'builtin:tiny/ift', eft: 'builtin:tiny/eft', evalPrompts: 'builtin:tiny/eval-prompts', rankedEval: 'builtin:tiny/ranked-eval' },
    // Measured on 2 shared CPU cores (bench/tiny-world.ts, bench/tiny-loop.ts): M0 ~25-30 s, SFT
    // baseline ~40 s, M1 ~110-125 s; per iteration with 400 prompts x 8 candidates ~65 s (3,200
    // candidates 5 s, 9,600 self-judgments 45 s, DPO 5 s, evaluation 8 s); each arm ~25 s per iteration.
    // Figures from `node dist/bench/tiny-loop.js` (seed 0; --set as named):
    // prompts come from the world's task sampler, standing in for the paper's fixed prompt
    // generator (Llama 2-Chat 70B): with prompts.generator=self the model wrote real tasks for 137
    // of 363 prompts (iteration 1), the rest got candidates the oracle scores 0. Eight candidates at
    // T 1.0: at four and T 0.7 (`srlm run --preset tiny` at aeabf49) the candidates of 168 of 191
    // prompts all had the same oracle score. DPO with an NLL term on the chosen answers (RPO,
    // weight 1): with the oracle's perfect pairs, plain DPO lowered the model (M2 vs M1 47.0% at
    // lr 1e-4, 28.5% at 1e-3, nllWeight=0); with the NLL term at lr 3e-4 it held (51.5%, oracle mean
    // 3.16 -> 3.20).
    sft: { lr: 3e-3, lrEnd: 3e-4, batchSize: 16, dropout: 0, epochs: 12, maxSeqLen: 128, warmupSteps: 10 },
    iterations: {
      count: 2,
      settings: {
        prompts: { count: 400, maxNewTokens: 16, minChars: 5, generator: 'world' },
        candidates: { n: 8, temperature: 1, topP: 0.9, maxNewTokens: 12, shardSize: 200 },
        judge: { samples: 3, maxNewTokens: 20 },
        dpo: { lr: 3e-4, lrEnd: 3e-5, nllWeight: 1, beta: 0.1, batchSize: 8, epochs: 2, dropout: 0, maxSeqLen: 128, warmupSteps: 2 },
      },
    },
    // The random-judge (floor) and oracle-judge (ceiling) arms run after the method's iterations.
    evaluation: { judge: 'oracle', maxNewTokens: 12, onPolicyPrompts: 50, arms: ['control', 'ceiling'] },
  },
};

export function presetConfig(name: string): RunConfigInput {
  const preset = PRESETS[name];
  if (!preset) throw new InvalidInputError(`unknown preset ${JSON.stringify(name)}; available: ${Object.keys(PRESETS).join(', ')}`);
  return structuredClone(preset);
}
