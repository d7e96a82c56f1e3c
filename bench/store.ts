/**
 * `npm run bench`: measurements, printed — never asserted. Today: artifact store throughput, the
 * local directory store against the real S3 server (Versity S3 Gateway on loopback), for a
 * checkpoint-sized object, with a plain file copy as the baseline measured in the same run.
 * The model benchmarks (training and generation tokens/s against PyTorch) join with the model core.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { LocalStore } from '../core/store/local';
import { S3Store } from '../core/store/s3';
import { readAll } from '../core/store/hashing';
import { startTestS3, tempDir } from '../tests/support/servers';

const MiB = 1024 * 1024;

async function* bytes(total: number) {
  const cipher = createCipheriv('aes-256-ctr', createHash('sha256').update('bench').digest(), Buffer.alloc(16));
  const zeros = Buffer.alloc(MiB);
  for (let sent = 0; sent < total; sent += MiB) yield cipher.update(zeros.subarray(0, Math.min(MiB, total - sent)));
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

async function main(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'; // the lockfile pins a Node 20 release
  const size = Number(process.env.BENCH_MIB ?? 128) * MiB;
  const reps = Number(process.env.BENCH_REPS ?? 3);
  const tmp = tempDir('bench');
  const s3 = await startTestS3();
  try {
    const source = path.join(tmp.dir, 'source.bin');
    await pipeline(bytes(size), createWriteStream(source));
    const local = new LocalStore(path.join(tmp.dir, 'store'));
    const remote = new S3Store({ bucket: s3.bucket, prefix: 'bench', client: s3.client() });
    const rows: [string, number[]][] = [
      ['file copy (baseline)', []],
      ['local store put', []],
      ['local store get (verified)', []],
      ['S3 store put (multipart)', []],
      ['S3 store get (verified)', []],
    ];
    for (let r = 0; r < reps; r++) {
      rows[0]![1].push(await time(() => pipeline(createReadStream(source), createWriteStream(path.join(tmp.dir, 'copy.bin')))));
      rows[1]![1].push(await time(() => local.put('ckpt/model.safetensors', createReadStream(source))));
      rows[2]![1].push(await time(async () => readAll(await local.getStream('ckpt/model.safetensors'))));
      rows[3]![1].push(await time(() => remote.put('ckpt/model.safetensors', createReadStream(source))));
      rows[4]![1].push(await time(async () => readAll(await remote.getStream('ckpt/model.safetensors'))));
    }
    const baseline = Math.min(...rows[0]![1]);
    console.log(`artifact store throughput, ${size / MiB} MiB object, best of ${reps} (machine: ${process.arch}, node ${process.version})`);
    console.log(`${'operation'.padEnd(30)} ${'best s'.padStart(8)} ${'MiB/s'.padStart(8)} ${'× copy time'.padStart(12)}`);
    for (const [name, secs] of rows) {
      const best = Math.min(...secs);
      console.log(`${name.padEnd(30)} ${best.toFixed(3).padStart(8)} ${(size / MiB / best).toFixed(0).padStart(8)} ${(best / baseline).toFixed(2).padStart(12)}`);
    }
  } finally {
    await s3.stop();
    await fs.rm(tmp.dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
