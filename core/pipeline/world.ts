/**
 * A built-in task world (`builtin:<name>` in a config): seed data made from the run's seed, a base
 * model recipe, and a programmatic oracle. The oracle stands where the paper used people or GPT-4
 * — ranking seed responses for EFT and judging the final head-to-heads — never inside the loop.
 */
import type { EftRow, IftRow, PromptRow, RankedSetRow } from '../data/rows';
import type { TextModel } from '../method/text-model';

export interface WorldData {
  ift: IftRow[];
  eft: EftRow[];
  evalPrompts: PromptRow[];
  rankedEval: RankedSetRow[];
}

export interface BuiltinWorld {
  name: string;
  data(seed: number): WorldData;
  /** M0: made from scratch (and any pretraining the world defines), reporting progress. */
  baseModel(seed: number, onProgress: (step: number, total: number, loss: number) => void, signal?: AbortSignal): Promise<TextModel>;
  /** The oracle's 0..5 score of one response, in the world made from `seed` (a world whose tasks depend on its seed needs it). */
  oracleScore(instruction: string, response: string, seed: number): number;
  /** `count` new instructions of the world's tasks for an iteration, none in `taken` nor in the world's own splits (for `prompts.generator: world`). */
  newPrompts?(seed: number, iteration: number, count: number, taken: Set<string>): string[];
  /** Whether the world can read an instruction as one of its tasks (a diagnostic of self-instruct). */
  understands?(instruction: string): boolean;
  /** Templates the world's small models use in place of the built-in long ones (text with their slots). */
  judgeTemplate?: string;
  selfInstructTemplate?: string;
}

const worlds = new Map<string, { version: string; load: () => Promise<BuiltinWorld> }>();

/**
 * Registers `builtin:<name>`. `version` names what the world makes — its data, base model recipe
 * and oracle — and changes whenever they do: it goes into the default run ID and the keys of the
 * steps the world feeds, so a run of an older world is neither attached to nor reused.
 */
export function registerWorld(name: string, version: string, load: () => Promise<BuiltinWorld>): void {
  worlds.set(name, { version, load });
}

/** The versions of the built-in worlds named by `builtin:<name>[/<split>]` specs (other specs are skipped), by name. */
export function worldVersions(specs: (string | undefined)[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const spec of specs) {
    const name = spec === undefined ? undefined : /^builtin:([a-z0-9-]+)(?:\/|$)/.exec(spec)?.[1];
    const w = name ? worlds.get(name) : undefined;
    if (name && w) out[name] = w.version;
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

export function worldNames(): string[] {
  return [...worlds.keys()];
}

export async function loadWorld(name: string): Promise<BuiltinWorld | undefined> {
  const w = worlds.get(name);
  return w ? w.load() : undefined;
}

/** The versions of the built-in worlds a run config names (base model and data), by name; {} for none. */
export const configWorldVersions = (config: { model: { base: string }; data: Record<string, string | undefined> }): Record<string, string> =>
  worldVersions([config.model.base, ...Object.values(config.data)]);
