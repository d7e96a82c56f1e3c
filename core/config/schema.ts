import { z } from 'zod';

/**
 * The run config: the single source of truth for what a run does. Defaults follow the paper
 * (Yuan et al. 2024, see shared/PAPER.md) wherever it states a value; the `tiny` preset
 * (presets.ts) resizes them for 2 CPU cores.
 *
 * No secret ever appears here: the config is stored with the run's artifacts and travels in
 * workflow inputs. Credentials come from the environment (AWS chain, TEMPORAL_API_KEY) or from
 * files the config names by path.
 */

const positiveInt = z.number().int().positive();
const probability = z.number().gt(0).lte(1);
const learningRate = z.number().positive().lt(1);

export const Schedule = z.enum(['cosine', 'linear', 'constant']);

/** Shared by SFT and DPO. */
const trainingFields = {
  /** Peak learning rate, reached after warmup. */
  lr: learningRate,
  /** Learning rate at the end of the decay. */
  lrEnd: z.number().nonnegative().lt(1),
  schedule: Schedule.default('cosine'),
  warmupSteps: z.number().int().nonnegative().default(0),
  /** Sequences per optimizer step (after accumulation). */
  batchSize: positiveInt.default(16),
  gradientAccumulation: positiveInt.default(1),
  epochs: z.number().positive().default(1),
  dropout: z.number().min(0).lt(1).default(0.1),
  weightDecay: z.number().min(0).default(0),
  gradClip: z.number().positive().default(1),
  maxSeqLen: positiveInt.default(512),
  /** Save resumable state every this many optimizer steps ... */
  checkpointEverySteps: positiveInt.default(200),
  /** ... or every this many seconds, whichever comes first. */
  checkpointEverySeconds: positiveInt.default(600),
};

export const SftSettings = z
  .strictObject({
    ...trainingFields,
    lr: learningRate.default(5.5e-6),
    lrEnd: z.number().nonnegative().lt(1).default(1.1e-6),
  })
  .prefault({});
export type SftSettings = z.infer<typeof SftSettings>;

export const DpoSettings = z
  .strictObject({
    ...trainingFields,
    lr: learningRate.default(1e-6),
    lrEnd: z.number().nonnegative().lt(1).default(1e-7),
    beta: z.number().positive().default(0.1),
    loss: z.enum(['sigmoid', 'ipo']).default('sigmoid'),
    /** Weight of an NLL term on the chosen responses (RPO, Pang et al. 2024); 0: plain DPO, the paper's. */
    nllWeight: z.number().min(0).default(0),
  })
  .prefault({});
export type DpoSettings = z.infer<typeof DpoSettings>;

export const PromptSettings = z
  .strictObject({
    /** New prompts to generate per iteration. */
    count: positiveInt.default(1000),
    /** Few-shot examples drawn from the IFT prompts (paper: 6) ... */
    fewShotIft: z.number().int().nonnegative().default(6),
    /** ... and from prompts generated earlier (paper: 2). */
    fewShotGenerated: z.number().int().nonnegative().default(2),
    temperature: z.number().positive().default(0.6),
    topP: probability.default(0.9),
    maxNewTokens: positiveInt.default(128),
    /**
     * `self` (the model being trained), a checkpoint URI of a fixed instruction-tuned model (the
     * paper's choice), or `world`: a built-in world's own task sampler, standing in for that fixed
     * strong generator (it supplies prompts only; the model still judges its own candidates).
     */
    generator: z.string().min(1).default('self'),
    /** Drop a prompt whose ROUGE-L F against any pooled prompt exceeds this. */
    rougeLThreshold: probability.default(0.7),
    /** Path or URI of a few-shot template with a {tasks} slot; the built-in self-instruct template when absent. */
    template: z.string().optional(),
    minChars: z.number().int().nonnegative().default(10),
    maxChars: positiveInt.default(2000),
  })
  .prefault({});

export const CandidateSettings = z
  .strictObject({
    /** Candidates per prompt (paper: 4). */
    n: z.number().int().min(2).default(4),
    temperature: z.number().positive().default(0.7),
    topP: probability.default(0.9),
    topK: z.number().int().nonnegative().default(0),
    maxNewTokens: positiveInt.default(256),
    /** Prompts per generation shard: the unit of fan-out across model workers. */
    shardSize: positiveInt.default(64),
    /**
     * Completions per generate call (default 32). How the work is batched, not what it makes: the
     * step keys leave it out. Small models run faster in larger batches (the tiny preset's
     * model judged 1.8× faster at 128 than at 32: `node dist/bench/backend-stages.js --backends
     * tensorflow --batches 32,128`); memory grows with it.
     */
    batchSize: positiveInt.optional(),
  })
  .prefault({});

