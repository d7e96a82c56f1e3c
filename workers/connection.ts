import { readFileSync } from 'node:fs';
import type { TLSConfig } from '@temporalio/common/lib/internal-non-workflow';
import type { RunConfig } from '../core/config/schema';
import { InvalidInputError } from '../core/errors';

export interface TemporalTarget {
  address: string;
  namespace: string;
  tls?: TLSConfig | boolean;
  apiKey?: string;
}

/**
 * Where to reach Temporal: the environment (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY,
 * TEMPORAL_TLS_*), then the config. Undefined address means "use the local dev server".
 * Secrets are read from the environment or files here, at the edge, and never enter payloads.
 */
export function temporalTarget(settings: RunConfig['temporal'] | undefined, localAddress?: string): TemporalTarget | undefined {
  const env = process.env;
  const address = env.TEMPORAL_ADDRESS || settings?.address || localAddress;
  if (!address) return undefined;
  const namespace = env.TEMPORAL_NAMESPACE || settings?.namespace || 'default';
  const apiKeyEnv = settings?.apiKeyEnv ?? 'TEMPORAL_API_KEY';
  const apiKey = env[apiKeyEnv] || undefined;
  const tlsSettings = settings?.tls;
  const certFile = env.TEMPORAL_TLS_CLIENT_CERT_PATH || tlsSettings?.clientCertFile;
  const keyFile = env.TEMPORAL_TLS_CLIENT_KEY_PATH || tlsSettings?.clientKeyFile;
  const caFile = env.TEMPORAL_TLS_SERVER_CA_CERT_PATH || tlsSettings?.serverRootCACertificateFile;
  const serverName = env.TEMPORAL_TLS_SERVER_NAME || tlsSettings?.serverName;
  const read = (file: string, what: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new InvalidInputError(`cannot read the Temporal ${what} ${file}: ${(err as Error).message}`);
    }
  };
  let tls: TLSConfig | boolean | undefined;
  if (certFile || keyFile || caFile || serverName) {
    if (Boolean(certFile) !== Boolean(keyFile)) throw new InvalidInputError('Temporal mTLS needs both a client certificate and a client key');
    tls = {
      ...(serverName ? { serverNameOverride: serverName } : {}),
      ...(caFile ? { serverRootCACertificate: read(caFile, 'server CA certificate') } : {}),
      ...(certFile && keyFile ? { clientCertPair: { crt: read(certFile, 'client certificate'), key: read(keyFile, 'client key') } } : {}),
    };
  } else if (apiKey) {
    tls = true; // API keys are only sent over TLS
  }
  return { address, namespace, ...(tls !== undefined ? { tls } : {}), ...(apiKey ? { apiKey } : {}) };
}
