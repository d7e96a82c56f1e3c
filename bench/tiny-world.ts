/**
 * How fast a tiny model learns the tiny world, printed (never asserted): builds the world, pretrains
 * M0 on its text, fine-tunes the SFT baseline (IFT) and M1 (IFT + EFT), and prints each phase's
 * wall time, the oracle's mean score of greedy answers to the held-out prompts, M1's parse rate and
 * pairwise accuracy as a judge on the ranked sets, its judgments of its own sampled candidates, and
 * how many self-instruct prompts it writes that survive the filters (and that the oracle can read).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/tiny-world.js
 *   TINY_PRETRAIN_EPOCHS=1 TINY_SFT_EPOCHS=8 TINY_M1_EPOCHS=3 TINY_LR=1e-2 node dist/bench/tiny-world.js   (the defaults)
 */
import { initBackend } from '../core/compute/backend';
import { evaluateJudge, modelJudge, respond } from '../core/eval/head-to-head';
import { judgePrompt } from '../core/judge/prompt';
import { judgeCandidates } from '../core/method/judging';
import { sftExample } from '../core/method/examples';
import { generatePrompts } from '../core/method/prompts';
import { complete, type TextModel } from '../core/method/text-model';
import { DecoderModel } from '../core/model/decoder';
import { deriveSeed } from '../core/random';
import { INSTRUCTION_TEMPLATE } from '../core/tokenizer/template';
import { ByteTokenizer } from '../core/tokenizer/tokenizer';
import { trainSft, type SftExample, type SftSettings } from '../core/train/sft';
import { makeTinyWorld, oracleScore, parseTask, TINY_JUDGE_TEMPLATE, tinyModelConfig, type TinyWorld } from '../core/worlds/tiny';

const env = (name: string, fallback: number) => (process.env[name] === undefined ? fallback : Number(process.env[name]));
const SEED = env('TINY_SEED', 0);
const LR = env('TINY_LR', 1e-2);
const PRETRAIN_EPOCHS = env('TINY_PRETRAIN_EPOCHS', 1);
const SFT_EPOCHS = env('TINY_SFT_EPOCHS', 8);
const M1_EPOCHS = env('TINY_M1_EPOCHS', 3);
const DROPOUT = env('TINY_DROPOUT', 0);
const ANSWER_TOKENS = env('TINY_ANSWER_TOKENS', 32);
const JUDGE_TOKENS = env('TINY_JUDGE_TOKENS', 48);
const PROMPT_COUNT = env('TINY_PROMPTS', 50);
const OWN_PROMPTS = env('TINY_OWN_PROMPTS', 30);

const phases: { phase: string; seconds: number }[] = [];
async function timed<T>(phase: string, f: () => Promise<T> | T): Promise<T> {
  const t = performance.now();
  const out = await f();
  const seconds = (performance.now() - t) / 1000;
  phases.push({ phase, seconds });
  console.log(`[${phase}] ${seconds.toFixed(1)} s`);
  return out;
}

function settings(epochs: number, maxSeqLen: number, seed: number): SftSettings {
  return {
    lr: LR, lrEnd: LR / 10, schedule: 'cosine', warmupSteps: 10, batchSize: 16, gradientAccumulation: 1, epochs, dropout: DROPOUT,
    weightDecay: 0, gradClip: 1, maxSeqLen, checkpointEverySteps: 1e9, checkpointEverySeconds: 1e9, seed,
  };
}

async function train(name: string, model: DecoderModel, examples: SftExample[], epochs: number, maxSeqLen: number): Promise<void> {
  await trainSft(model, examples, settings(epochs, maxSeqLen, deriveSeed(SEED, name)), {
    onProgress: (p) => {
      if (p.step % 50 === 0 || p.step === p.total) console.log(`  ${name} step ${p.step}/${p.total} loss ${p.loss.toFixed(3)}`);
    },
  });
}

const copy = async (m: DecoderModel) => new DecoderModel(m.config, await m.weights());

async function answerQuality(tm: TextModel, world: TinyWorld): Promise<{ mean: number; exact: number; byFamily: Record<string, number> }> {
  const answers = await respond(tm, world.evalPrompts, ANSWER_TOKENS);
  const scores: number[] = answers.map((a, i) => oracleScore(world.evalPrompts[i]!.instruction, a).score);
  const byFamily: Record<string, number[]> = {};
  world.evalPrompts.forEach((p, i) => {
    const f = parseTask(p.instruction);
    const key = f.ok ? f.task.family : 'unknown';
    (byFamily[key] ??= []).push(scores[i]!);
  });
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  return { mean: mean(scores), exact: scores.filter((s) => s === 5).length / scores.length, byFamily: Object.fromEntries(Object.entries(byFamily).map(([k, v]) => [k, Number(mean(v).toFixed(2))])) };
}