export const JudgeSettings = z
  .strictObject({
    /** Judgments sampled per candidate and averaged (paper: 3). */
    samples: positiveInt.default(3),
    temperature: z.number().positive().default(0.7),
    topP: probability.default(0.9),
    maxNewTokens: positiveInt.default(128),
    /** Judgments per generate call (default 32); left out of the step keys, as for candidates. */
    batchSize: positiveInt.optional(),
    /** Path or URI of a judge prompt template; the built-in additive 5-point rubric when absent. */
    template: z.string().optional(),
    /**
     * Who scores the candidates that make the pairs: `self` (the model being trained — the method),
     * or, for the reference arms only, `random` (a seeded uniform 0..5 score: the floor) or `oracle`
     * (a built-in world's programmatic judge: the ceiling).
     */
    by: z.enum(['self', 'random', 'oracle']).default('self'),
  })
  .prefault({});

export const PairSettings = z
  .strictObject({
    /** Keep a pair only when best and worst mean scores differ by at least this. */
    minMargin: z.number().min(0).default(0),
    /** Meta-Rewarding length control: chosen = shortest of the top tier, rejected = longest of a lower tier. */
    lengthControl: z.boolean().default(false),
  })
  .prefault({});

export const IterationSettings = z
  .strictObject({
    prompts: PromptSettings,
    candidates: CandidateSettings,
    judge: JudgeSettings,
    pairs: PairSettings,
    dpo: DpoSettings,
  })
  .prefault({});
export type IterationSettings = z.infer<typeof IterationSettings>;

/**
 * The same fields, all optional and without defaults: an override names only what it changes
 * (zod's .partial() would still fill every default in, silently resetting the shared settings).
 */
function changesOf<S extends z.ZodRawShape>(settings: z.ZodPrefault<z.ZodObject<S>>) {
  const shape = settings.unwrap().shape;
  const fields = Object.fromEntries(Object.entries(shape).map(([k, v]) => [k, ((v instanceof z.ZodDefault ? v.unwrap() : v) as z.ZodType).optional()]));
  return z.strictObject(fields as { [K in keyof S]: z.ZodOptional<z.ZodType<z.output<S[K]>>> });
}

/** A change to the settings of one iteration (1 = the iteration that trains M2 from M1). */
export const IterationOverride = z.strictObject({
  iteration: positiveInt,
  prompts: changesOf(PromptSettings).optional(),
  candidates: changesOf(CandidateSettings).optional(),
  judge: changesOf(JudgeSettings).optional(),
  pairs: changesOf(PairSettings).optional(),
  dpo: changesOf(DpoSettings).optional(),
});
export type IterationOverride = z.infer<typeof IterationOverride>;

export const Iterations = z
  .strictObject({
    /** Self-rewarding iterations after M1 (paper: 2, giving M2 and M3). */
    count: z.number().int().min(0).max(100).default(2),
    settings: IterationSettings,
    overrides: z.array(IterationOverride).default([]),
  })
  .prefault({});

export const ModelSettings = z
  .strictObject({
    /** The base model M0: a Hugging Face directory (path, file:// or s3:// URI) or `builtin:<preset>`. */
    base: z.string().min(1),
    /** Weights dtype written to checkpoints. */
    saveDtype: z.enum(['float32', 'bfloat16']).default('float32'),
  });

export const DataSettings = z.strictObject({
  /** Instruction fine-tuning rows (JSONL). */
  ift: z.string().min(1),
  /** Evaluation fine-tuning rows: judge prompts with justification and `Score: N` (JSONL). */
  eft: z.string().min(1),
  /** Held-out prompts for head-to-head evaluation. */
  evalPrompts: z.string().min(1).optional(),
  /** Held-out ranked responses for reward-model metrics. */
  rankedEval: z.string().min(1).optional(),
});

