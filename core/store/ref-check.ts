import { ArtifactIntegrityError } from '../errors';
import type { ArtifactRef } from './artifact';

/** A reference names the exact bytes it was made for: a republished artifact is not the same one. */
export function checkAgainstRef(expected: ArtifactRef, published: ArtifactRef): void {
  if (expected.sha256 !== published.sha256) {
    throw new ArtifactIntegrityError(expected.uri, expected.sha256, published.sha256);
  }
}
