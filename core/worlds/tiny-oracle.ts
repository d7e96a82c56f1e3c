/**
 * The tiny world's oracle: a programmatic judge on the additive five-point scale of the judge
 * rubric. Points accumulate, each only after the ones before it:
 *
 *   +1 relevant        the response uses the input's items (count: a number, or the input's words)
 *   +1 substantial     at least half of the expected items (count: a number off by at most one)
 *   +1 basic answer    every expected item (count: the right number, among others)
 *   +1 correct         the expected answer in order, maybe with extra content around it
 *                      (count: the right number and no other number)
 *   +1 nothing extra   exactly the expected answer, nothing else
 *
 * Empty, unrelated and unparseable responses, and instructions the world does not know, score 0.
 */
import { oracleJudgeFrom, type PointwiseJudge } from '../eval/head-to-head';
import { parseTask, readNumber, tokens, type Task } from './tiny-tasks';

export interface OracleVerdict {
  score: 0 | 1 | 2 | 3 | 4 | 5;
  justification: string;
}

/** The oracle's justification per score, for list tasks and for count. */
export const JUSTIFICATIONS = {
  empty: 'The response is empty.',
  unrelated: 'Unrelated to the task.',
  list: [
    '',
    'Relevant, but less than half of the answer.',
    'Half or more of the answer, but items are missing.',
    'Every item, but not in the right order.',
    'Correct, but with extra content.',
    'Correct, with nothing extra.',
  ],
  count: [
    '',
    'Relevant, but the count is wrong.',
    'Close, but the count is off by one.',
    'The right count, among wrong ones.',
    'Correct, but with extra content.',
    'Correct, with nothing extra.',
  ],
} as const;

const verdict = (score: OracleVerdict['score'], justification: string): OracleVerdict => ({ score, justification });

/** Size of the multiset intersection of `a` and `b`. */
function overlap(a: string[], b: string[]): number {
  const left = new Map<string, number>();
  for (const t of a) left.set(t, (left.get(t) ?? 0) + 1);
  let n = 0;
  for (const t of b) {
    const k = left.get(t) ?? 0;
    if (k > 0) {
      n++;
      left.set(t, k - 1);
    }
  }
  return n;
}

function containsRun(haystack: string[], needle: string[]): boolean {
  for (let i = 0; i + needle.length <= haystack.length; i++) {
    if (needle.every((t, j) => haystack[i + j] === t)) return true;
  }
  return false;
}

/** Scores a response to a parsed task. */
export function scoreTask(task: Task, response: string): OracleVerdict {
  const text = response.replace(/\s+/g, ' ').trim();
  if (text === '') return verdict(0, JUSTIFICATIONS.empty);
  const exact = text === task.expected.join(' ');
  const got = tokens(text);
  const inputWords = new Set(task.items.map((t) => t.toLowerCase()));

  if (task.family === 'count') {
    const want = Number(task.expected[0]);
    const numbers = got.map(readNumber).filter((n): n is number => n !== null);
    if (numbers.length === 0 && !got.some((t) => inputWords.has(t.toLowerCase()))) return verdict(0, JUSTIFICATIONS.unrelated);
    const s = exact ? 5 : numbers.length > 0 && numbers.every((n) => n === want) ? 4 : numbers.includes(want) ? 3 : numbers.some((n) => Math.abs(n - want) === 1) ? 2 : 1;
    return verdict(s, JUSTIFICATIONS.count[s]);
  }

  // Uppercase is checked case-sensitively (the case is the task); the others ignore case.
  const key = task.family === 'uppercase' ? (t: string) => t : (t: string) => t.toLowerCase();
  const answer = got.map(key);
  const expected = task.expected.map(key);
  if (!got.some((t) => inputWords.has(t.toLowerCase()))) return verdict(0, JUSTIFICATIONS.unrelated);
  const shared = overlap(expected, answer);
  const s = exact ? 5 : containsRun(answer, expected) ? 4 : shared === expected.length ? 3 : 2 * shared >= expected.length ? 2 : 1;
  return verdict(s, JUSTIFICATIONS.list[s]);
}

/** The oracle's score (0..5) and a one-sentence justification of a response to an instruction. */
export function oracleScore(instruction: string, response: string): OracleVerdict {
  const parsed = parseTask(instruction);
  if (!parsed.ok) return verdict(0, `Not a task I can check: ${parsed.reason}.`);
  return scoreTask(parsed.task, response);
}

/** The judge's reply the oracle would give: the justification, then `Score: N` on its own line. */
export function oracleJudgment(v: OracleVerdict): string {
  return `${v.justification}\nScore: ${v.score}`;
}

/** The oracle as a pointwise judge for head-to-head and reward-model evaluation. */
export const oracleJudge = (): PointwiseJudge => oracleJudgeFrom((instruction, response) => oracleScore(instruction, response).score);