export const EvaluationSettings = z
  .strictObject({
    /** `oracle` (built-in task worlds only), `self`, or a checkpoint URI of a judge model. */
    judge: z.string().min(1).default('self'),
    maxNewTokens: positiveInt.default(256),
    /**
     * Also compare with sampled decoding, beside greedy: each model draws `samples` answers per
     * held-out prompt at the iterations' candidate temperature, top-p and top-k (every model with
     * the same seeds), and sample j of one model meets sample j of the other.
     */
    sampled: z.boolean().default(false),
    samples: positiveInt.default(4),
    /**
     * Built-in worlds only: held-out prompts on which each model samples candidates (as in an
     * iteration) and judges them itself, to measure its judge against the oracle on its own
     * outputs ("on-policy" accuracy). 0 turns it off.
     */
    onPolicyPrompts: z.number().int().nonnegative().default(50),
    /**
     * Reference arms (built-in worlds only), run after the method's iterations from the same M1 with
     * the same settings but another judge choosing the pairs: `control` (a random judge, the floor)
     * and `ceiling` (the oracle, the best pairs the training step can get). Diagnostics: nothing
     * from an arm flows into the method's models.
     */
    arms: z.array(z.enum(['control', 'ceiling'])).default([]),
  })
  .prefault({});

export const StoreSettings = z
  .strictObject({
    /**
     * `file:///abs/dir`, a local path, or `s3://bucket/prefix`. `$SRLM_HOME` stands for the srlm
     * home directory (SRLM_HOME, default ~/.srlm); the CLI expands it and makes local paths absolute.
     */
    uri: z.string().min(1).default('$SRLM_HOME/artifacts'),
    s3: z
      .strictObject({
        region: z.string().optional(),
        /** An S3-compatible endpoint; AWS_ENDPOINT_URL_S3 when absent. */
        endpoint: z.url().optional(),
        forcePathStyle: z.boolean().optional(),
      })
      .prefault({}),
  })
  .prefault({});

export const TemporalSettings = z
  .strictObject({
    /** host:port of a Temporal frontend; the local dev server (started on demand) when absent. */
    address: z.string().regex(/^[^\s:]+:\d+$/, 'expected host:port').optional(),
    namespace: z.string().min(1).default('default'),
    taskQueues: z
      .strictObject({
        /** Model work: training, generation, judging (GPU workers). */
        model: z.string().min(1).default('srlm-model'),
        /** Orchestration and data work (CPU workers). */
        orchestration: z.string().min(1).default('srlm-orchestration'),
      })
      .prefault({}),
    tls: z
      .strictObject({
        serverName: z.string().optional(),
        serverRootCACertificateFile: z.string().optional(),
        clientCertFile: z.string().optional(),
        clientKeyFile: z.string().optional(),
      })
      .optional(),
    /** A model activity that sends no heartbeat for this long is considered lost and retried (resuming from saved state). */
    heartbeatTimeoutSeconds: positiveInt.default(300),
    /**
     * Start a fresh workflow run (continue-as-new, same workflow ID) after this many iterations, to
     * keep each run's history short. 0: only when the server suggests it (its history grew large).
     */
    continueAsNewEvery: z.number().int().min(0).default(0),
    /** Name of the environment variable that holds an API key (Temporal Cloud). Never the key itself. */
    apiKeyEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'expected an environment variable name').optional(),
  })
  .prefault({});

export const ComputeSettings = z
  .strictObject({
    backend: z.enum(['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']).default('auto'),
  })
  .prefault({});

export const RunConfig = z.strictObject({
  /** A name for the run; the default run ID is derived from it and the config's hash. */
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'use letters, digits, ".", "_" and "-"').default('run'),
  seed: z.number().int().nonnegative().default(0),
  model: ModelSettings,
  data: DataSettings,
  sft: SftSettings,
  iterations: Iterations,
  evaluation: EvaluationSettings,
  store: StoreSettings,
  temporal: TemporalSettings,
  compute: ComputeSettings,
}).superRefine((c, ctx) => {
  // The oracle belongs to a built-in world: without one there is nothing to measure arms against.
  if (c.model.base.startsWith('builtin:')) return;
  if (c.evaluation.arms.length > 0) ctx.addIssue({ code: 'custom', path: ['evaluation', 'arms'], message: 'the reference arms need a built-in world with an oracle (model.base builtin:<name>)' });
  if (c.iterations.settings.prompts.generator === 'world') ctx.addIssue({ code: 'custom', path: ['iterations', 'settings', 'prompts', 'generator'], message: '"world" needs a built-in world (model.base builtin:<name>)' });
  if (c.iterations.settings.judge.by === 'oracle') ctx.addIssue({ code: 'custom', path: ['iterations', 'settings', 'judge', 'by'], message: '"oracle" needs a built-in world (model.base builtin:<name>)' });
});
export type RunConfig = z.infer<typeof RunConfig>;
export type RunConfigInput = z.input<typeof RunConfig>;
