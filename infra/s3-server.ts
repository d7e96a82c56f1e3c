import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { CreateBucketCommand, HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { ensureS3Server, type Log } from './install';
import { portOpen, spawnDaemon, waitUntil } from './process';

export interface S3ServerOptions {
  /** The gateway serves this directory: each subdirectory is a bucket. */
  dataDir: string;
  ip?: string;
  port: number;
  accessKey: string;
  secretKey: string;
  logFile: string;
  detached: boolean;
}

export interface S3Server {
  pid: number;
  endpoint: string;
}

/** The Versity S3 Gateway over a local directory, with metadata in a sidecar directory beside it. */
export async function startS3Server(options: S3ServerOptions, log: Log): Promise<S3Server> {
  const ip = options.ip ?? '127.0.0.1';
  const bin = await ensureS3Server(log);
  if (await portOpen(ip, options.port)) {
    throw new Error(`port ${ip}:${options.port} is already in use; is another S3 server running? (srlm infra status)`);
  }
  const data = path.join(options.dataDir, 'buckets');
  const meta = path.join(options.dataDir, 'meta');
  mkdirSync(data, { recursive: true });
  mkdirSync(meta, { recursive: true });
  const child = spawnDaemon(bin, ['--port', `${ip}:${options.port}`, 'posix', '--sidecar', meta, data], {
    logFile: options.logFile,
    detached: options.detached,
    // The gateway reads its root credentials from the environment only, never from arguments (ps shows those).
    env: { ...process.env, ROOT_ACCESS_KEY: options.accessKey, ROOT_SECRET_KEY: options.secretKey },
  });
  const pid = child.pid!;
  await waitUntil(() => portOpen(ip, options.port), {
    timeoutMs: 30_000,
    pid,
    describe: () => `the S3 server did not come up on ${ip}:${options.port}; its log is ${options.logFile}`,
  });
  return { pid, endpoint: `http://${ip}:${options.port}` };
}

export async function ensureBucket(endpoint: string, accessKey: string, secretKey: string, bucket: string): Promise<void> {
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: accessKey, secretAccessKey: secretKey },
  });
  try {
    try {
      await client.send(new HeadBucketCommand({ Bucket: bucket }));
    } catch {
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
    }
  } finally {
    client.destroy();
  }
}
