/**
 * How fast a tiny model learns the tiny world, printed (never asserted): builds the world, pretrains
 * M0 on its text, fine-tunes the SFT baseline (IFT) and M1 (IFT + EFT), and prints each phase's
 * wall time, the oracle's mean score of greedy answers to the held-out prompts, M1's parse rate and
 * pairwise accuracy as a judge on the ranked sets, its judgments of its own sampled candidates, and
 * how many self-instruct prompts it writes that survive the filters (and that the oracle can read).
 *
 * The model uses the world's word tokenizer (one token per word, digit or mark).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/tiny-world.js
 *   TINY_SEED=1 TINY_PROMPTS=200 node dist/bench/tiny-world.js   (defaults: the tiny preset's settings; see env below for all knobs)
 */
import { initBackend } from '../core/compute/backend';
import { evaluateJudge, modelJudge, respond } from '../core/eval/head-to-head';
import { judgePrompt } from '../core/judge/prompt';
import { judgeCandidates } from '../core/method/judging';
import { preferencePair, sftExample } from '../core/method/examples';
import { trainDpo } from '../core/train/dpo';
import { generatePrompts, selfInstructPrompt } from '../core/method/prompts';
import { tinyBaseModel, tinyTextModel, tinyTokenizer, TINY_SELF_INSTRUCT_TEMPLATE } from '../core/worlds/tiny';
import { complete, type TextModel } from '../core/method/text-model';
import { DecoderModel } from '../core/model/decoder';
import { deriveSeed } from '../core/random';
import { INSTRUCTION_TEMPLATE } from '../core/tokenizer/template';
import { trainSft, type SftExample, type SftSettings } from '../core/train/sft';
import { makeTinyWorld, oracleScore, parseTask, TINY_JUDGE_TEMPLATE, type TinyWorld } from '../core/worlds/tiny';

const env = (name: string, fallback: number) => (process.env[name] === undefined ? fallback : Number(process.env[name]));
const SEED = env('TINY_SEED', 0);
const LR = env('TINY_LR', 3e-3);
const PRETRAIN_LR = env('TINY_PRETRAIN_LR', 3e-3);
const PRETRAIN_EPOCHS = env('TINY_PRETRAIN_EPOCHS', 4);
// The pipeline trains the SFT baseline and M1 with the same settings (the tiny preset's sft: 12 epochs).
const SFT_EPOCHS = env('TINY_SFT_EPOCHS', 12);
const M1_EPOCHS = env('TINY_M1_EPOCHS', 12);
const BATCH = env('TINY_BATCH', 16);
const HIDDEN = env('TINY_HIDDEN', 64);
const LAYERS = env('TINY_LAYERS', 2);
const DROPOUT = env('TINY_DROPOUT', 0);
const ANSWER_TOKENS = env('TINY_ANSWER_TOKENS', 12);
const JUDGE_TOKENS = env('TINY_JUDGE_TOKENS', 20);
const PROMPT_TOKENS = env('TINY_PROMPT_TOKENS', 16);
const PROMPT_COUNT = env('TINY_PROMPTS', 200);
const OWN_PROMPTS = env('TINY_OWN_PROMPTS', 30);
const ROUGE = env('TINY_ROUGE', 0.7);
const DPO_LR = env('TINY_DPO_LR', 1e-4);
const DPO_BETA = env('TINY_DPO_BETA', 0.1);
const DPO_EPOCHS = env('TINY_DPO_EPOCHS', 2);
const DPO_BATCH = env('TINY_DPO_BATCH', 8);

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
    lr: LR, lrEnd: LR / 10, schedule: 'cosine', warmupSteps: 10, batchSize: BATCH, gradientAccumulation: 1, epochs, dropout: DROPOUT,
    weightDecay: 0, gradClip: 1, maxSeqLen, checkpointEverySteps: 1e9, checkpointEverySeconds: 1e9, seed,
  };
}

