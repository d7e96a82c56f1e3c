/**
 * A preset's whole loop (the tiny preset's by default) without Temporal, for quick experiments on its settings: the same
 * pipeline steps (core/pipeline/steps.ts) on a local store, so M0, SFT, M1 and any step whose inputs
 * and settings are unchanged are reused from earlier invocations. Runs the method (the model judges
 * itself) and the reference arms (random judge, oracle judge) from the same M1 and prints, per
 * iteration: pairs and how they look to the oracle, the judge's accuracy on the candidates, the new
 * model's win rate against the one before (oracle judge, both orders) and its mean oracle score.
 * Figures only; nothing is asserted.
 *
 *   npm run build && node dist/bench/tiny-loop.js [--preset tiny|lists] [--seed N] [--world paths|tiny] [--judges self,random,oracle] [--store DIR] [--set key=value ...]
 *   e.g. --set iterations.settings.candidates.n=8 --set iterations.settings.dpo.lr=3e-4
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../core/compute/backend';
import { applyAssignments, presetConfig, type RunConfig } from '../core/config';
import type { ArtifactRef } from '../core/store/artifact';
import * as steps from '../core/pipeline/steps';
import { LocalStore } from '../core/store/local';

function args(): { preset: string; seed: number; world: string | null; judges: ('self' | 'random' | 'oracle')[]; store: string; sets: string[] } {
  const argv = process.argv.slice(2);
  const out = { preset: 'tiny', seed: 0, world: null as string | null, judges: ['self', 'random', 'oracle'] as ('self' | 'random' | 'oracle')[], store: path.join(os.homedir(), '.srlm', 'tiny-loop'), sets: [] as string[] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[++i];
    if (v === undefined) throw new Error(`${a} needs a value`);
    if (a === '--preset') out.preset = v;
    else if (a === '--seed') out.seed = Number(v);
    else if (a === '--world') out.world = v;
    else if (a === '--judges') out.judges = v.split(',') as typeof out.judges;
    else if (a === '--store') out.store = path.resolve(v);
    else if (a === '--set') out.sets.push(v);
    else throw new Error(`unknown option ${a}`);
  }
  return out;
}

async function main(): Promise<void> {
  const o = args();
  const backend = (await initBackend()).name;
  // --world swaps the preset's built-in world (its base model and every data split) for another.
  const splits = { ift: 'ift', eft: 'eft', evalPrompts: 'eval-prompts', rankedEval: 'ranked-eval' };
  const world = o.world ? [`model.base=builtin:${o.world}`, ...Object.entries(splits).map(([field, split]) => `data.${field}=builtin:${o.world}/${split}`)] : [];
  const config: RunConfig = applyAssignments({ ...presetConfig(o.preset), seed: o.seed, store: { uri: o.store } }, [...world, ...o.sets]);
  const store = new LocalStore(o.store);
  let lastBeat = 0;
  const ctx: steps.StepContext = {
    store,
    backend,
    scratch: path.join(os.tmpdir(), 'srlm-tiny-loop'),
    heartbeat: (h) => {
      if (Date.now() - lastBeat < 10_000) return;
      lastBeat = Date.now();
      console.log(`    ${h.phase} ${h.step}/${h.total}`);
    },
  };
  const runId = `${o.preset}-loop-s${o.seed}`;
  const started = Date.now();
  const timed = async <T extends { reused?: boolean }>(what: string, f: () => Promise<T>): Promise<T> => {
    const t = Date.now();
    const r = await f();
    console.log(`  ${what}: ${((Date.now() - t) / 1000).toFixed(1)} s${r.reused ? ' (reused)' : ''}`);
    return r;
  };
  console.log(`tiny loop: seed ${o.seed}, backend ${backend}, store ${o.store}, sets ${JSON.stringify(o.sets)}`);
  const data = await timed('data', () => steps.prepareData(ctx, { runId, config }));
  const base = await timed('M0', () => steps.prepareBase(ctx, { runId, config }));
  const sft = await timed('SFT', () => steps.sftStep(ctx, { runId, config, name: 'SFT', base: base.model, ift: data.ift }));
  const m1 = await timed('M1', () => steps.sftStep(ctx, { runId, config, name: 'M1', base: base.model, ift: data.ift, eft: data.eft }));
  const evalPrompts = data.evalPrompts!;
  const answers = async (name: string, model: ArtifactRef) => (await timed(`${name} answers`, () => steps.responsesStep(ctx, { runId, config, name, model, evalPrompts }))).responses;
  const measure = async (c: RunConfig, name: string, model: ArtifactRef, responses: ArtifactRef) => (await timed(`${name} oracle eval`, () => steps.oracleEvalStep(ctx, { runId, config: c, name, model, responses, evalPrompts }))).evaluation!;
  const versus = async (a: { name: string; model: ArtifactRef; responses: ArtifactRef }, b: { name: string; model: ArtifactRef; responses: ArtifactRef }) =>
    (await steps.headToHeadStep(ctx, { runId, config, a, b, evalPrompts, judge: 'oracle' })).summary;

  const sftR = await answers('SFT', sft.model);
  const m1R = await answers('M1', m1.model);
  const e1 = await measure(config, 'M1', m1.model, m1R);
  const eS = await measure(config, 'SFT', sft.model, sftR);
  const h = await versus({ name: 'M1', model: m1.model, responses: m1R }, { name: 'SFT', model: sft.model, responses: sftR });
  const pct = (x: number | null | undefined) => (typeof x === 'number' && Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : 'n/a');
  const rows: string[] = [
    `SFT: oracle mean ${eS.oracleMean.toFixed(2)}`,
    `M1: oracle mean ${e1.oracleMean.toFixed(2)} (sampled ${e1.onPolicy?.candidateOracleMean.toFixed(2)}), own-candidate judge accuracy ${pct(e1.onPolicy?.accuracy)}; M1 vs SFT ${pct(h.winRate)} [${pct(h.ci95[0])}, ${pct(h.ci95[1])}] (${h.wins}/${h.ties}/${h.losses})`,
  ];

  for (const by of o.judges) {
    const c: RunConfig = { ...config, iterations: { ...config.iterations, settings: { ...config.iterations.settings, judge: { ...config.iterations.settings.judge, by } } } };
    let prev = { name: 'M1', model: m1.model, responses: m1R };
    const earlier: ArtifactRef[] = [];
    for (let t = 1; t <= config.iterations.count; t++) {
      console.log(`judge ${by}, iteration ${t}`);
      const p = await timed('prompts', () => steps.promptsStep(ctx, { runId, config: c, iteration: t, model: prev.model, ift: data.ift, earlier, evalPrompts }));
      earlier.push(p.prompts);
      const cand = await timed('candidates', () => steps.candidatesStep(ctx, { runId, config: c, iteration: t, model: prev.model, prompts: p.prompts, shard: 0, shards: 1 }));
      const j = await timed('judging', () => steps.judgeStep(ctx, { runId, config: c, iteration: t, model: prev.model, candidates: cand.candidates, shard: 0 }));
      const pairs = await steps.pairsStep(ctx, { runId, config: c, iteration: t, candidates: [cand.candidates], judgments: [j.judgments] });
      const d = (await steps.iterationDiagnosticsStep(ctx, { runId, config: c, iteration: t, candidates: [cand.candidates], judgments: [j.judgments], pairs: pairs.pairs })).diagnostics!;
      const dpo = await timed(`DPO (${pairs.stats.pairs} pairs)`, () => steps.dpoStep(ctx, { runId, config: c, iteration: t, model: prev.model, pairs: pairs.pairs }));
      const name = `M${t + 1}`;
      const responses = await answers(name, dpo.model);
      const e = await measure(c, name, dpo.model, responses);
      const next = { name, model: dpo.model, responses };
      const hp = await versus(next, prev);
      const hs = await versus(next, { name: 'SFT', model: sft.model, responses: sftR });
      const row = `${by.padEnd(6)} it ${t}: ${p.count} prompts (${d.prompts?.understood ?? '?'} real tasks), ${pairs.stats.pairs} pairs (oracle ${d.pairs.agree}/${d.pairs.tie}/${d.pairs.reversed} better/tie/worse), judge acc on candidates ${pct(d.judge.accuracy)} over ${d.judge.pairs} pairs, candidates' oracle mean ${d.judge.candidateOracleMean.toFixed(2)}; DPO final ${JSON.stringify(dpo.final && { acc: Number(dpo.final['rewards/accuracies'].toFixed(3)), margin: Number(dpo.final['rewards/margins'].toFixed(3)) })}; ${name} oracle mean ${e.oracleMean.toFixed(2)} (sampled ${e.onPolicy?.candidateOracleMean.toFixed(2)}), own judge ${pct(e.onPolicy?.accuracy)}; ${name} vs ${prev.name} ${pct(hp.winRate)} [${pct(hp.ci95[0])}, ${pct(hp.ci95[1])}] (${hp.wins}/${hp.ties}/${hp.losses}); vs SFT ${pct(hs.winRate)}`;
      console.log(`  ${row}`);
      rows.push(row);
      prev = next;
    }
  }
  console.log(`\n== tiny loop, seed ${o.seed}, ${((Date.now() - started) / 1000).toFixed(0)} s, sets ${JSON.stringify(o.sets)} ==`);
  for (const r of rows) console.log(r);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
