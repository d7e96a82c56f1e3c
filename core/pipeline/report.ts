/**
 * The run report: what a run measured, as JSON (`srlm report --json`), Markdown and a
 * self-contained HTML page with charts (inline SVG, no scripts, nothing fetched).
 *
 * The method's rows are the result. The reference arms (`control`: a random judge picks the pairs;
 * `ceiling`: the oracle does) share everything up to M1 and are diagnostics beside it.
 */
import type { HeadToHeadSummary, RewardModelMetrics, SampledHeadToHeadSummary } from '../eval/metrics';
import type { PairStats } from '../method/pairs';
import type { DpoMetrics } from '../train/dpo-loss';

export type Arm = 'control' | 'ceiling';
export const ARMS: readonly Arm[] = ['control', 'ceiling'];

export type HeadToHeadReport = HeadToHeadSummary & { a: string; b: string; judge: string };
/** The same comparison with sampled decoding (`evaluation.sampled`): n counts comparisons, the interval is on the prompts. */
export type SampledHeadToHeadReport = SampledHeadToHeadSummary & { a: string; b: string; judge: string };

export type JudgeMetricsReport = { model: string } & RewardModelMetrics & {
  /** The model judging its own sampled candidates on held-out prompts: pairwise accuracy against the oracle (null without one). */
  onPolicyAccuracy: number | null;
  onPolicyPairs: number | null;
};

export interface PairsReport {
  iteration: number;
  count: number;
  stats: PairStats;
  /** The oracle's view of the chosen vs rejected responses (null without an oracle). */
  oracleAgree: number | null;
  oracleTie: number | null;
  oracleReversed: number | null;
  /** Pairwise accuracy, against the oracle, of the judge that scored this iteration's candidates. */
  judgeAccuracy: number | null;
  /** Share of the iteration's new prompts that the world reads as one of its tasks (null: no world to ask). */
  promptsUnderstood?: number | null;
  /** Share of the iteration's judge replies with no valid score (the parser's failures; null when unknown). */
  judgeParseFailures?: number | null;
}

export interface ModelReport {
  name: string;
  /** Mean oracle score of the model's greedy answers to the held-out prompts (null without an oracle). */
  oracleMean: number | null;
  /** Mean oracle score of its sampled candidates for the on-policy judge measurement. */
  sampledOracleMean: number | null;
  uri: string | null;
}

export interface TrainingReport {
  model: string;
  steps: number;
  firstLoss: number | null;
  finalLoss: number | null;
  final?: DpoMetrics | null;
}

export interface DpoCurve {
  model: string;
  iteration: number;
  points: { step: number; loss: number; margin: number; accuracy: number }[];
}

/** One line of models: the method's (SFT, M1, M2, ...) or an arm's (M2, M3, ... from the shared M1). */
export interface LineReport {
  headToHead: HeadToHeadReport[];
  /** With `evaluation.sampled` (absent in reports from before it existed). */
  headToHeadSampled?: SampledHeadToHeadReport[];
  judgeMetrics: JudgeMetricsReport[];
  pairs: PairsReport[];
  prompts: { iteration: number; count: number }[];
  training: TrainingReport[];
  dpo: DpoCurve[];
  models: ModelReport[];
}

/** An arm's rows, with who scored its candidates (control: random, ceiling: oracle). */
export type ArmReport = LineReport & { judge: 'random' | 'oracle' };

export type RunReport = LineReport & { runId: string; control?: ArmReport; ceiling?: ArmReport };

const finite = (x: number | null | undefined): x is number => typeof x === 'number' && Number.isFinite(x);
const pct = (x: number | null | undefined) => (finite(x) ? `${(100 * x).toFixed(1)}%` : 'n/a');
const num = (x: number | null | undefined, digits = 3) => (finite(x) ? x.toFixed(digits) : 'n/a');
const count = (x: number | null | undefined) => (finite(x) ? String(x) : 'n/a');

