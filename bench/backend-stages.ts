/**
 * What `npm start` costs on each compute backend, printed (never asserted): the tiny preset's three
 * dominant kinds of work on its own model and data (paths world, seed 0), timed per backend in
 * child processes of one run:
 *   - SFT steps of M1 (IFT + EFT rows, the preset's batch and settings; `--steps`, default 40)
 *   - self-judging: the preset's judge settings (3 samples, up to 48 tokens) on `--judged`
 *     candidates (default 128), at each batch size of `--batches` (default: the preset's 128)
 *   - candidates: 8 per prompt at T 1.0, top-p 0.9, up to 12 tokens, batch 128, for 64 prompts
 * and the ratios against the first backend listed. Multiply a native run's stage times by them to
 * estimate a run without the native backend.
 *
 *   npm run build && node dist/bench/backend-stages.js [--backends tensorflow,wasm,cpu] [--steps N] [--judged N] [--batches 32,128]
 */
import { spawnSync } from 'node:child_process';

interface Figures {
  backend: string;
  sftStepsPerSecond: number;
  /** At the first of `--batches`; the others under `judgeByBatch`. */
  judgeTokensPerSecond: number;
  judgeByBatch: Record<string, number>;
  candidateTokensPerSecond: number;
}

function args(): { backends: string[]; steps: number; judged: number; batches: number[]; child: boolean } {
  const out = { backends: ['tensorflow', 'wasm'], steps: 40, judged: 128, batches: [128], child: false };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--child') {
      out.child = true;
      continue;
    }
    const v = argv[++i];
    if (v === undefined) throw new Error(`${a} needs a value`);
    if (a === '--backends') out.backends = v.split(',');
    else if (a === '--steps') out.steps = Number(v);
    else if (a === '--judged') out.judged = Number(v);
    else if (a === '--batches') out.batches = v.split(',').map(Number);
    else throw new Error(`unknown option ${a}`);
  }
  return out;
}

async function child(o: ReturnType<typeof args>): Promise<void> {
  const { initBackend } = await import('../core/compute/backend.js');
  const backend = (await initBackend()).name;
  const { presetConfig, parseConfig } = await import('../core/config/index.js');
  const { pathsModelConfig, pathsTokenizer, pathsWorld } = await import('../core/worlds/paths.js');
  const { TinyBaseSettings } = await import('../core/worlds/tiny.js');
  const { DecoderModel } = await import('../core/model/decoder.js');
  const { INSTRUCTION_TEMPLATE } = await import('../core/tokenizer/template.js');
  const { judgePrompt } = await import('../core/judge/prompt.js');
  const { sftExample } = await import('../core/method/examples.js');
  const { trainSft } = await import('../core/train/sft.js');
  const { generateCandidates } = await import('../core/method/candidates.js');
  const { judgeCandidates } = await import('../core/method/judging.js');
  const config = parseConfig({ ...presetConfig('tiny'), store: { uri: '/tmp/unused' } });
  const data = pathsWorld.data(0);
  // M0 as the pipeline makes it is minutes of pretraining on a slow backend: an untrained model of
  // the same shape costs the same per step and per token.
  const base = TinyBaseSettings.parse({});
  const tm = { model: DecoderModel.initialise(pathsModelConfig(base.hiddenSize, base.numLayers), 0), tokenizer: pathsTokenizer(), template: INSTRUCTION_TEMPLATE };
  const template = pathsWorld.judgeTemplate!;
  const examples = [
    ...data.ift.map((r) => sftExample(tm, r.instruction, r.response, config.sft.maxSeqLen)),
    ...data.eft.map((r) => sftExample(tm, judgePrompt(r.instruction, r.response, template), r.judgment, config.sft.maxSeqLen)),
  ];
  let t = Date.now();
  await trainSft(tm.model, examples, { ...config.sft, seed: 0, maxSteps: o.steps });
  const sftStepsPerSecond = o.steps / ((Date.now() - t) / 1000);

  const s = config.iterations.settings;
  const prompts = data.evalPrompts.slice(0, 64);
  t = Date.now();
  const candidates = await generateCandidates(tm, prompts, s.candidates, 1);
  const candidateTokensPerSecond = candidates.reduce((n, c) => n + c.tokens, 0) / ((Date.now() - t) / 1000);
  // Judge the EFT responses (of every quality) as candidates: judgments as long as the loop's.
  const judged = data.eft.slice(0, o.judged).map((r, i) => ({ promptId: `j${i}`, instruction: r.instruction, index: 0, response: r.response, finishReason: 'eos' as const, tokens: 0 }));
  const judgeByBatch: Record<string, number> = {};
  for (const batchSize of o.batches) {
    t = Date.now();
    const { judgments } = await judgeCandidates(tm, judged, { ...s.judge, template, batchSize }, 2);
    const seconds = (Date.now() - t) / 1000;
    judgeByBatch[batchSize] = judgments.reduce((n, j) => n + tm.tokenizer.encode(j.reply).length, 0) / seconds;
  }
  const figures: Figures = { backend, sftStepsPerSecond, judgeTokensPerSecond: judgeByBatch[o.batches[0]!]!, judgeByBatch, candidateTokensPerSecond };
  tm.model.dispose();
  console.log(`RESULT ${JSON.stringify(figures)}`);
}

function main(): void {
  const o = args();
  const rows: Figures[] = [];
  for (const backend of o.backends) {
    const t = Date.now();
    const r = spawnSync(process.execPath, [__filename, '--child', '--steps', String(o.steps), '--judged', String(o.judged), '--batches', o.batches.join(',')], { env: { ...process.env, SRLM_BACKEND: backend }, encoding: 'utf8', maxBuffer: 64 << 20 });
    const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    if (!line) {
      console.log(`${backend}: failed (${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')})`);
      continue;
    }
    rows.push(JSON.parse(line.slice(7)) as Figures);
    console.log(`${backend}: measured in ${((Date.now() - t) / 1000).toFixed(0)} s`);
  }
  if (rows.length === 0) return;
  const base = rows[0]!;
  const f = (x: number) => x.toFixed(x >= 100 ? 0 : 2);
  console.log(`\n| backend | M1 SFT steps/s | judging new tokens/s (batch ${o.batches[0]}) | candidates new tokens/s | slower than ${base.backend}: SFT / judging / candidates |`);
  console.log('| --- | --- | --- | --- | --- |');
  for (const r of rows) {
    console.log(`| ${r.backend} | ${f(r.sftStepsPerSecond)} | ${f(r.judgeTokensPerSecond)} | ${f(r.candidateTokensPerSecond)} | ${(base.sftStepsPerSecond / r.sftStepsPerSecond).toFixed(1)}× / ${(base.judgeTokensPerSecond / r.judgeTokensPerSecond).toFixed(1)}× / ${(base.candidateTokensPerSecond / r.candidateTokensPerSecond).toFixed(1)}× |`);
  }
  if (o.batches.length > 1) {
    console.log(`\njudging new tokens/s by batch size (× batch ${o.batches[0]}):`);
    for (const r of rows) console.log(`  ${r.backend}: ${o.batches.map((b) => `${b}: ${f(r.judgeByBatch[b]!)} (${(r.judgeByBatch[b]! / r.judgeTokensPerSecond).toFixed(2)}×)`).join(', ')}`);
  }
}

if (process.argv.includes('--child')) {
  child(args()).catch((err) => {
    console.error(err);
    process.exit(1);
  });
} else {
  main();
}
