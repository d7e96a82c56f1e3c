/**
 * The built-in "paths" world: route finding on a fixed directed graph that M0 learns as world
 * knowledge — a task where checking an answer is much easier than producing it.
 *
 *   "Go from cat to map in 3 steps"  →  "dog sun map"   (cat→dog, dog→sun and sun→map are edges)
 *
 * - The graph: the world's nodes (the tiny world's 40 short words), each with two successors, drawn
 *   from the seed. M0's pretraining text states every node's edges many times ("cat goes to dog or
 *   sun.") and walks along them, so the model knows which hops exist before it sees any task.
 * - Producing a route needs look-ahead: the first hop must be the successor from which the goal is
 *   reachable in the remaining steps, and a model that only knows the edges picks it by chance.
 *   Checking a route needs no search: each hop is one edge to recall and the end is one word to
 *   compare. The judge's justification writes exactly that check out, criterion by criterion and
 *   stopping at the first that fails — per hop the edges it recalls and whether the response's node
 *   is one of them (`cat goes to dog or sun: dog yes`), then the end (`end map map yes`), then the
 *   length (`steps 3 yes`). Each mark and the score rest on the lines just before them, and a
 *   small model's judgment on what it knows (the edges) rather than on what it cannot do (plan).
 * - Routes of 2 and 3 steps. A model that knows the edges and walks at random reaches the goal of
 *   a 2-step route about a quarter of the time, of a 3-step one about a seventh.
 * - The routes taught by IFT (a share of all start/goal/length combinations, each in five of the
 *   eight phrasings) are disjoint from the held-out evaluation prompts' routes: what the model
 *   learns about those it learns from its own judgments. The iterations' prompts (`newPrompts`, the
 *   stand-in for the paper's fixed prompt generator) come from the routes IFT does not teach, in
 *   the six phrasings the held-out prompts do not use; they can share a route with a held-out
 *   prompt, never its text. A small model does not learn to plan a route it was never shown: what
 *   it gains on a held-out route it learns from its own judgments on iteration prompts of that route.
 *
 * Oracle, additive as the judge rubric (each point only after the ones before it):
 *   +1 the response names nodes of the graph
 *   +1 its first hop is an edge from the start
 *   +1 every hop is an edge (a walk)
 *   +1 the walk ends at the goal
 *   +1 exactly the asked number of steps, nothing else
 */
import { z } from 'zod';
import type { EftRow, IftRow, PromptRow, RankedSetRow } from '../data/rows';
import { InvalidInputError } from '../errors';
import { ModelConfig } from '../model/config';
import { DecoderModel } from '../model/decoder';
import type { TextModel } from '../method/text-model';
import type { BuiltinWorld } from '../pipeline/world';
import { deriveSeed, Rng } from '../random';
import { INSTRUCTION_TEMPLATE } from '../tokenizer/template';
import { WordTokenizer } from '../tokenizer/word';
import { pretrainBase, ranksOf, TinyBaseSettings } from './tiny';
import { tokens, WORDS } from './tiny-tasks';

/** The graph's nodes. */
export const NODES: readonly string[] = WORDS;
const OUT_DEGREE = 2;
const LENGTHS = [2, 3] as const;

export const PATH_PHRASINGS = [
  'Go from {a} to {b} in {k} steps',
  'Find a path from {a} to {b} in {k} steps',
  'Walk from {a} to {b} in {k} steps',
  'Get from {a} to {b} in {k} steps',
  'Route from {a} to {b} in {k} steps',
  'Travel from {a} to {b} in {k} steps',
  'Move from {a} to {b} in {k} steps',
  'Head from {a} to {b} in {k} steps',
];

/** The world's judge template: the rubric's five points, then the hop-by-hop check, then `Score: N`. */
export const PATHS_JUDGE_TEMPLATE = `Check the path. A point each for: nodes, first hop, all hops, the goal, the length.
Task: {instruction}
Response: {response}
Check each hop and the end, then end with Score: N.`;

export type Graph = Map<string, string[]>;