interface Table {
  head: string[];
  rows: string[][];
}

function headToHeadTable(rows: HeadToHeadReport[]): Table {
  return { head: ['A', 'B', 'judge', 'wins', 'ties', 'losses', 'n', 'win rate', '95% CI'], rows: rows.map((h) => [h.a, h.b, h.judge, String(h.wins), String(h.ties), String(h.losses), String(h.n), pct(h.winRate), `${pct(h.ci95[0])}–${pct(h.ci95[1])}`]) };
}

function sampledTable(rows: SampledHeadToHeadReport[]): Table {
  return { head: ['A', 'B', 'judge', 'wins', 'ties', 'losses', 'comparisons', 'prompts × samples', 'win rate', '95% CI (over prompts)'], rows: rows.map((h) => [h.a, h.b, h.judge, String(h.wins), String(h.ties), String(h.losses), String(h.n), `${h.prompts} × ${h.samples}`, pct(h.winRate), `${pct(h.ci95[0])}–${pct(h.ci95[1])}`]) };
}

const SAMPLED_TEXT = 'Each model answers every held-out prompt several times with the iterations’ sampling (every model with the same seeds); answer j of one model meets answer j of the other. The interval treats the prompt as the unit.';

function judgeTable(rows: JudgeMetricsReport[]): Table {
  return {
    head: ['model', 'pairwise accuracy', 'on own candidates', '5-best', 'exact match', 'Spearman', 'Kendall τ'],
    rows: rows.map((j) => [
      j.model,
      // No reply scored (e.g. the SFT baseline, never taught to judge): nothing was measured.
      !finite(j.pairwiseAccuracy) && j.unscored > 0 ? `no scores (${j.unscored} replies)` : pct(j.pairwiseAccuracy),
      finite(j.onPolicyAccuracy) ? `${pct(j.onPolicyAccuracy)} (${count(j.onPolicyPairs)} pairs)` : 'n/a',
      pct(j.fiveBest),
      pct(j.exactMatch),
      num(j.spearman),
      num(j.kendall),
    ]),
  };
}

function iterationsTable(line: LineReport): Table {
  return {
    head: ['iteration', 'new prompts', 'real tasks', 'pairs', 'oracle: chosen better / tie / worse', 'judge accuracy on the candidates', 'judge replies without a score', 'tied prompts', 'unscored candidates'],
    rows: line.pairs.map((p) => [
      String(p.iteration),
      String(line.prompts.find((x) => x.iteration === p.iteration)?.count ?? ''),
      pct(p.promptsUnderstood),
      String(p.count),
      p.oracleAgree === null ? 'n/a' : `${p.oracleAgree} / ${p.oracleTie} / ${p.oracleReversed}`,
      pct(p.judgeAccuracy),
      pct(p.judgeParseFailures),
      String(p.stats.tied),
      String(p.stats.unscoredCandidates),
    ]),
  };
}

function modelsTable(rows: ModelReport[]): Table {
  return { head: ['model', 'oracle mean, greedy (0–5)', 'oracle mean, sampled', 'checkpoint'], rows: rows.map((m) => [m.name, num(m.oracleMean, 2), num(m.sampledOracleMean, 2), m.uri ?? '']) };
}

function trainingTable(rows: TrainingReport[]): Table {
  return {
    head: ['model', 'steps', 'first loss', 'final loss', 'rewards/accuracies', 'rewards/margins'],
    rows: rows.map((t) => [t.model, String(t.steps), num(t.firstLoss), num(t.finalLoss), t.final ? pct(t.final['rewards/accuracies']) : '', t.final ? num(t.final['rewards/margins']) : '']),
  };
}

const ARM_TITLE: Record<Arm, string> = {
  control: 'Control arm: a random judge picks the pairs (the floor)',
  ceiling: 'Ceiling arm: the oracle picks the pairs (what the training step makes of perfect pairs)',
};

