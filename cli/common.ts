import { Connection, Client } from '@temporalio/client';
import type { RunConfig } from '../core/config';
import { ensureLocalTemporal } from '../infra/local-stack';
import { temporalTarget, type TemporalTarget } from '../workers/connection';

export const log = (line: string) => process.stderr.write(`${line}\n`);

/** The Temporal to use: TEMPORAL_ADDRESS / the config, else the local dev server (started if needed). */
export async function resolveTarget(settings: RunConfig['temporal'] | undefined): Promise<{ target: TemporalTarget; uiUrl?: string; local: boolean }> {
  const explicit = temporalTarget(settings);
  if (explicit) return { target: explicit, local: false };
  const local = await ensureLocalTemporal(log);
  return { target: temporalTarget(settings, local.address)!, ...(local.uiUrl ? { uiUrl: local.uiUrl } : {}), local: true };
}

export async function connectClient(target: TemporalTarget): Promise<Client> {
  const connection = await Connection.connect({
    address: target.address,
    ...(target.tls !== undefined ? { tls: target.tls } : {}),
    ...(target.apiKey ? { apiKey: target.apiKey } : {}),
    connectTimeout: 15_000,
  });
  return new Client({ connection, namespace: target.namespace });
}

export { resolveRunConfig, defaultRunId, type ConfigOptions } from './run-config';

export { printJson } from './print';
