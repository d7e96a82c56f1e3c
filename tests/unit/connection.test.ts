import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { parseConfig } from '../../core/config';
import { InvalidInputError, StoreUnavailableError } from '../../core/errors';
import { classifyS3Error } from '../../core/store/s3';
import { temporalTarget } from '../../workers/connection';
import { tempDir } from '../support/servers';

const VARS = ['TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'TEMPORAL_API_KEY', 'MY_KEY', 'TEMPORAL_TLS_CLIENT_CERT_PATH', 'TEMPORAL_TLS_CLIENT_KEY_PATH', 'TEMPORAL_TLS_SERVER_CA_CERT_PATH', 'TEMPORAL_TLS_SERVER_NAME'];

describe('Temporal connection settings', () => {
  let saved: Record<string, string | undefined>;
  beforeEach(() => {
    saved = Object.fromEntries(VARS.map((v) => [v, process.env[v]]));
    for (const v of VARS) delete process.env[v];
  });
  afterEach(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  const settings = (temporal: Record<string, unknown> = {}) => parseConfig({ model: { base: 'm' }, data: { ift: 'a', eft: 'b' }, temporal }).temporal;

  it('means "use the local dev server" when nothing names an address', () => {
    assert.equal(temporalTarget(settings()), undefined);
    assert.deepEqual(temporalTarget(settings(), '127.0.0.1:7233'), { address: '127.0.0.1:7233', namespace: 'default' });
  });

  it('takes the environment over the config', () => {
    process.env.TEMPORAL_ADDRESS = 'env-host:7233';
    process.env.TEMPORAL_NAMESPACE = 'env-ns';
    const t = temporalTarget(settings({ address: 'cfg-host:7233', namespace: 'cfg-ns' }));
    assert.deepEqual(t, { address: 'env-host:7233', namespace: 'env-ns' });
  });

  it('reads an API key from the variable the config names, and turns TLS on for it', () => {
    process.env.MY_KEY = 'k-123';
    const t = temporalTarget(settings({ address: 'cloud:7233', apiKeyEnv: 'MY_KEY' }));
    assert.equal(t?.apiKey, 'k-123');
    assert.equal(t?.tls, true);
  });

  it('loads mTLS files and insists on a complete pair', () => {
    const tmp = tempDir('tls');
    try {
      writeFileSync(path.join(tmp.dir, 'c.pem'), 'CERT');
      writeFileSync(path.join(tmp.dir, 'k.pem'), 'KEY');
      const t = temporalTarget(settings({ address: 'x:7233', tls: { clientCertFile: path.join(tmp.dir, 'c.pem'), clientKeyFile: path.join(tmp.dir, 'k.pem'), serverName: 'srv' } }));
      assert.deepEqual(t?.tls, { serverNameOverride: 'srv', clientCertPair: { crt: Buffer.from('CERT'), key: Buffer.from('KEY') } });
      assert.throws(() => temporalTarget(settings({ address: 'x:7233', tls: { clientCertFile: path.join(tmp.dir, 'c.pem') } })), /both a client certificate and a client key/);
      assert.throws(() => temporalTarget(settings({ address: 'x:7233', tls: { clientCertFile: '/nope/c', clientKeyFile: '/nope/k' } })), InvalidInputError);
    } finally {
      tmp.remove();
    }
  });
});

describe('S3 error classification', () => {
  const uri = 's3://b/k';
  const err = (fields: Record<string, unknown>) => Object.assign(new Error(String(fields.message ?? 'x')), fields);

  it('treats an unreachable or overloaded server as retryable', () => {
    for (const e of [
      err({ code: 'ECONNREFUSED' }),
      err({ name: 'TimeoutError' }),
      err({ name: 'InternalError', $metadata: { httpStatusCode: 500 } }),
      err({ name: 'SlowDown', $metadata: { httpStatusCode: 503 } }),
      err({ name: 'Throttled', $metadata: { httpStatusCode: 429 } }),
    ]) {
      const c = classifyS3Error(e, uri, 'uploading');
      assert.ok(c instanceof StoreUnavailableError, String(e.name));
      assert.match(c.message, /S3 unavailable while uploading s3:\/\/b\/k/);
    }
  });

  it('treats a missing bucket or denied access as a configuration error', () => {
    const noBucket = classifyS3Error(err({ name: 'NoSuchBucket', $metadata: { httpStatusCode: 404 } }), uri, 'uploading');
    assert.ok(noBucket instanceof InvalidInputError);
    assert.match(noBucket.message, /bucket does not exist/);
    const denied = classifyS3Error(err({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }), uri, 'reading');
    assert.ok(denied instanceof InvalidInputError);
    assert.match(denied.message, /check the AWS credentials/);
  });
});
