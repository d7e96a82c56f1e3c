import { InvalidInputError } from '../errors';
import type { RunConfigInput } from './schema';

/**
 * Built-in presets: complete configs that run with no files, sizing the paper's recipe for 2 CPU
 * cores on a synthetic world with an oracle (core/worlds/). `tiny` (what `npm start` runs) is the
 * paths world; `lists` is the list-task world.
 */
interface WorldPresetSizes {
  /**
   * New prompts per iteration, the first iteration's first; an iteration past the list takes the
   * first's. The paper's second iteration had 1.75× the first's pairs (6,942 against 3,964).
   */
  prompts: number[];
  /** The judge's reply budget (its written check, then `Score: N`). */
  judgeTokens: number;
  /** Training rows are cut to this many tokens; the EFT rows must fit whole. */
  maxSeqLen: number;
  /** The candidates' nucleus (and the sampled head-to-head's). */
  topP: number;
}

/**
 * A preset on a built-in world: its base model and data splits, the paper's recipe sized for 2 CPU
 * cores (SFT; two iterations of 8 candidates at T 1.0, 3 judgments each, DPO with an NLL term), and
 * the oracle's head-to-heads with both reference arms.
 */
function worldPreset(name: string, world: string, { prompts, judgeTokens, maxSeqLen, topP }: WorldPresetSizes): RunConfigInput {
  const data = (split: string) => `builtin:${world}/${split}`;
  return {
    name,
    seed: 0,
    model: { base: `builtin:${world}` },
    data: { ift: data('ift'), eft: data('eft'), evalPrompts: data('eval-prompts'), rankedEval: data('ranked-eval') },
    sft: { lr: 3e-3, lrEnd: 3e-4, batchSize: 16, dropout: 0, epochs: 12, maxSeqLen, warmupSteps: 10 },
    iterations: {
      count: 2,
      overrides: prompts.slice(1).map((count, i) => ({ iteration: i + 2, prompts: { count } })),
      settings: {
        // The world's task sampler stands in for the paper's fixed prompt generator.
        prompts: { count: prompts[0]!, maxNewTokens: 16, minChars: 5, generator: 'world' },
        candidates: { n: 8, temperature: 1, topP, maxNewTokens: 12, shardSize: 200, batchSize: 128 },
        judge: { samples: 3, maxNewTokens: judgeTokens, batchSize: 128 },
        dpo: { lr: 3e-4, lrEnd: 3e-5, nllWeight: 1, beta: 0.1, batchSize: 8, epochs: 2, dropout: 0, maxSeqLen, warmupSteps: 2 },
      },
    },
    // The random-judge (floor) and oracle-judge (ceiling) arms run after the method's iterations.
    // Greedy and sampled head-to-heads (4 answers per prompt at the candidates' T and top-p).
    evaluation: { judge: 'oracle', maxNewTokens: 12, sampled: true, samples: 4, onPolicyPrompts: 50, arms: ['control', 'ceiling'] },
  };
}

export const PRESETS: Record<string, RunConfigInput> = {
  // The paths world (core/worlds/paths.ts): route finding on a graph M0 knows, where checking a route
  // (one recalled edge per hop, one word to compare at the end) is easier than producing it (look-ahead).
  // 600 prompts in the first iteration and 1,200 in the second (the world has enough for both on seeds
  // 0-39, tested; the paper's second iteration had 1.75x the first's pairs): on world version 3 the larger second
  // iteration raised the oracle-judged ceiling there by 1.4-4.3 points and the method's M3 vs M2 on three
  // of four runs. The judge writes its hop-by-hop check before the score (up to ~45 tokens; the longest
  // EFT row is 143 tokens, within maxSeqLen). Candidates at top-p 1.0: at 0.9 a model 92% sure of a wrong
  // hop never showed its alternative, and 8-15% of the second iteration's prompts had eight equally wrong
  // candidates. Figures and times: README, "The tiny world".
  tiny: worldPreset('tiny', 'paths', { prompts: [600, 1200], judgeTokens: 48, maxSeqLen: 160, topP: 1 }),
  // The list-task world (core/worlds/tiny.ts: reverse, sort, count, repeat, uppercase), the earlier
  // tiny preset. Its judge ranks its own candidates at chance (41% vs a random judge's 42%) and even the
  // oracle's pairs do not lift it (M2 vs M1 49-51.5%); kept to reproduce that (README, "The tiny world").
  // Eight candidates at T 1.0: at four and T 0.7 the candidates of 168 of 191 prompts all had the same
  // oracle score. The NLL term on the chosen answers (RPO, weight 1): with the oracle's pairs plain DPO
  // lowered the model (M2 vs M1 47.0% at lr 1e-4, 28.5% at 1e-3); with the NLL term at 3e-4 it held.
  lists: worldPreset('lists', 'tiny', { prompts: [400], judgeTokens: 20, maxSeqLen: 128, topP: 0.9 }),
};

export function presetConfig(name: string): RunConfigInput {
  const preset = PRESETS[name];
  if (!preset) throw new InvalidInputError(`unknown preset ${JSON.stringify(name)}; available: ${Object.keys(PRESETS).join(', ')}`);
  return structuredClone(preset);
}
