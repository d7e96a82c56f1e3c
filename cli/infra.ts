import { ensureLocalS3, ensureLocalTemporal, stackDown, stackStatus } from '../infra/local-stack';
import { log, printJson } from './common';

export async function infraUp(opts: { json?: boolean }): Promise<void> {
  const t = await ensureLocalTemporal(log);
  const s = await ensureLocalS3(log);
  if (opts.json) printJson(await stackStatus());
  else {
    process.stdout.write(`Temporal  ${t.address}   Web UI ${t.uiUrl}\n`);
    process.stdout.write(`S3        ${s.endpoint}   bucket s3://${s.bucket}\n\n`);
    process.stdout.write(`To use the local S3 server as the store:\n`);
    process.stdout.write(`  set -a; . ${s.credentialsFile}; set +a\n  export AWS_ENDPOINT_URL_S3=${s.endpoint}\n  srlm run --set store.uri=s3://${s.bucket}/runs\n`);
  }
}

export async function infraStatus(opts: { json?: boolean }): Promise<void> {
  const services = await stackStatus();
  if (opts.json) printJson(services);
  else for (const s of services) process.stdout.write(`${s.name.padEnd(9)} ${s.running ? 'running' : 'stopped'}  ${s.address ?? ''}${s.uiUrl ? `  UI ${s.uiUrl}` : ''}${s.pid ? `  pid ${s.pid}` : ''}  ${s.detail}\n`);
}

export async function infraDown(): Promise<void> {
  await stackDown(log);
}