async function train(name: string, model: DecoderModel, examples: SftExample[], epochs: number, maxSeqLen: number): Promise<void> {
  await trainSft(model, examples, settings(epochs, maxSeqLen, deriveSeed(SEED, name)), {
    onProgress: (p) => {
      if (p.step % 100 === 0 || p.step === p.total) console.log(`  ${name} step ${p.step}/${p.total} loss ${p.loss.toFixed(3)}`);
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
  console.log(`tiny world bench: backend ${backend.name}, seed ${SEED}, lr ${LR} (pretrain ${PRETRAIN_LR}), batch ${BATCH}, epochs pretrain ${PRETRAIN_EPOCHS} / SFT ${SFT_EPOCHS} / M1 ${M1_EPOCHS}, dropout ${DROPOUT}, load ${(await import('node:os')).loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const world = await timed('world', () => makeTinyWorld(SEED));
  console.log(`  ift ${world.ift.length}, eft ${world.eft.length}, eval ${world.evalPrompts.length}, ranked ${world.rankedEval.length}, pretrain ${world.pretrain.length}`);
  const tokenizer = tinyTokenizer();
  const tm = tinyTextModel;
  const params = (m: DecoderModel) => [...m.params.values()].reduce((a, v) => a + v.size, 0);
  const tokens = (texts: string[]) => texts.map((t) => tokenizer.encode(t).length);
  const stats = (xs: number[]) => `mean ${(xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(1)} max ${Math.max(...xs)}`;
  console.log(`  tokens: vocab ${tokenizer.vocabSize}; IFT prompt+answer ${stats(world.ift.map((r) => tokenizer.encode(INSTRUCTION_TEMPLATE.format(r.instruction)).length + tokenizer.encode(r.response).length + 1))}; EFT ${stats(world.eft.map((r) => tokenizer.encode(INSTRUCTION_TEMPLATE.format(judgePrompt(r.instruction, r.response, TINY_JUDGE_TEMPLATE))).length + tokenizer.encode(r.judgment).length + 1))}; pretrain ${stats(tokens(world.pretrain))}`);

  const m0 = await timed('M0 pretrain', async () => {
    const base = await tinyBaseModel(SEED, world.pretrain, { epochs: PRETRAIN_EPOCHS, lr: PRETRAIN_LR, lrEnd: PRETRAIN_LR / 10, batchSize: BATCH, hiddenSize: HIDDEN, numLayers: LAYERS }, (step, total, loss) => {
      if (step % 100 === 0 || step === total) console.log(`  pretrain step ${step}/${total} loss ${loss.toFixed(3)}`);
    });
    return base.model;
  });
  const config = m0.config;
  console.log(`  model: hidden ${config.hiddenSize}, layers ${config.numLayers}, ${params(m0)} parameters, ${config.maxPositions} positions`);

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
      { count: PROMPT_COUNT, fewShotIft: 6, fewShotGenerated: 2, temperature: 0.6, topP: 0.9, maxNewTokens: PROMPT_TOKENS, rougeLThreshold: ROUGE, minChars: 5, maxChars: 200, maxRounds: 3, template: TINY_SELF_INSTRUCT_TEMPLATE },
    );
    const raw = await complete(tm(m1), [0, 1, 2, 3].map((k) => ({ prompt: selfInstructPrompt(world.ift.slice(k * 6, k * 6 + 6).map((r) => r.instruction), TINY_SELF_INSTRUCT_TEMPLATE), seed: k })), { maxNewTokens: PROMPT_TOKENS, temperature: 0.6, topP: 0.9, stop: ['\n'] });
    console.log(`  raw self-instruct completions: ${JSON.stringify(raw.map((c) => c.text))}`);
    const readable = result.prompts.filter((p) => parseTask(p.instruction).ok).length;
    return { prompts: result.prompts, ...result.stats, readableByOracle: readable, keptAndReadable: readable / result.stats.generated, examples: result.prompts.slice(0, 8).map((p) => p.instruction) };
  });

  // One self-rewarding iteration on M1's own prompts: 4 candidates each, M1 judges each 3×, best vs worst → DPO → M2.
  const iterPrompts = selfInstruct.prompts.length >= 16 ? selfInstruct.prompts : [...selfInstruct.prompts, ...world.ift.filter((r) => parseTask(r.instruction).ok).slice(0, 64).map((r) => ({ instruction: r.instruction }))];
  const candidates = await timed(`iteration: ${iterPrompts.length} prompts × 4 candidates`, async () => {
    const requests = iterPrompts.flatMap((p, i) => [0, 1, 2, 3].map((k) => ({ prompt: INSTRUCTION_TEMPLATE.format(p.instruction), seed: deriveSeed(SEED, 'iter-cand', i, k) })));
    const outs = await complete(tm(m1), requests, { maxNewTokens: ANSWER_TOKENS, temperature: 0.7, topP: 0.9, batchSize: 32 });
    return iterPrompts.map((p, i) => ({ instruction: p.instruction, responses: outs.slice(i * 4, i * 4 + 4).map((c) => c.text.trim()) }));
  });
  const pairs = await timed(`iteration: judging ${candidates.length * 4} candidates × 3`, async () => {
    const scores = await modelJudge(tm(m1), 'M1', judgeSettings, deriveSeed(SEED, 'iter-judge')).score(candidates.flatMap((c) => c.responses.map((response) => ({ instruction: c.instruction, response }))));
    const out: { instruction: string; chosen: string; rejected: string; oracleMargin: number }[] = [];
    candidates.forEach((c, i) => {
      const sc = scores.slice(i * 4, i * 4 + 4).map((x) => x ?? -1);
      const hi = sc.indexOf(Math.max(...sc));
      const lo = sc.indexOf(Math.min(...sc));
      if (sc[hi]! > sc[lo]! && c.responses[hi] !== c.responses[lo] && sc[lo]! >= 0) {
        out.push({ instruction: c.instruction, chosen: c.responses[hi]!, rejected: c.responses[lo]!, oracleMargin: Math.sign(oracleScore(c.instruction, c.responses[hi]!).score - oracleScore(c.instruction, c.responses[lo]!).score) });
      }
    });
    return out;
  });
  const dpoPairs = pairs.filter((p) => p.chosen.length > 0 || p.rejected.length > 0);
  console.log(`  pairs ${dpoPairs.length}: chosen better by oracle ${dpoPairs.filter((p) => p.oracleMargin > 0).length}, worse ${dpoPairs.filter((p) => p.oracleMargin < 0).length}`);
  let m2Quality: Awaited<ReturnType<typeof answerQuality>> | undefined;
  if (dpoPairs.length >= DPO_BATCH) {
    const m2 = await copy(m1);
    const dpoSteps = await timed(`iteration: DPO (${DPO_EPOCHS} epochs, batch ${DPO_BATCH}, lr ${DPO_LR}, beta ${DPO_BETA})`, async () => {
      const r = await trainDpo(m2, dpoPairs.map((p) => preferencePair(tm(m2), p)), {
        lr: DPO_LR, lrEnd: DPO_LR / 10, schedule: 'cosine', warmupSteps: 2, batchSize: DPO_BATCH, gradientAccumulation: 1, epochs: DPO_EPOCHS, dropout: 0, weightDecay: 0, gradClip: 1,
        checkpointEverySteps: 1e9, checkpointEverySeconds: 1e9, seed: deriveSeed(SEED, 'dpo'), beta: DPO_BETA, loss: 'sigmoid',
      });
      console.log(`  DPO final: ${JSON.stringify(r.final)}`);
      return r.step;
    });
    console.log(`  DPO steps ${dpoSteps}`);
    m2Quality = await timed('eval answers M2', () => answerQuality(tm(m2), world));
  }

  console.log('\n== phases (wall seconds; 2 shared cores, noisy) ==');
  for (const p of phases) console.log(`${p.phase.padEnd(48)} ${p.seconds.toFixed(1)}`);
  const training = phases.filter((p) => /pretrain|SFT|M1 \(/.test(p.phase)).reduce((a, p) => a + p.seconds, 0);
  console.log(`${'M0 + SFT + M1 training'.padEnd(48)} ${training.toFixed(1)}`);
  console.log('\n== oracle score of greedy answers to the eval prompts (0..5; exact = share scoring 5) ==');
  if (m2Quality) quality.M2 = m2Quality;
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
  const { prompts: _kept, ...siStats } = selfInstruct;
  console.log(JSON.stringify(siStats));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
