import { Context } from '@temporalio/activity';
import type { RunConfig } from '../core/config/schema';
import type { ArtifactRef, ArtifactStore } from '../core/store/artifact';
import { canonicalJson } from '../core/canonical-json';
import { sha256Hex } from '../core/store/hashing';
import { openStore } from '../core/store/open';
import { validateRunId } from '../core/store/keys';
import { reportingFailures } from './failures';

type StoreSettings = RunConfig['store'];

export interface ActivityDeps {
  openStore: (settings: StoreSettings) => ArtifactStore;
}

const defaultDeps: ActivityDeps = {
  openStore: (settings) => openStore(settings.uri, settings.s3),
};


export function createRunConfigActivities(deps: ActivityDeps = defaultDeps) {
  return {
    /** Stores the run's config at `runs/<runId>/config.json`; an identical one already there is reused. */
    recordRunConfig: reportingFailures(async (input: { runId: string; config: RunConfig; configSource: string }): Promise<ArtifactRef> => {
      const store = deps.openStore(input.config.store);
      const key = `runs/${validateRunId(input.runId)}/config.json`;
      const body = `${canonicalJson({ runId: input.runId, source: input.configSource, config: input.config })}\n`;
      const existing = await store.head(key);
      if (existing && existing.sha256 === sha256Hex(body)) {
        Context.current().log.info('config already recorded; reusing it', { uri: existing.uri });
        return existing;
      }
      return store.put(key, body, { contentType: 'application/json' });
    }),
  };
}

// Type-only surface for workflows (`import type * as activities`).
const bound = createRunConfigActivities();
export const recordRunConfig = bound.recordRunConfig;
