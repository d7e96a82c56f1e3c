/**
 * Errors a user can act on. Each says what was wrong, where, and (when it helps) what to do.
 *
 * `retryable` is the contract with the orchestration layer: invalid input never becomes an
 * endless retry loop (DESIGN.md "Failure contract"), while a store or server that is away for a
 * while is retried. The class name is the failure type the activity layer reports to Temporal.
 */
export abstract class SrlmError extends Error {
  abstract readonly retryable: boolean;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A config file, dataset row, key or argument that is wrong and will stay wrong on retry. */
export class InvalidInputError extends SrlmError {
  readonly retryable = false;
}

/** An artifact whose bytes do not match the sha256 recorded when it was written. */
export class ArtifactIntegrityError extends SrlmError {
  readonly retryable = false;
  constructor(
    readonly uri: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`artifact ${uri} is corrupt: sha256 ${actual} does not match the recorded ${expected}`);
  }
}

/** An artifact that was never published (or was deleted). */
export class ArtifactNotFoundError extends SrlmError {
  readonly retryable = false;
  constructor(
    readonly uri: string,
    why = 'no published manifest',
  ) {
    super(`artifact ${uri} does not exist (${why})`);
  }
}

/** The store (an S3 endpoint, a disk) could not be reached or refused for a transient reason. */
export class StoreUnavailableError extends SrlmError {
  readonly retryable = true;
}
