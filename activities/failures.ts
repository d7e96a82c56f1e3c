import { ApplicationFailure } from '@temporalio/activity';
import { SrlmError } from '../core/errors';

/**
 * Wraps an activity so that our errors reach Temporal with their class name as the failure type
 * and the right retry behaviour: invalid input fails for good at once, a store that is away is
 * retried by the activity's retry policy.
 */
export function reportingFailures<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args: A) => {
    try {
      return await fn(...args);
    } catch (err) {
      if (err instanceof SrlmError) {
        throw ApplicationFailure.create({ type: err.name, message: err.message, nonRetryable: !err.retryable, cause: err });
      }
      throw err;
    }
  };
}
