import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig, presetConfig, settingsForIteration } from '../../core/config';
import { parseJudgeScore } from '../../core/judge/parse';
import { judgePrompt } from '../../core/judge/prompt';
import { INSTRUCTION_TEMPLATE } from '../../core/tokenizer/template';
import { allRoutes, edgesOf, makeGraph, makePathsWorld, NODES, parseRoute, PATHS_JUDGE_TEMPLATE, pathsModelConfig, pathsOracleScore, pathsTokenizer, pathsWorld, scoreRoute, type Graph, type Route } from '../../core/worlds/paths';

/** A walk of `k` hops from `a` that avoids `goal` at its end (a 3-point answer), if the graph has one. */
function walkMissing(g: Graph, r: Route): string[] | null {
  const go = (at: string, left: number): string[] | null => {
    if (left === 0) return at === r.b ? null : [];
    for (const s of g.get(at)!) {
      const rest = go(s, left - 1);
      if (rest) return [s, ...rest];
    }
    return null;
  };
  return go(r.a, r.k);
}

describe('the paths world', () => {
  const world = makePathsWorld(0);
  const g = world.graph;
  const routes = allRoutes(g);

  it('draws a graph from the seed: two distinct successors per node, never itself; another seed, another graph', () => {
    assert.equal(g.size, NODES.length);
    for (const [a, next] of g) {
      assert.equal(next.length, 2);
      assert.equal(new Set(next).size, 2);
      assert.ok(!next.includes(a));
    }
    assert.deepEqual([...makeGraph(0)], [...g]);
    assert.notDeepEqual([...makeGraph(1)], [...g]);
  });

  it('scores by hand: the five additive points, each only after the one before', () => {
    const { route, paths } = routes.find((x) => x.route.k === 3 && walkMissing(g, x.route))!;
    const path = paths[0]!;
    const instruction = `Go from ${route.a} to ${route.b} in 3 steps`;
    const score = (response: string) => pathsOracleScore(0, instruction, response);
    const notEdge = (from: string) => NODES.find((n) => n !== from && !g.get(from)!.includes(n))!;
    assert.equal(score(path.join(' ')), 5);
    assert.equal(score(`Sure: ${path.join(' ')}`), 4, 'a right path with extra words');
    assert.equal(score(walkMissing(g, route)!.join(' ')), 3, 'a walk that misses the goal');
    assert.equal(score([path[0]!, notEdge(path[0]!), route.b].join(' ')), 2, 'first hop right, then a jump');
    assert.equal(score([notEdge(route.a), path[1]!, route.b].join(' ')), 1, 'the first hop is no edge');
    assert.equal(score('I do not know.'), 0);
    assert.equal(score(''), 0);
    assert.equal(pathsOracleScore(0, 'Reverse: cat dog', path.join(' ')), 0, 'not a route of this world');
    // The written check: the recalled edges and a mark per hop, the end, the length; it stops at the
    // first criterion that fails, so its last line decides the score.
    const hops = `${edgesOf(g, route.a)}: ${path[0]} yes. ${edgesOf(g, path[0]!)}: ${path[1]} yes. ${edgesOf(g, path[1]!)}: ${path[2]} yes`;
    assert.equal(scoreRoute(g, route, path.join(' ')).check, `${hops}. end ${route.b} ${route.b} yes. steps 3 yes`);
    assert.equal(scoreRoute(g, route, `Sure: ${path.join(' ')}`).check, `${hops}. end ${route.b} ${route.b} yes. steps 3 no`);
    const jump = notEdge(path[0]!);
    assert.equal(scoreRoute(g, route, [path[0]!, jump, route.b].join(' ')).check, `${edgesOf(g, route.a)}: ${path[0]} yes. ${edgesOf(g, path[0]!)}: ${jump} no`);
    assert.equal(scoreRoute(g, route, 'I do not know.').check, 'no nodes');
  });

  it('reads every phrasing of a route and nothing else', () => {
    assert.deepEqual(parseRoute('Find a path from cat to dog in 3 steps'), { a: 'cat', b: 'dog', k: 3 });
    assert.deepEqual(parseRoute('route from CAT to dog in 2 steps.'), { a: 'cat', b: 'dog', k: 2 });
    assert.equal(parseRoute('Go from cat to unicorn in 2 steps'), null);
    assert.equal(parseRoute('Go from cat to dog'), null);
  });

  it('keeps the held-out routes untaught: IFT answers score 5, and no IFT route is a held-out one', () => {
    const key = (i: string) => JSON.stringify(parseRoute(i));
    assert.ok(world.ift.every((r) => pathsOracleScore(0, r.instruction, r.response) === 5));
    const taught = new Set(world.ift.map((r) => key(r.instruction)));
    // Five phrasings per taught route; routes of 2 and 3 steps, taught and held out alike.
    assert.equal(world.ift.length, taught.size * 5);
    const steps = (xs: string[]) => new Set(xs.map((i) => parseRoute(i)!.k));
    assert.deepEqual([...steps(world.ift.map((r) => r.instruction))].sort(), [2, 3]);
    assert.deepEqual([...steps(world.evalPrompts.map((p) => p.instruction))].sort(), [2, 3]);
    const heldOut = [...world.evalPrompts.map((p) => p.instruction), ...world.rankedEval.map((s) => s.instruction)];
    assert.equal(world.evalPrompts.length, 180);
    assert.equal(new Set(heldOut.map(key)).size, heldOut.length, 'one held-out prompt or ranked set per route');
    assert.ok(heldOut.every((i) => !taught.has(key(i))));
    // The iterations' prompts: untaught routes, never a held-out or training text.
    const fresh = pathsWorld.newPrompts!(0, 1, 300, new Set());
    assert.equal(fresh.length, 300);
    const texts = new Set([...heldOut, ...world.ift.map((r) => r.instruction), ...world.eft.map((r) => r.instruction)]);
    assert.ok(fresh.every((i) => !texts.has(i) && !taught.has(key(i))));
    assert.notDeepEqual(pathsWorld.newPrompts!(0, 2, 300, new Set(fresh)), fresh);
  });

  it("leaves the tiny preset's two iterations their prompts, each new, on seeds 0-39", () => {
    const config = parseConfig(presetConfig('tiny'));
    const [n1, n2] = [1, 2].map((n) => settingsForIteration(config, n).prompts.count);
    assert.ok(n2! > n1!, 'the second iteration has more prompts, as in the paper');
    for (let seed = 0; seed < 40; seed++) {
      const first = pathsWorld.newPrompts!(seed, 1, n1!, new Set());
      const second = pathsWorld.newPrompts!(seed, 2, n2!, new Set(first));
      assert.equal(first.length, n1);
      assert.equal(second.length, n2);
      const taken = new Set(first);
      assert.ok(second.every((p) => !taken.has(p)));
    }
  });

  it('refuses more held-out prompts than untaught routes, naming the numbers', () => {
    assert.throws(() => makePathsWorld(1, { eval: 300 }), /300 held-out prompts and 50 ranked sets need 350 untaught routes; there are 309/);
  });

  it('balances EFT across scores, and each judgment ends in the score the judge parser reads', () => {
    const counts = [0, 1, 2, 3, 4, 5].map((s) => world.eft.filter((r) => r.score === s).length);
    assert.deepEqual(counts, [400, 400, 400, 400, 400, 400]);
    for (const r of world.eft) {
      assert.equal(pathsOracleScore(0, r.instruction, r.response), r.score);
      const parsed = parseJudgeScore(r.judgment);
      assert.ok(parsed.ok && parsed.score === r.score, r.judgment);
    }
    for (const set of world.rankedEval) assert.equal(new Set(set.responses.map((x) => x.text)).size, 4);
  });

  it('writes every text of the world in its closed vocabulary', () => {
    const t = pathsTokenizer();
    const texts = [...world.pretrain, ...world.ift.flatMap((r) => [r.instruction, r.response]), ...world.eft.flatMap((r) => [r.instruction, r.response, r.judgment])];
    for (const text of texts) assert.equal(t.decode(t.encode(text)), text);
  });
});

describe('the tiny preset on the paths world', () => {
  it('holds every EFT row whole within its maxSeqLen, and the longest judgment within the judge budget and the model positions', () => {
    const config = parseConfig(presetConfig('tiny'));
    const t = pathsTokenizer();
    const positions = pathsModelConfig().maxPositions;
    for (const seed of [0, 1]) {
      for (const r of makePathsWorld(seed).eft) {
        const prompt = t.encode(INSTRUCTION_TEMPLATE.format(judgePrompt(r.instruction, r.response, PATHS_JUDGE_TEMPLATE))).length;
        const judgment = t.encode(r.judgment).length + 1; // and the end token
        assert.ok(prompt + judgment <= config.sft.maxSeqLen, `${prompt} + ${judgment} tokens: ${r.judgment}`);
        assert.ok(prompt + config.iterations.settings.judge.maxNewTokens <= positions);
        // The judge budget covers the answers of a path's length (the long score-4 answers may be cut).
        if (r.score === 5) assert.ok(judgment <= config.iterations.settings.judge.maxNewTokens, r.judgment);
      }
    }
  });
});