async function main(): Promise<void> {
  const backend = await initBackend();
  console.log(`tiny world bench: backend ${backend.name}, seed ${SEED}, lr ${LR}, epochs pretrain ${PRETRAIN_EPOCHS} / SFT ${SFT_EPOCHS} / M1 ${M1_EPOCHS}, dropout ${DROPOUT}`);
  const world = await timed('world', () => makeTinyWorld(SEED));
  console.log(`  ift ${world.ift.length}, eft ${world.eft.length}, eval ${world.evalPrompts.length}, ranked ${world.rankedEval.length}, pretrain ${world.pretrain.length}`);
  const config = tinyModelConfig();
  const tokenizer = new ByteTokenizer();
  const tm = (model: DecoderModel): TextModel => ({ model, tokenizer, template: INSTRUCTION_TEMPLATE });
  const params = (m: DecoderModel) => [...m.params.values()].reduce((a, v) => a + v.size, 0);

  const m0 = DecoderModel.initialise(config, SEED);
  console.log(`  model: hidden ${config.hiddenSize}, layers ${config.numLayers}, ${params(m0)} parameters, ${config.maxPositions} positions`);
  const pretrainExamples = world.pretrain.map((text) => ({ prompt: [tokenizer.bosTokenId], response: [...tokenizer.encode(text), tokenizer.eosTokenId] }));
  await timed('M0 pretrain', () => train('pretrain', m0, pretrainExamples, PRETRAIN_EPOCHS, config.maxPositions));

  const sft = await copy(m0);
  const iftExamples = world.ift.map((r) => sftExample(tm(sft), r.instruction, r.response));
  await timed('SFT baseline (IFT)', () => train('sft', sft, iftExamples, SFT_EPOCHS, config.maxPositions));

  const m1 = await copy(m0);
  const eftExamples = world.eft.map((r) => sftExample(tm(m1), judgePrompt(r.instruction, r.response, TINY_JUDGE_TEMPLATE), r.judgment));
  await timed('M1 (IFT+EFT)', () => train('m1', m1, [...iftExamples, ...eftExamples], M1_EPOCHS, config.maxPositions));

  const quality: Record<string, Awaited<ReturnType<typeof answerQuality>>> = {};
  for (const [name, m] of [['M0', m0], ['SFT', sft], ['M1', m1]] as const) {
    quality[name] = await timed(`eval answers ${name}`, () => answerQuality(tm(m), world));
  }

  const judgeSettings = { samples: 3, temperature: 0.7, topP: 0.9, maxNewTokens: JUDGE_TOKENS, template: TINY_JUDGE_TEMPLATE, batchSize: 32 };
  const judged = await timed('M1 judges ranked sets (3 samples + 1 for parse rate)', async () => {
    const items = world.rankedEval.flatMap((s) => s.responses.map((r, j) => ({ promptId: s.id, instruction: s.instruction, index: j, response: r.text, finishReason: 'eos' as const, tokens: 0 })));
    const metrics = await evaluateJudge(modelJudge(tm(m1), 'M1', judgeSettings, SEED), world.rankedEval);
    // Parse rate and agreement with the oracle's exact score, from one more sample per item.
    const { stats, judgments } = await judgeCandidates(tm(m1), items, { ...judgeSettings, samples: 1 }, deriveSeed(SEED, 'parse-rate'));
    const exact = judgments.filter((j, i) => j.score !== null && j.score === oracleScore(items[i]!.instruction, items[i]!.response).score).length;
    return { stats, metrics, exactScore: exact / judgments.length, example: judgments[0]!.reply };
  });

  // M1's own sampled candidates (4 per eval prompt, T 0.7): does its judge order them like the oracle?
  const own = await timed(`M1 candidates + self-judging (${OWN_PROMPTS} prompts × 4 × 3)`, async () => {
    const prompts = world.evalPrompts.slice(0, OWN_PROMPTS);
    const requests = prompts.flatMap((p) => Array.from({ length: 4 }, (_, k) => ({ prompt: INSTRUCTION_TEMPLATE.format(p.instruction), seed: deriveSeed(SEED, 'cand', p.id, k) })));
    const outs = await complete(tm(m1), requests, { maxNewTokens: ANSWER_TOKENS, temperature: 0.7, topP: 0.9, batchSize: 32 });
    const sets = prompts.map((p, i) => ({
      id: p.id,
      instruction: p.instruction,
      responses: outs.slice(i * 4, i * 4 + 4).map((c) => c.text.trim() || '(empty)'),
    }));
    const oracle: number[][] = sets.map((s) => s.responses.map((r) => oracleScore(s.instruction, r).score));
    const candidateMean = oracle.flat().reduce((a, b) => a + b, 0) / oracle.flat().length;
    const bestOf4 = oracle.map((o) => Math.max(...o)).reduce((a, b) => a + b, 0) / oracle.length;
    const judge = modelJudge(tm(m1), 'M1', judgeSettings, SEED);
    const scores = await judge.score(sets.flatMap((s) => s.responses.map((response) => ({ instruction: s.instruction, response }))));
    let pairs = 0;
    let agree = 0;
    let chosenBetter = 0;
    let pairsMade = 0;
    sets.forEach((_, i) => {
      const o = oracle[i]!;
      const m = scores.slice(i * 4, i * 4 + 4).map((x) => x ?? -1);
      for (let a = 0; a < 4; a++) for (let b = a + 1; b < 4; b++) {
        if (o[a] === o[b]) continue;
        pairs++;
        if (Math.sign(m[a]! - m[b]!) === Math.sign(o[a]! - o[b]!)) agree++;
      }
      const hi = m.indexOf(Math.max(...m));
      const lo = m.indexOf(Math.min(...m));
      if (m[hi]! > m[lo]!) {
        pairsMade++;
        if (o[hi]! > o[lo]!) chosenBetter++;
      }
    });
    return { candidateMean, bestOf4, pairs, pairwiseAgreement: pairs ? agree / pairs : NaN, pairsMade, chosenBetterByOracle: chosenBetter, example: sets[0] };
  });

  const selfInstruct = await timed(`M1 self-instruct (${PROMPT_COUNT} prompts)`, async () => {
    const result = await generatePrompts(
      tm(m1),
      { iftPrompts: world.ift.map((r) => r.instruction), earlierGenerated: [], pool: [...world.ift.map((r) => r.instruction), ...world.evalPrompts.map((p) => p.instruction)], iteration: 1, seed: SEED },
      { count: PROMPT_COUNT, fewShotIft: 6, fewShotGenerated: 2, temperature: 0.6, topP: 0.9, maxNewTokens: 48, rougeLThreshold: 0.7, minChars: 10, maxChars: 200, maxRounds: 3 },
    );
    const readable = result.prompts.filter((p) => parseTask(p.instruction).ok).length;
    return { ...result.stats, readableByOracle: readable, examples: result.prompts.slice(0, 8).map((p) => p.instruction) };
  });

  console.log('\n== phases (wall seconds; 2 shared cores, noisy) ==');
  for (const p of phases) console.log(`${p.phase.padEnd(48)} ${p.seconds.toFixed(1)}`);
  const training = phases.filter((p) => /pretrain|SFT|M1 \(/.test(p.phase)).reduce((a, p) => a + p.seconds, 0);
  console.log(`${'M0 + SFT + M1 training'.padEnd(48)} ${training.toFixed(1)}`);
  console.log('\n== oracle score of greedy answers to the eval prompts (0..5; exact = share scoring 5) ==');
  for (const [name, q] of Object.entries(quality)) console.log(`${name.padEnd(4)} mean ${q.mean.toFixed(2)}  exact ${(100 * q.exact).toFixed(0)}%  ${JSON.stringify(q.byFamily)}`);
  console.log('\n== M1 as a judge on the ranked sets ==');
  const m = judged.metrics;
  console.log(`parse rate ${(100 * (1 - judged.stats.failureRate)).toFixed(1)}% (${judged.stats.parsed}/${judged.stats.judgments}), judgment = oracle score ${(100 * judged.exactScore).toFixed(1)}%`);
  console.log(`pairwise accuracy ${(100 * m.pairwiseAccuracy).toFixed(1)}% (ties ${(100 * m.pairwiseTies).toFixed(1)}%, ${m.pairs} pairs), 5-best ${(100 * m.fiveBest).toFixed(1)}%, exact ${(100 * m.exactMatch).toFixed(1)}%, spearman ${m.spearman.toFixed(3)}, kendall ${m.kendall.toFixed(3)}, unscored ${m.unscored}`);
  console.log(`example judgment: ${JSON.stringify(judged.example)}`);
  console.log('\n== M1 judging its own candidates (T 0.7) ==');
  console.log(`candidate oracle mean ${own.candidateMean.toFixed(2)}, best-of-4 by oracle ${own.bestOf4.toFixed(2)}; judge/oracle pairwise agreement ${(100 * own.pairwiseAgreement).toFixed(1)}% on ${own.pairs} pairs; pairs made ${own.pairsMade}, chosen better than rejected by oracle ${own.chosenBetterByOracle}`);
  console.log(`example: ${JSON.stringify(own.example)}`);
  console.log('\n== M1 self-instruct ==');
  console.log(JSON.stringify(selfInstruct));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
