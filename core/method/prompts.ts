/**
 * New prompts by few-shot self-instruct (the paper's step 1 of each iteration): a model is shown a
 * handful of existing tasks — some from the IFT prompts, some generated earlier (paper: 6 + 2) — and
 * writes one more. Candidates are kept only when they are new: not an exact duplicate, not within
 * the ROUGE-L threshold of any pooled prompt, within the length bounds, and not degenerate text.
 */
import { InvalidInputError } from '../errors';
import type { PromptRow } from '../data/rows';
import { deriveSeed, Rng } from '../random';
import { RougePool } from './rouge';
import { complete, type TextModel } from './text-model';

/** The built-in few-shot template: the examples, one per line, then an open slot for one more. */
export const SELF_INSTRUCT_TEMPLATE = `Below are tasks and questions that people ask an assistant. Each is one line: the task on its own, with no answer and no explanation.

{tasks}
Task:`;

export function selfInstructPrompt(examples: string[], template: string = SELF_INSTRUCT_TEMPLATE): string {
  if (!template.includes('{tasks}')) throw new InvalidInputError('a self-instruct template needs a {tasks} slot');
  const lines = examples.map((e) => `Task: ${e.replace(/\s+/g, ' ').trim()}`).join('\n');
  return template.replace('{tasks}', () => lines);
}

export type RejectReason = 'empty' | 'too short' | 'too long' | 'degenerate' | 'duplicate' | 'near duplicate';

export interface FilterSettings {
  rougeLThreshold: number;
  minChars: number;
  maxChars: number;
}

/** Why a text is not usable as a prompt (null when it is): control characters, runaway repetition, too few letters. */
export function degenerate(text: string): string | null {
  // eslint-disable-next-line no-control-regex -- finding control characters is the point
  if (/[\u0000-\u0008\u000b-\u001f\u007f\ufffd]/.test(text)) return 'control or replacement characters';
  if (/(.)\1{9,}/su.test(text)) return 'a character repeated 10 or more times';
  const words = text.toLowerCase().split(/\s+/).filter(Boolean);
  const trigrams = new Map<string, number>();
  for (let i = 0; i + 2 < words.length; i++) {
    const key = `${words[i]} ${words[i + 1]} ${words[i + 2]}`;
    const n = (trigrams.get(key) ?? 0) + 1;
    if (n >= 3) return `the phrase "${key}" repeated 3 or more times`;
    trigrams.set(key, n);
  }
  const visible = text.replace(/\s/g, '');
  const letters = (visible.match(/\p{L}/gu) ?? []).length;
  if (visible.length > 0 && letters / visible.length < 0.5) return 'fewer than half of its characters are letters';
  return null;
}

const normalise = (text: string) => text.toLowerCase().replace(/\s+/g, ' ').trim();

/**
 * Decides, one text at a time, whether a generated prompt is new enough to keep; a kept prompt
 * joins the pool, so later ones are also checked against it.
 */
export class PromptFilter {
  private readonly exact = new Set<string>();
  private readonly pool: RougePool;
  readonly rejected: Record<RejectReason, number> = { empty: 0, 'too short': 0, 'too long': 0, degenerate: 0, duplicate: 0, 'near duplicate': 0 };

  constructor(
    private readonly settings: FilterSettings,
    pool: Iterable<string>,
  ) {
    this.pool = new RougePool();
    for (const p of pool) {
      this.exact.add(normalise(p));
      this.pool.add(p);
    }
  }

  /** The reason to reject `text`, or null after adding it to the pool. */
  consider(text: string): RejectReason | null {
    const reason = this.check(text);
    if (reason) this.rejected[reason]++;
    else {
      this.exact.add(normalise(text));
      this.pool.add(text);
    }
    return reason;
  }

  private check(text: string): RejectReason | null {
    const t = text.trim();
    if (t === '') return 'empty';
    if (t.length < this.settings.minChars) return 'too short';
    if (t.length > this.settings.maxChars) return 'too long';
    if (degenerate(t)) return 'degenerate';
    if (this.exact.has(normalise(t))) return 'duplicate';
    if (this.pool.nearest(t, this.settings.rougeLThreshold) !== null) return 'near duplicate';
    return null;
  }
}

/** The first line of a completion, without a repeated `Task:` label. */
export function extractPrompt(completion: string): string {
  const line = completion.replace(/^\s+/, '').split('\n', 1)[0] ?? '';
  return line.replace(/^task:\s*/i, '').trim();
}

export interface PromptGenerationSettings extends FilterSettings {
  count: number;
  fewShotIft: number;
  fewShotGenerated: number;
  temperature: number;
  topP: number;
  maxNewTokens: number;
  /** Few-shot template text with a {tasks} slot (default: SELF_INSTRUCT_TEMPLATE). */
  template?: string;
  /** Completions per generate call. */
  batchSize?: number;
  /** Give up after this many rounds of generation (each asks for what is still missing, plus half). */
  maxRounds?: number;
}

export interface PromptGenerationResult {
  prompts: PromptRow[];
  stats: { requested: number; generated: number; kept: number; rounds: number; rejected: Record<RejectReason, number> };
}

/**
 * Generates up to `count` new prompts for `iteration`. `iftPrompts` feed the IFT shots,
 * `earlierGenerated` (prompts generated in earlier iterations) the generated shots together with
 * the prompts kept so far; `pool` holds every prompt a new one must differ from (IFT, earlier,
 * held-out evaluation prompts). Deterministic for a given seed.
 */
export async function generatePrompts(
  tm: TextModel,
  input: { iftPrompts: string[]; earlierGenerated: string[]; pool: string[]; iteration: number; seed: number },
  s: PromptGenerationSettings,
  onProgress?: (kept: number, total: number) => void | Promise<void>,
): Promise<PromptGenerationResult> {
  if (input.iftPrompts.length === 0) throw new InvalidInputError('self-instruct needs at least one IFT prompt for its examples');
  const filter = new PromptFilter(s, input.pool);
  const kept: string[] = [];
  let generated = 0;
  let rounds = 0;
  const maxRounds = s.maxRounds ?? 8;
  while (kept.length < s.count && rounds < maxRounds) {
    const want = Math.ceil((s.count - kept.length) * 1.5);
    const requests = Array.from({ length: want }, (_, j) => {
      const rng = new Rng(deriveSeed(input.seed, 'self-instruct', input.iteration, rounds, j));
      const ift = rng.shuffle([...input.iftPrompts]).slice(0, s.fewShotIft);
      const machine = [...input.earlierGenerated, ...kept];
      const gen = rng.shuffle(machine).slice(0, s.fewShotGenerated);
      const examples = rng.shuffle([...ift, ...gen]);
      return { prompt: selfInstructPrompt(examples, s.template), seed: deriveSeed(input.seed, 'self-instruct-sample', input.iteration, rounds, j) };
    });
    const completions = await complete(tm, requests, { maxNewTokens: s.maxNewTokens, temperature: s.temperature, topP: s.topP, batchSize: s.batchSize ?? 32, stop: ['\n'] });
    rounds++;
    generated += completions.length;
    for (const c of completions) {
      if (kept.length >= s.count) break;
      const text = extractPrompt(c.text);
      if (filter.consider(text) === null) kept.push(text);
    }
    await onProgress?.(kept.length, s.count);
  }
  return {
    prompts: kept.map((instruction, i) => ({ id: `it${input.iteration}-p${String(i).padStart(5, '0')}`, instruction, source: 'generated' as const, iteration: input.iteration })),
    stats: { requested: s.count, generated, kept: kept.length, rounds, rejected: { ...filter.rejected } },
  };
}