function sections(r: RunReport): { title: string; level: 2 | 3; table?: Table; text?: string }[] {
  const out: { title: string; level: 2 | 3; table?: Table; text?: string }[] = [
    { title: 'Head-to-head', level: 2, table: headToHeadTable(r.headToHead) },
    ...(r.headToHeadSampled?.length ? [{ title: 'Head-to-head, sampled decoding', level: 2 as const, text: SAMPLED_TEXT, table: sampledTable(r.headToHeadSampled) }] : []),
    { title: 'The models as judges', level: 2, text: 'Pairwise accuracy, 5-best, exact match, Spearman and Kendall on the held-out ranked sets; "on own candidates": each model judging its own sampled answers to held-out prompts, against the oracle.', table: judgeTable(r.judgeMetrics) },
    { title: 'Self-rewarding iterations', level: 2, table: iterationsTable(r) },
    { title: 'Models', level: 2, table: modelsTable(r.models) },
    { title: 'Training', level: 2, table: trainingTable(r.training) },
  ];
  for (const arm of ARMS) {
    const a = r[arm];
    if (!a) continue;
    out.push({ title: ARM_TITLE[arm], level: 2, text: 'Same M1, prompts, candidates and settings as the method; only the judge that scores the candidates differs. A diagnostic: nothing here flows into the method.' });
    out.push({ title: `Head-to-head (${arm})`, level: 3, table: headToHeadTable(a.headToHead) });
    if (a.headToHeadSampled?.length) out.push({ title: `Head-to-head, sampled (${arm})`, level: 3, table: sampledTable(a.headToHeadSampled) });
    out.push({ title: `Iterations (${arm})`, level: 3, table: iterationsTable(a) });
    out.push({ title: `Models (${arm})`, level: 3, table: modelsTable(a.models) });
    out.push({ title: `Judges (${arm})`, level: 3, table: judgeTable(a.judgeMetrics) });
  }
  return out;
}

