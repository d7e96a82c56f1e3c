/**
 * Model throughput, printed (never asserted): training tokens/s (B16 × T128, AdamW, clipping —
 * the SFT trainer's own step) and generation new-tokens/s (greedy, prompt 16, 32 new tokens,
 * batch 1 and 32, with and without the KV cache; the median of 5 to 31 calls, as the baseline does),
 * and DPO training tokens/s through the training graph and eagerly, for each model size in bench/configs and each backend available here. With SRLM_TORCH_PYTHON set (a Python with torch and transformers), the
 * same models are measured in PyTorch on CPU in the same run (bench/torch_baseline.py) and the
 * ratios printed.
 *
 *   npm run bench:model                         # tfjs only
 *   SRLM_TORCH_PYTHON=~/venv/bin/python npm run bench:model
 *   BENCH_ROUNDS=3 SRLM_TORCH_PYTHON=… npm run bench:model   (three rounds, each ours then torch; medians)
 *   BENCH_BACKENDS=tensorflow,wasm BENCH_CONFIGS=llama-0.8m npm run bench:model   (default: tensorflow, both sizes)
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');
const CONFIG_DIR = path.join(ROOT, 'bench', 'configs');

interface Measure {
  backend: string;
  parameters: number;
  train: { tokensPerSecond: number; seconds: number; steps: number };
  generate: { batch: number; cache: boolean; tokensPerSecond: number; seconds: number }[];
  /** DPO training tokens/s (chosen and rejected rows) through the training graph and eagerly. */
  dpo: { graph?: number; eager: number };
}

