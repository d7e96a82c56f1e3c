/**
 * Plain types shared by workflows, activities and the CLI. Only small JSON crosses Temporal:
 * configs and artifact references, never datasets or weights (DESIGN.md "Only references cross Temporal").
 */
import type { ArtifactRef } from '../core/store/artifact';
import type { RunConfig } from '../core/config/schema';

export type { ArtifactRef, RunConfig };

export interface RunInput {
  runId: string;
  /** Validated config, with the store URI made absolute by the client. Holds no secrets. */
  config: RunConfig;
  /** Where the config came from (`preset:tiny`, a file path), for reports. */
  configSource: string;
}

export type Stage = 'starting' | 'config' | 'verify' | 'done';

export interface StepRecord {
  step: string;
  status: 'running' | 'completed' | 'failed';
  startedAt: string;
  finishedAt?: string;
  artifact?: ArtifactRef;
}

export interface RunProgress {
  runId: string;
  stage: Stage;
  iteration: number;
  iterations: number;
  steps: StepRecord[];
}

export interface RunResult {
  runId: string;
  configRef: ArtifactRef;
  /** What the run covered: the pipeline steps land with the durable-pipeline work (issue 6). */
  completed: string[];
  notYetImplemented: string[];
}

/** Failure types that retrying cannot fix; activities also mark them non-retryable themselves. */
export const NON_RETRYABLE_ERROR_TYPES = ['InvalidInputError', 'ConfigError', 'ArtifactIntegrityError', 'ArtifactNotFoundError'];