/** The world's graph for a seed: every node gets OUT_DEGREE distinct successors other than itself. */
export function makeGraph(seed: number): Graph {
  const rng = new Rng(deriveSeed(seed, 'paths', 'graph'));
  return new Map(NODES.map((n) => [n, rng.shuffle(NODES.filter((m) => m !== n)).slice(0, OUT_DEGREE)]));
}

const isEdge = (g: Graph, a: string, b: string) => g.get(a)?.includes(b) ?? false;

/** A node's edges as M0's pretraining text states them: `cat goes to dog or sun`. */
export const edgesOf = (g: Graph, a: string) => `${a} goes to ${g.get(a)!.join(' or ')}`;

/** Every walk of exactly `k` hops from `a` (as the nodes after `a`). */
function walks(g: Graph, a: string, k: number): string[][] {
  if (k === 0) return [[]];
  return g.get(a)!.flatMap((s) => walks(g, s, k - 1).map((w) => [s, ...w]));
}

export interface Route {
  a: string;
  b: string;
  k: number;
}

/** Every start/goal/length the graph can do, with its walks that reach the goal (at least one). */
export function allRoutes(g: Graph): { route: Route; paths: string[][] }[] {
  const out: { route: Route; paths: string[][] }[] = [];
  for (const a of NODES) {
    for (const k of LENGTHS) {
      const byGoal = new Map<string, string[][]>();
      for (const w of walks(g, a, k)) byGoal.set(w.at(-1)!, [...(byGoal.get(w.at(-1)!) ?? []), w]);
      for (const [b, paths] of [...byGoal].sort(([x], [y]) => x.localeCompare(y))) if (b !== a) out.push({ route: { a, b, k }, paths });
    }
  }
  return out;
}

export const routeInstruction = (r: Route, phrasing: string) => phrasing.replace('{a}', r.a).replace('{b}', r.b).replace('{k}', String(r.k));

const NODE_SET = new Set(NODES);
const ROUTE_RE = /^(?:go|find a path|walk|get|route|travel|move|head) from ([a-z]+) to ([a-z]+) in (\d) steps?\.?$/i;

/** Reads an instruction as a route task, or null when it is not one of this world's. */
export function parseRoute(instruction: string): Route | null {
  const m = ROUTE_RE.exec(instruction.replace(/\s+/g, ' ').trim());
  if (!m) return null;
  const [a, b, k] = [m[1]!.toLowerCase(), m[2]!.toLowerCase(), Number(m[3])];
  return NODE_SET.has(a) && NODE_SET.has(b) && k >= 1 && k <= 4 ? { a, b, k } : null;
}

export interface PathVerdict {
  score: 0 | 1 | 2 | 3 | 4 | 5;
  /**
   * The written check, one criterion after another and stopping at the first that fails, so the
   * last line decides the score: per hop, the edges out of its start as M0 learned them and
   * whether the response's next node is one of them (`cat goes to dog or sun: dog yes`); then the
   * last node and the goal, and whether they are the same (`end map map yes`); then whether the
   * steps are as many as asked with nothing else (`steps 3 yes`).
   */
  check: string;
}

/** The oracle's score of a response to a route, with the check a judge writes out. */
export function scoreRoute(g: Graph, r: Route, response: string): PathVerdict {
  const got = tokens(response);
  const nodes = got.filter((t) => NODE_SET.has(t.toLowerCase())).map((t) => t.toLowerCase());
  if (nodes.length === 0) return { score: 0, check: 'no nodes' };
  const lines: string[] = [];
  let from = r.a;
  for (const [i, n] of nodes.entries()) {
    const ok = isEdge(g, from, n);
    lines.push(`${edgesOf(g, from)}: ${n} ${ok ? 'yes' : 'no'}`);
    if (!ok) return { score: i === 0 ? 1 : 2, check: lines.join('. ') };
    from = n;
  }
  const reaches = from === r.b;
  lines.push(`end ${from} ${r.b} ${reaches ? 'yes' : 'no'}`);
  if (!reaches) return { score: 3, check: lines.join('. ') };
  const exact = nodes.length === r.k && got.length === nodes.length;
  lines.push(`steps ${r.k} ${exact ? 'yes' : 'no'}`);
  return { score: exact ? 5 : 4, check: lines.join('. ') };
}