export function renderMarkdown(r: RunReport): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  const lines = [`# srlm run ${r.runId}`];
  for (const s of sections(r)) {
    lines.push('', `${'#'.repeat(s.level)} ${s.title}`, '');
    if (s.text) lines.push(s.text, '');
    if (s.table) {
      lines.push(`| ${s.table.head.join(' | ')} |`, `|${s.table.head.map(() => '---').join('|')}|`);
      for (const row of s.table.rows) lines.push(`| ${row.map(cell).join(' | ')} |`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** The report as aligned plain-text tables, for a terminal (the end of `srlm run`). */
export function renderText(r: RunReport): string {
  const out: string[] = [];
  for (const s of sections(r)) {
    if (s.title === 'Training' || /^(Judges|Models) \(/.test(s.title)) continue;
    out.push('', s.level === 2 ? s.title.toUpperCase() : s.title);
    if (!s.table) continue;
    const rows = [s.table.head, ...s.table.rows].map((row) => row.map((c, i) => (i === 3 && s.title === 'Models' ? '' : c)));
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => [...(row[i] ?? '')].length)));
    const fmt = (row: string[]) => `  ${row.map((c, i) => c.padEnd(widths[i]!)).join('  ')}`.trimEnd();
    out.push(fmt(rows[0]!), `  ${widths.map((w) => '-'.repeat(w)).join('  ')}`.trimEnd(), ...rows.slice(1).map(fmt));
  }
  return `${out.join('\n').trimStart()}\n`;
}

// ---------------------------------------------------------------------------------------------
// HTML with SVG charts

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

interface Series {
  name: string;
  color: string;
  points: { x: number; y: number; lo?: number; hi?: number }[];
  dashed?: boolean;
}

const COLORS = { method: '#1f77b4', control: '#7f7f7f', ceiling: '#2ca02c', extra: ['#d62728', '#9467bd', '#ff7f0e', '#8c564b'] };

/** A line chart: numeric x (or category indexes with `categories`), optional whiskers, a dashed reference line. */
export function lineChart(o: { title: string; yLabel: string; series: Series[]; categories?: string[]; yMin?: number; yMax?: number; reference?: { y: number; label: string }; percent?: boolean }): string {
  const W = 540;
  const H = 290;
  // The legend sits in the right margin: wide enough for its longest name (~6.3 px a character).
  const m = { l: 56, r: Math.max(122, 44 + Math.ceil(6.3 * Math.max(0, ...o.series.map((s) => s.name.length)))), t: 30, b: 44 };
  const all = o.series.flatMap((s) => s.points.flatMap((p) => [p.y, p.lo ?? p.y, p.hi ?? p.y])).filter(Number.isFinite);
  const xs = o.series.flatMap((s) => s.points.map((p) => p.x));
  if (all.length === 0 || xs.length === 0) return `<figure><figcaption>${esc(o.title)}</figcaption><p class="empty">no data</p></figure>`;
  let yMin = o.yMin ?? Math.min(...all, o.reference?.y ?? Infinity);
  let yMax = o.yMax ?? Math.max(...all, o.reference?.y ?? -Infinity);
  if (yMax - yMin < 1e-9) [yMin, yMax] = [yMin - 0.5, yMax + 0.5];
  const pad = o.yMin === undefined || o.yMax === undefined ? (yMax - yMin) * 0.08 : 0;
  yMin -= o.yMin === undefined ? pad : 0;
  yMax += o.yMax === undefined ? pad : 0;
  const xMin = o.categories ? -0.5 : Math.min(...xs);
  const xMax = o.categories ? o.categories.length - 0.5 : Math.max(...xs) === xMin ? xMin + 1 : Math.max(...xs);
  const px = (x: number) => m.l + ((x - xMin) / (xMax - xMin)) * (W - m.l - m.r);
  const py = (y: number) => H - m.b - ((y - yMin) / (yMax - yMin)) * (H - m.t - m.b);
  const fmt = (y: number) => (o.percent ? `${Math.round(100 * y)}%` : Math.abs(y) >= 100 ? y.toFixed(0) : Number(y.toPrecision(3)).toString());
  const parts: string[] = [`<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(o.title)}">`];
  // Axes and grid.
  for (let i = 0; i <= 4; i++) {
    const y = yMin + ((yMax - yMin) * i) / 4;
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${py(y).toFixed(1)}" y2="${py(y).toFixed(1)}" class="grid"/><text x="${m.l - 6}" y="${(py(y) + 4).toFixed(1)}" text-anchor="end">${fmt(y)}</text>`);
  }
  if (o.categories) {
    o.categories.forEach((c, i) => parts.push(`<text x="${px(i).toFixed(1)}" y="${H - m.b + 18}" text-anchor="middle">${esc(c)}</text>`));
  } else {
    for (let i = 0; i <= 4; i++) {
      const x = xMin + ((xMax - xMin) * i) / 4;
      parts.push(`<text x="${px(x).toFixed(1)}" y="${H - m.b + 18}" text-anchor="middle">${Math.round(x)}</text>`);
    }
  }
  parts.push(`<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${H - m.b}" class="axis"/><line x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}" class="axis"/>`);
  parts.push(`<text x="14" y="${(m.t + H - m.b) / 2}" transform="rotate(-90 14 ${(m.t + H - m.b) / 2})" text-anchor="middle">${esc(o.yLabel)}</text>`);
  if (o.reference && o.reference.y >= yMin && o.reference.y <= yMax) {
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${py(o.reference.y).toFixed(1)}" y2="${py(o.reference.y).toFixed(1)}" class="ref"/><text x="${W - m.r - 4}" y="${(py(o.reference.y) - 4).toFixed(1)}" text-anchor="end" class="reflabel">${esc(o.reference.label)}</text>`);
  }
  // Series: category charts spread the series a little so whiskers do not overlap.
  o.series.forEach((s, k) => {
    const dx = o.categories ? (k - (o.series.length - 1) / 2) * 0.08 : 0;
    const pts = s.points.filter((p) => Number.isFinite(p.y));
    if (pts.length > 1) parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 4"' : ''} points="${pts.map((p) => `${px(p.x + dx).toFixed(1)},${py(p.y).toFixed(1)}`).join(' ')}"/>`);
    for (const p of pts) {
      if (p.lo !== undefined && p.hi !== undefined) parts.push(`<line x1="${px(p.x + dx).toFixed(1)}" x2="${px(p.x + dx).toFixed(1)}" y1="${py(p.lo).toFixed(1)}" y2="${py(p.hi).toFixed(1)}" stroke="${s.color}" stroke-width="1.5"/>`);
      if (pts.length <= 40) parts.push(`<circle cx="${px(p.x + dx).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="3.5" fill="${s.color}"><title>${esc(`${s.name}: ${fmt(p.y)}`)}</title></circle>`);
    }
    const ly = m.t + 8 + k * 18;
    parts.push(`<line x1="${W - m.r + 12}" x2="${W - m.r + 32}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="3"${s.dashed ? ' stroke-dasharray="5 4"' : ''}/><text x="${W - m.r + 38}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return `<figure><figcaption>${esc(o.title)}</figcaption>${parts.join('')}</figure>`;
}

const lines = (r: RunReport): { name: string; color: string; line: LineReport }[] => [
  { name: 'method', color: COLORS.method, line: r },
  ...ARMS.filter((a) => r[a]).map((a) => ({ name: a, color: COLORS[a], line: r[a]! })),
];

/** The charts: win rate per iteration, oracle mean per model, judge accuracy per model, DPO loss and margins over steps. */
export function charts(r: RunReport): string[] {
  const iterations = [...new Set([...r.pairs, ...ARMS.flatMap((a) => r[a]?.pairs ?? [])].map((p) => p.iteration))].sort((a, b) => a - b);
  const vsPrevious = (rows: HeadToHeadReport[] | undefined, t: number) => rows?.find((h) => h.a === `M${t + 1}` && h.b === `M${t}`);
  const winSeries = lines(r).flatMap(({ name, color, line }) =>
    [
      { name, color, rows: line.headToHead },
      { name: `${name}, sampled`, color, dashed: true, rows: line.headToHeadSampled },
    ]
      .filter((x) => x.rows?.length)
      .map(({ rows, ...series }) => ({
        ...series,
        points: iterations.flatMap((t, i) => {
          const h = vsPrevious(rows, t);
          return h ? [{ x: i, y: h.winRate, lo: h.ci95[0], hi: h.ci95[1] }] : [];
        }),
      })),
  );
  // Win rates near 50% read better on 25–75% when every plotted interval fits there; else the whole 0–100%.
  const spans = winSeries.flatMap((x) => x.points.flatMap((p) => [p.lo, p.hi]));
  const zoom = spans.length > 0 && spans.every((x) => x >= 0.25 && x <= 0.75);
  const winRate = lineChart({
    title: `Win rate of each iteration’s model against the one before (judge: ${r.headToHead[0]?.judge ?? 'n/a'}, both orders, 95% CI)${r.headToHeadSampled?.length ? ', greedy and (dashed) sampled decoding' : ''}${r.control || r.ceiling ? '; the arms pick pairs with a random (control) or the oracle (ceiling) judge' : ''}`,
    yLabel: 'win rate',
    categories: iterations.map((t) => `M${t + 1} vs M${t}`),
    yMin: zoom ? 0.25 : 0,
    yMax: zoom ? 0.75 : 1,
    percent: true,
    reference: { y: 0.5, label: 'no change' },
    series: winSeries,
  });
  const names = ['SFT', 'M1', ...iterations.map((t) => `M${t + 1}`)];
  const shared = (line: LineReport) => (line === r ? line.models : [...r.models.filter((m) => m.name === 'M1'), ...line.models]);
  const oracleMean = lineChart({
    title: 'Mean oracle score of each model’s greedy answers to the held-out prompts',
    yLabel: 'oracle score (0–5)',
    categories: names,
    series: lines(r).map(({ name, color, line }) => ({ name, color, points: names.flatMap((n, i) => shared(line).filter((m) => m.name === n && finite(m.oracleMean)).map((m) => ({ x: i, y: m.oracleMean! }))) })),
  });
  const judge = lineChart({
    title: 'Each model as a judge (method): pairwise accuracy on held-out ranked sets and on its own sampled candidates',
    yLabel: 'pairwise accuracy',
    categories: names,
    yMin: 0,
    yMax: 1,
    percent: true,
    reference: { y: 0.5, label: 'chance (no ties)' },
    series: [
      { name: 'held-out sets', color: COLORS.method, points: names.flatMap((n, i) => r.judgeMetrics.filter((j) => j.model === n && finite(j.pairwiseAccuracy)).map((j) => ({ x: i, y: j.pairwiseAccuracy }))) },
      { name: 'own candidates', color: COLORS.extra[0]!, dashed: true, points: names.flatMap((n, i) => r.judgeMetrics.filter((j) => j.model === n && finite(j.onPolicyAccuracy)).map((j) => ({ x: i, y: j.onPolicyAccuracy! }))) },
    ],
  });
  const curves = lines(r).flatMap(({ name, color, line }) => line.dpo.map((c, k) => ({ name: `${name.split(' ')[0]} ${c.model}`, color: k === 0 ? color : COLORS.extra[(k + (color === COLORS.method ? 0 : 2)) % COLORS.extra.length]!, dashed: k > 0, c })));
  const dpoLoss = lineChart({ title: 'DPO loss over steps', yLabel: 'loss', reference: { y: Math.log(2), label: 'ln 2 (plain DPO at start)' }, series: curves.map(({ name, color, dashed, c }) => ({ name, color, dashed, points: c.points.map((p) => ({ x: p.step, y: p.loss })) })) });
  const dpoMargin = lineChart({ title: 'DPO reward margin (rewards/margins) over steps', yLabel: 'margin', reference: { y: 0, label: '0' }, series: curves.map(({ name, color, dashed, c }) => ({ name, color, dashed, points: c.points.map((p) => ({ x: p.step, y: p.margin })) })) });
  return [winRate, oracleMean, judge, dpoLoss, dpoMargin];
}

export function renderHtml(r: RunReport): string {
  const table = (t: Table) => `<table><thead><tr>${t.head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${t.rows.map((row) => `<tr>${row.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
  const body = sections(r)
    .map((s) => `<h${s.level}>${esc(s.title)}</h${s.level}>${s.text ? `<p>${esc(s.text)}</p>` : ''}${s.table ? table(s.table) : ''}`)
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>srlm run ${esc(r.runId)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1180px;color:#222;padding:0 16px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px}h3{font-size:15px}
table{border-collapse:collapse;margin:8px 0 16px}th,td{border:1px solid #ddd;padding:4px 8px;text-align:left}th{background:#f4f4f4}
td:not(:first-child){font-variant-numeric:tabular-nums}
.charts{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;border:1px solid #eee;padding:8px}figcaption{font-weight:600;margin-bottom:4px;max-width:540px}
svg text{font-size:11px;fill:#333}.grid{stroke:#eee}.axis{stroke:#999}.ref{stroke:#c33;stroke-dasharray:4 4}.reflabel{fill:#c33}.empty{color:#888}
</style></head><body>
<h1>srlm run ${esc(r.runId)}</h1>
<div class="charts">${charts(r).join('\n')}</div>
${body}
</body></html>
`;
}
