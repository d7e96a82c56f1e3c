import { createInterface } from 'node:readline';
import { parseJudgeScore } from '../core/judge/parse';
import { InvalidInputError } from '../core/errors';
import { printJson } from './print';

/** `srlm judge parse`: judge replies on stdin, one JSON-encoded string per line → {"scores": [...]}. */
export async function judgeParseCommand(opts: { json?: boolean }): Promise<void> {
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  const scores: (number | null)[] = [];
  const reasons: (string | null)[] = [];
  let n = 0;
  for await (const line of lines) {
    n++;
    if (line.trim() === '') continue;
    let reply: unknown;
    try {
      reply = JSON.parse(line);
    } catch (err) {
      throw new InvalidInputError(`stdin:${n}: not a JSON-encoded string (${(err as Error).message})`);
    }
    if (typeof reply !== 'string') throw new InvalidInputError(`stdin:${n}: expected a JSON string, got ${reply === null ? 'null' : typeof reply}`);
    const r = parseJudgeScore(reply);
    scores.push(r.ok ? r.score : null);
    reasons.push(r.ok ? null : r.reason);
  }
  if (opts.json) printJson({ scores });
  else scores.forEach((s, i) => process.stdout.write(`${s ?? `null (${reasons[i]})`}\n`));
}