export const pathsJudgment = (v: PathVerdict) => `${v.check}.\nScore: ${v.score}`;

const PREFIXES = ['Sure:', 'Here it is:', 'The path is'];
const NON_ANSWERS = ['I do not know.', 'No.', 'Maybe later.'];

/** A response proposed for a target score; the caller keeps it only when the oracle agrees. */
function propose(g: Graph, r: Route, paths: string[][], target: number, rng: Rng): string {
  const pick = <T>(xs: readonly T[]) => xs[rng.int(xs.length)]!;
  const walk = (from: string, k: number) => {
    const w: string[] = [];
    for (let i = 0, at = from; i < k; i++) w.push((at = pick(g.get(at)!)));
    return w;
  };
  const nonEdge = (from: string) => pick(NODES.filter((n) => n !== from && !isEdge(g, from, n)));
  switch (target) {
    case 5:
      return pick(paths).join(' ');
    case 4:
      return rng.int(2) === 0 ? `${pick(PREFIXES)} ${pick(paths).join(' ')}` : [...pick(paths), ...walk(r.b, 1 + rng.int(2)), r.b].join(' ');
    case 3:
      return walk(r.a, r.k + rng.int(2) - (r.k > 2 ? rng.int(2) : 0)).join(' ');
    case 2: {
      const w = walk(r.a, r.k);
      const at = 1 + rng.int(r.k - 1);
      w[at] = nonEdge(w[at - 1]!);
      return w.join(' ');
    }
    case 1: {
      const w = [nonEdge(r.a)];
      while (w.length < r.k) w.push(rng.int(2) === 0 ? pick(g.get(w.at(-1)!)!) : pick(NODES));
      if (rng.int(3) === 0) w[w.length - 1] = r.b;
      return w.join(' ');
    }
    default:
      return pick(NON_ANSWERS);
  }
}

/** A response of a target score for a route, or null when none was found. */
function responseWithScore(g: Graph, r: Route, paths: string[][], target: number, rng: Rng): { response: string; verdict: PathVerdict } | null {
  for (let i = 0; i < 40; i++) {
    const response = propose(g, r, paths, target, rng).trim();
    const verdict = scoreRoute(g, r, response);
    if (response !== '' && verdict.score === target) return { response, verdict };
  }
  return null;
}

export const PathsWorldSizes = z.strictObject({
  /**
   * Share of the routes IFT teaches (its prompts and the held-out ones never share a route). A quarter
   * leaves M1 headroom on the untaught routes for two iterations to gain on; at 0.4 M1 already
   * answered most of them and even perfect pairs gained little in the second iteration.
   */
  iftShare: z.number().gt(0).lt(1).default(0.25),
  /** Phrasings IFT teaches each of its routes in, drawn per route from the eight (every phrasing stays in use). */
  iftPhrasings: z.number().int().min(1).max(PATH_PHRASINGS.length).default(5),
  eft: z.number().int().positive().default(2400),
  /** Held-out prompts (with `ranked`, at most the untaught routes: about 310-330 of a seed's 410-440). */
  eval: z.number().int().positive().default(180),
  ranked: z.number().int().positive().default(50),
  /** Edge statements and walks in M0's pretraining text. */
  pretrainTexts: z.number().int().nonnegative().default(600),
});
export type PathsWorldSizes = z.infer<typeof PathsWorldSizes>;

export interface PathsWorld {
  graph: Graph;
  ift: IftRow[];
  eft: EftRow[];
  evalPrompts: PromptRow[];
  rankedEval: RankedSetRow[];
  pretrain: string[];
  /** Routes not taught by IFT (the held-out prompts' and the iterations'). */
  untaught: Route[];
  /** Phrasings left to the iterations' prompts (the held-out prompts use the others). */
  iterationPhrasings: string[];
}

