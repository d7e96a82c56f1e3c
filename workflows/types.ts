/**
 * Plain types shared by workflows, activities and the CLI. Only small JSON crosses Temporal:
 * configs, artifact references and metrics, never datasets or weights (DESIGN.md "Only references
 * cross Temporal").
 */
import type { ArtifactRef } from '../core/store/artifact';
import type { IterationOverride, RunConfig } from '../core/config/schema';
import type { Arm, LineReport, RunReport } from '../core/pipeline/report';

export type { Arm, ArtifactRef, LineReport, RunConfig, RunReport };

export interface RunInput {
  runId: string;
  /** Validated config, with the store URI made absolute by the client. Holds no secrets. */
  config: RunConfig;
  /** Where the config came from (`preset:tiny`, a file path), for reports. */
  configSource: string;
  /** Carried over by continue-as-new: everything done so far. */
  resume?: RunState;
}

export type Stage = 'starting' | 'config' | 'data' | 'base' | 'sft' | 'evaluate' | 'iteration' | 'arm' | 'iteration-failed' | 'paused' | 'report' | 'done';

export interface StepRecord {
  step: string;
  status: 'running' | 'completed' | 'reused' | 'failed';
  startedAt: string;
  finishedAt?: string;
  iteration?: number;
  /** The reference arm the step belongs to (absent: the method). */
  arm?: Arm;
  artifact?: ArtifactRef;
}

export interface FailedIteration {
  iteration: number;
  /** The reference arm whose iteration failed (absent: the method's). */
  arm?: Arm;
  /** The activity that failed for good, e.g. trainDpo. */
  step: string;
  message: string;
  failedAt: string;
  /** The command that retries it. */
  retryCommand: string;
  attempts: number;
}

/** A line of models made by iterations: the method's, or a reference arm's (from the shared M1). */
export interface LineState {
  /** Model name (M0, SFT, M1, M2, ...) → checkpoint index ref. An arm's holds only its own (M2, ...). */
  models: Record<string, ArtifactRef>;
  /** Model name → its answers to the evaluation prompts. */
  responses: Record<string, ArtifactRef>;
  /** Prompts generated in each completed iteration, in order. */
  generatedPrompts: ArtifactRef[];
  /** Iterations completed (1 = M1 → M2). */
  iterationsDone: number;
}

/** The run's results so far: small, so it travels through continue-as-new. */
export interface RunState extends LineState {
  configRef?: ArtifactRef;
  data?: { ift: ArtifactRef; eft: ArtifactRef; evalPrompts?: ArtifactRef; rankedEval?: ArtifactRef };
  /** The reference arms' lines, once started. */
  arms?: Partial<Record<Arm, LineState>>;
  report: RunReport;
  /** Steps completed by earlier workflow runs of this run (before a continue-as-new). */
  completedBefore?: string[];
  /** How many times this run has continued as new. */
  continuedAsNew?: number;
}

export interface RunProgress {
  runId: string;
  stage: Stage;
  iteration: number;
  iterations: number;
  /** The reference arm being run (stage `arm`), else null. */
  arm: Arm | null;
  paused: boolean;
  steps: StepRecord[];
  failed: FailedIteration | null;
  latestWinRate: number | null;
}

export interface RunResult {
  runId: string;
  configRef: ArtifactRef;
  completed: string[];
  report: RunReport;
  reportRefs: { json: ArtifactRef; markdown: ArtifactRef; html: ArtifactRef };
}

export interface IterationInput {
  runId: string;
  config: RunConfig;
  iteration: number;
  /** The model this iteration starts from (M_t) and its name. */
  model: { name: string; ref: ArtifactRef; responses?: ArtifactRef };
  sft: { ref: ArtifactRef; responses?: ArtifactRef };
  data: NonNullable<RunState['data']>;
  earlierPrompts: ArtifactRef[];
  /** A reference arm's iteration (its config's judge.by is the arm's judge); absent: the method's. */
  arm?: Arm;
}

export interface IterationResult {
  iteration: number;
  model: ArtifactRef;
  name: string;
  responses?: ArtifactRef;
  prompts: { ref: ArtifactRef; count: number };
  report: LineReport;
  steps: StepRecord[];
}

/** `retryIteration`'s argument: optionally changed settings for the failed iteration. */
export interface RetryRequest {
  iteration?: number;
  override?: Omit<IterationOverride, 'iteration'>;
}

/** Failure types that retrying cannot fix; activities also mark them non-retryable themselves. */
export const NON_RETRYABLE_ERROR_TYPES = ['InvalidInputError', 'ConfigError', 'ArtifactIntegrityError', 'ArtifactNotFoundError', 'TrainingFailedError', 'DatasetError'];

/** The workflow ID of an iteration: `<runId>/iteration-<t>`, or `<runId>/<arm>/iteration-<t>` in a reference arm. */
export const iterationWorkflowId = (runId: string, iteration: number, arm?: Arm | null) => (arm ? `${runId}/${arm}/iteration-${iteration}` : `${runId}/iteration-${iteration}`);

/** Who scores the candidates in each reference arm (the method: the model itself). */
export const ARM_JUDGE = { control: 'random', ceiling: 'oracle' } as const satisfies Record<Arm, 'random' | 'oracle'>;

/** A line's report before its first iteration. */
export const emptyLine = (): LineReport => ({ headToHead: [], headToHeadSampled: [], judgeMetrics: [], pairs: [], prompts: [], training: [], dpo: [], models: [] });