async function child(configName: string): Promise<void> {
  const { initBackend } = await import('../core/compute/backend.js');
  const { fromHfConfig } = await import('../core/model/config.js');
  const { DecoderModel } = await import('../core/model/decoder.js');
  const { generate } = await import('../core/model/generate.js');
  const { trainSft } = await import('../core/train/sft.js');
  const { trainDpo } = await import('../core/train/dpo.js');
  const { withGraphs } = await import('../core/compute/graph.js');
  const { Rng } = await import('../core/random.js');
  const info = await initBackend(undefined, () => undefined);
  const config = fromHfConfig(JSON.parse(readFileSync(path.join(CONFIG_DIR, `${configName}.json`), 'utf8')), configName);
  const model = DecoderModel.initialise(config, 0);
  const parameters = [...model.params.values()].reduce((a, v) => a + v.size, 0);
  const slow = info.name !== 'tensorflow' && info.name !== 'tensorflow-gpu';
  const rng = new Rng(1);
  const ids = (n: number) => Array.from({ length: n }, () => 3 + rng.int(config.vocabSize - 3));

  // Training: the trainer's real step. Prompt of 1 token + 128 response tokens → T = 128 inputs.
  const examples = Array.from({ length: 64 }, () => ({ prompt: ids(1), response: ids(128) }));
  const warmup = 2;
  const steps = slow ? 2 : 10;
  let t0 = 0;
  await trainSft(model, examples, {
    lr: 1e-4, lrEnd: 1e-4, schedule: 'constant', warmupSteps: 0, batchSize: 16, gradientAccumulation: 1, epochs: 100, dropout: 0,
    weightDecay: 0, gradClip: 1, maxSeqLen: 128, checkpointEverySteps: 1e9, checkpointEverySeconds: 1e9, seed: 0, maxSteps: warmup + steps,
  }, { onProgress: (p) => { if (p.step === warmup) t0 = performance.now(); } });
  const trainSeconds = (performance.now() - t0) / 1000;
  const result: Measure = { backend: info.name, parameters, train: { tokensPerSecond: (16 * 128 * steps) / trainSeconds, seconds: trainSeconds, steps }, generate: [], dpo: { eager: 0 } };

  // DPO: the trainer's step (16 pairs of prompt 16 + responses 64: 32 rows of 79 inputs), through
  // the training graph and eagerly (SRLM_GRAPHS=0), timed from the end of the warm-up steps to the
  // last step (the reference log-probs before and the final ones after are not counted).
  const pairs = Array.from({ length: 32 }, () => ({ prompt: ids(16), chosen: ids(64), rejected: ids(64) }));
  for (const mode of slow ? (['eager'] as const) : (['graph', 'eager'] as const)) {
    const policy = DecoderModel.initialise(config, 1);
    const dpoSteps = slow ? 1 : 5;
    const times: number[] = [];
    await withGraphs(mode === 'graph', () => trainDpo(policy, pairs, {
      lr: 1e-4, lrEnd: 1e-4, schedule: 'constant', warmupSteps: 0, batchSize: 16, gradientAccumulation: 1, epochs: 100, dropout: 0,
      weightDecay: 0, gradClip: 1, checkpointEverySteps: 1e9, checkpointEverySeconds: 1e9, seed: 0, maxSteps: 1 + dpoSteps, beta: 0.1, loss: 'sigmoid', nllWeight: 1,
    }, { onProgress: () => times.push(performance.now()) }));
    result.dpo[mode] = (32 * 79 * dpoSteps) / ((times.at(-1)! - times[0]!) / 1000);
    policy.dispose();
  }

  for (const batch of [1, 32]) {
    for (const cache of [true, false]) {
      if (slow && batch === 32 && !cache) continue;
      const prompts = Array.from({ length: batch }, () => ids(16));
      await generate(model, prompts, { maxNewTokens: 4, greedy: true, eosTokenId: null, useCache: cache });
      // As torch_baseline.py: the median of at least 5 timed calls, more until they add up to 3 s
      // (at most 31): a call of the small model takes tens of milliseconds on a shared machine.
      const times: number[] = [];
      do {
        const t = performance.now();
        await generate(model, prompts, { maxNewTokens: 32, greedy: true, eosTokenId: null, useCache: cache });
        times.push((performance.now() - t) / 1000);
      } while ((times.length < 5 || times.reduce((a, b) => a + b, 0) < 3) && times.length < 31);
      const seconds = times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
      result.generate.push({ batch, cache, seconds, tokensPerSecond: (batch * 32) / seconds });
    }
  }
  model.dispose();
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

interface TorchResult {
  train: { tokens_per_second: number };
  generate: { batch: number; cache: boolean; tokens_per_second: number }[];
  threads: number;
  torch: string;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

/** Each figure's median over rounds (the rounds measure the same things in the same order). */
function medianMeasure(ms: Measure[]): Measure {
  const first = ms[0]!;
  return {
    ...first,
    train: { ...first.train, tokensPerSecond: median(ms.map((m) => m.train.tokensPerSecond)) },
    generate: first.generate.map((g, i) => ({ ...g, tokensPerSecond: median(ms.map((m) => m.generate[i]!.tokensPerSecond)) })),
    dpo: { eager: median(ms.map((m) => m.dpo.eager)), ...(first.dpo.graph === undefined ? {} : { graph: median(ms.map((m) => m.dpo.graph!)) }) },
  };
}

function medianTorch(ts: TorchResult[]): TorchResult {
  const first = ts[0]!;
  return {
    ...first,
    train: { tokens_per_second: median(ts.map((t) => t.train.tokens_per_second)) },
    generate: first.generate.map((g, i) => ({ ...g, tokens_per_second: median(ts.map((t) => t.generate[i]!.tokens_per_second)) })),
  };
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') return child(process.argv[3]!);
  const configs = (process.env.BENCH_CONFIGS ?? 'llama-0.8m,llama-7m').split(',');
  // wasm and cpu train 10-100× slower (22 minutes for both sizes with wasm): opt in with BENCH_BACKENDS.
  const backends = (process.env.BENCH_BACKENDS ?? 'tensorflow').split(',');
  const torchPython = process.env.SRLM_TORCH_PYTHON;
  const rounds = Math.max(1, Math.floor(Number(process.env.BENCH_ROUNDS ?? 1)) || 1);
  console.log(`model throughput (node ${process.version}, ${cpus().length} cores); training B16×T128 AdamW; generation greedy, prompt 16, 32 new tokens${rounds > 1 ? `; medians of ${rounds} rounds` : ''}`);
  for (const config of configs) {
    // Each round measures every backend and then PyTorch, so a slow spell on this shared machine
    // falls on both sides of a ratio; the table gives each figure's median over the rounds.
    const measured: Measure[][] = backends.map(() => []);
    const torchRuns: TorchResult[] = [];
    for (let round = 0; round < rounds; round++) {
      backends.forEach((backend, i) => {
        const res = spawnSync(process.execPath, [__filename, '--child', config], { env: { ...process.env, SRLM_BACKEND: backend }, encoding: 'utf8', timeout: 1_800_000 });
        if (res.status === 0) measured[i]!.push(JSON.parse(res.stdout.trim().split('\n').pop()!) as Measure);
        else if (round === 0) console.log(`  ${config} on ${backend}: not measured (${(res.stderr || '').trim().split('\n').pop()})`);
      });
      if (torchPython) {
        const res = spawnSync(torchPython, [path.join(ROOT, 'bench', 'torch_baseline.py'), '--config', path.join(CONFIG_DIR, `${config}.json`)], { encoding: 'utf8', timeout: 1_800_000 });
        if (res.status === 0) torchRuns.push(JSON.parse(res.stdout) as TorchResult);
        else if (round === 0) console.log(`  PyTorch baseline failed: ${res.stderr.trim().split('\n').pop()}`);
      }
    }
    const rows = measured.filter((m) => m.length > 0).map(medianMeasure);
    const torch = torchRuns.length ? medianTorch(torchRuns) : undefined;
    const params = rows[0]?.parameters;
    console.log(`\n${config} (${params ? `${(params / 1e6).toFixed(2)}M parameters` : '?'})`);
    const header = ['', 'train tok/s', 'gen b1 cache', 'gen b1 none', 'gen b32 cache', 'gen b32 none'];
    console.log(header.map((h, i) => (i === 0 ? h.padEnd(22) : h.padStart(14))).join(''));
    const fmt = (x: number | undefined) => (x === undefined ? '—' : x >= 100 ? x.toFixed(0) : x.toFixed(1));
    const gen = (list: { batch: number; cache: boolean; tokensPerSecond?: number; tokens_per_second?: number }[], b: number, c: boolean) => {
      const hit = list.find((g) => g.batch === b && g.cache === c);
      return hit?.tokensPerSecond ?? hit?.tokens_per_second;
    };
    const line = (name: string, train: number | undefined, g: Parameters<typeof gen>[0]) =>
      console.log([name.padEnd(22), ...[train, gen(g, 1, true), gen(g, 1, false), gen(g, 32, true), gen(g, 32, false)].map((x) => fmt(x).padStart(14))].join(''));
    for (const r of rows) line(`tfjs ${r.backend}`, r.train.tokensPerSecond, r.generate);
    for (const r of rows) {
      const graph = r.dpo.graph ? `graph ${fmt(r.dpo.graph)}, ` : '';
      const ratio = r.dpo.graph ? ` (${(r.dpo.graph / r.dpo.eager).toFixed(2)}×)` : '';
      console.log(`  DPO tok/s on ${r.backend} (16 pairs, 32 rows × 79): ${graph}eager ${fmt(r.dpo.eager)}${ratio}`);
    }
    if (torch) {
      line(`pytorch cpu (${torch.threads} thr)`, torch.train.tokens_per_second, torch.generate);
      for (const r of rows) {
        const ratio = (a: number | undefined, b: number | undefined) => (a && b ? `${(a / b).toFixed(2)}×` : '—');
        console.log([`  ratio ${r.backend}/torch`.padEnd(22), ...[
          ratio(r.train.tokensPerSecond, torch.train.tokens_per_second),
          ratio(gen(r.generate, 1, true), gen(torch.generate, 1, true)),
          ratio(gen(r.generate, 1, false), gen(torch.generate, 1, false)),
          ratio(gen(r.generate, 32, true), gen(torch.generate, 32, true)),
          ratio(gen(r.generate, 32, false), gen(torch.generate, 32, false)),
        ].map((x) => x.padStart(14))].join(''));
      }
      const ours = measured.find((m) => m.length === torchRuns.length);
      if (rounds > 1 && ours) {
        const each = (f: (m: Measure, t: TorchResult) => number | undefined) => ours.map((m, i) => (f(m, torchRuns[i]!) ?? NaN).toFixed(2)).join(' / ');
        console.log(`  per round, ${ours[0]!.backend}/torch: train ${each((m, t) => m.train.tokensPerSecond / t.train.tokens_per_second)}; gen b32 cache ${each((m, t) => gen(m.generate, 32, true)! / gen(t.generate, 32, true)!)}`);
      }
    }
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