/** The paths world for a seed. Same seed and sizes, same world. */
export function makePathsWorld(seed: number, sizes: Partial<PathsWorldSizes> = {}): PathsWorld {
  const s = PathsWorldSizes.parse(sizes);
  const rng = (label: string) => new Rng(deriveSeed(seed, 'paths', label));
  const graph = makeGraph(seed);
  const routes = rng('routes').shuffle(allRoutes(graph));
  const cut = Math.round(routes.length * s.iftShare);
  const taught = routes.slice(0, cut);
  const untaught = routes.slice(cut);
  // Held-out prompts: untaught routes in the first two phrasings; the iterations get the other six.
  const evalPhrasings = PATH_PHRASINGS.slice(0, 2);
  const iterationPhrasings = PATH_PHRASINGS.slice(2);
  const evalRng = rng('eval');
  if (s.eval + s.ranked > untaught.length) throw new InvalidInputError(`paths world (seed ${seed}): ${s.eval} held-out prompts and ${s.ranked} ranked sets need ${s.eval + s.ranked} untaught routes; there are ${untaught.length}`);
  const heldOut = evalRng.shuffle([...untaught]).slice(0, s.eval + s.ranked);
  const evalPrompts: PromptRow[] = heldOut.slice(0, s.eval).map((x, i) => ({ id: `paths-eval-${i}`, instruction: routeInstruction(x.route, evalPhrasings[evalRng.int(evalPhrasings.length)]!), source: 'eval' }));

  const iftRng = rng('ift');
  const ift: IftRow[] = taught.flatMap((x, i) =>
    iftRng
      .shuffle([...PATH_PHRASINGS])
      .slice(0, s.iftPhrasings)
      .map((p, j) => ({ id: `paths-ift-${i}-${j}`, instruction: routeInstruction(x.route, p), response: x.paths[iftRng.int(x.paths.length)]!.join(' ') })),
  );

  // EFT on taught routes, every score equally often (the paper re-balanced its scores).
  const eftRng = rng('eft');
  const eft: EftRow[] = [];
  for (let i = 0; eft.length < s.eft; i++) {
    if (i > s.eft * 20) throw new Error('paths world: could not make the EFT rows');
    const x = taught[eftRng.int(taught.length)]!;
    const hit = responseWithScore(graph, x.route, x.paths, eft.length % 6, eftRng);
    if (hit) eft.push({ id: `paths-eft-${eft.length}`, instruction: routeInstruction(x.route, PATH_PHRASINGS[eftRng.int(PATH_PHRASINGS.length)]!), response: hit.response, judgment: pathsJudgment(hit.verdict), score: hit.verdict.score });
  }

  // Ranked sets on held-out routes: four responses of distinct scores.
  const rankedRng = rng('ranked');
  const rankedEval: RankedSetRow[] = heldOut.slice(s.eval).map((x, i) => {
    for (let attempt = 0; attempt < 100; attempt++) {
      const hits = rankedRng.shuffle([0, 1, 2, 3, 4, 5]).slice(0, 4).map((t) => responseWithScore(graph, x.route, x.paths, t, rankedRng));
      if (hits.some((h) => h === null) || new Set(hits.map((h) => h!.response)).size < 4) continue;
      const ranks = ranksOf(hits.map((h) => h!.verdict.score));
      return { id: `paths-ranked-${i}`, instruction: routeInstruction(x.route, evalPhrasings[rankedRng.int(evalPhrasings.length)]!), responses: hits.map((h, j) => ({ text: h!.response, rank: ranks[j]! })) };
    }
    throw new Error('paths world: no ranked set');
  });

  // M0's text: the edges, stated many times, and walks along them (no routes, no tasks).
  const preRng = rng('pretrain');
  const edges = NODES.map((a) => `${edgesOf(graph, a)}.`);
  const pretrain = Array.from({ length: s.pretrainTexts }, (_, i) => {
    if (i % 2 === 0) return preRng.shuffle([...edges]).slice(0, 6).join(' ');
    let at = NODES[preRng.int(NODES.length)]!;
    const walk = [at];
    for (let j = 0; j < 6; j++) walk.push((at = graph.get(at)![preRng.int(OUT_DEGREE)]!));
    return `a walk: ${walk.join(' ')}.`;
  });

  return { graph, ift, eft, evalPrompts, rankedEval, pretrain, untaught: untaught.map((x) => x.route), iterationPhrasings };
}

/** The world's closed vocabulary. */
export function pathsVocabulary(): string[] {
  const texts = [INSTRUCTION_TEMPLATE.format(''), PATHS_JUDGE_TEMPLATE, ...PATH_PHRASINGS, ...PREFIXES, ...NON_ANSWERS, 'goes to or a walk end steps yes no nodes Score', ...NODES, 'Find find Walk walk Get get Route route Go go Travel travel Move move Head head'];
  const words = new Set<string>();
  for (const t of texts) for (const w of t.match(/[A-Za-z]+|#+|[^\sA-Za-z]/gu) ?? []) words.add(w);
  for (let d = 0; d <= 9; d++) words.add(String(d));
  for (const m of ['.', ',', ':', '\n']) words.add(m);
  return [...words].sort();
}

let cachedTokenizer: WordTokenizer | undefined;
export const pathsTokenizer = (): WordTokenizer => (cachedTokenizer ??= new WordTokenizer(pathsVocabulary()));

export function pathsModelConfig(hiddenSize = 64, numLayers = 2): ModelConfig {
  const numHeads = 4;
  return ModelConfig.parse({
    family: 'llama', vocabSize: pathsTokenizer().vocabSize, hiddenSize, numLayers, numHeads, numKvHeads: numHeads, headDim: hiddenSize / numHeads,
    intermediateSize: hiddenSize * 3, maxPositions: 192, normEps: 1e-5, tieEmbeddings: true, bosTokenId: 2, eosTokenId: 1, padTokenId: 0,
  });
}

const worlds = new Map<number, PathsWorld>();
const worldOf = (seed: number): PathsWorld => {
  let w = worlds.get(seed);
  if (!w) worlds.set(seed, (w = makePathsWorld(seed)));
  return w;
};

/** The oracle score of a response to any instruction of a seed's world (0 for an instruction it cannot read). */
export function pathsOracleScore(seed: number, instruction: string, response: string): number {
  const r = parseRoute(instruction);
  return r ? scoreRoute(worldOf(seed).graph, r, response).score : 0;
}

/** The built-in world `builtin:paths`: its data, M0, the oracle (the seed's graph) and its judge template. */
export const pathsWorld: BuiltinWorld = {
  name: 'paths',
  data(seed) {
    const { ift, eft, evalPrompts, rankedEval } = worldOf(seed);
    return { ift, eft, evalPrompts, rankedEval };
  },
  baseModel: async (seed, onProgress, signal) => {
    const s = TinyBaseSettings.parse({});
    const tm: TextModel = { model: DecoderModel.initialise(pathsModelConfig(s.hiddenSize, s.numLayers), deriveSeed(seed, 'paths-m0-init')), tokenizer: pathsTokenizer(), template: INSTRUCTION_TEMPLATE };
    await pretrainBase(tm, worldOf(seed).pretrain, deriveSeed(seed, 'paths-m0-train'), s, onProgress, signal);
    return tm;
  },
  oracleScore: (instruction, response, seed) => pathsOracleScore(seed, instruction, response),
  newPrompts(seed, iteration, count, taken) {
    const w = worldOf(seed);
    const rng = new Rng(deriveSeed(seed, 'paths', 'new-prompts', iteration));
    const seen = new Set([...taken, ...w.ift.map((r) => r.instruction), ...w.evalPrompts.map((r) => r.instruction), ...w.rankedEval.map((r) => r.instruction)]);
    const all = w.untaught.flatMap((r) => w.iterationPhrasings.map((p) => routeInstruction(r, p))).filter((t) => !seen.has(t));
    return rng.shuffle(all).slice(0, count);
  },
  understands: (instruction) => parseRoute(instruction) !== null,
  judgeTemplate: PATHS_JUDGE_TEMPLATE,
};
