import { z } from 'zod';
import { readJsonl } from '../core/data/jsonl';
import { parseJudgeScore } from '../core/judge/parse';
import { printJson } from './print';

/** `srlm judge parse`: judge replies on stdin, one JSON-encoded string per line → {"scores": [...]}. */
export async function judgeParseCommand(opts: { json?: boolean }): Promise<void> {
  const results = [];
  for await (const { row } of readJsonl(process.stdin, z.string(), 'stdin')) results.push(parseJudgeScore(row));
  if (opts.json) printJson({ scores: results.map((r) => (r.ok ? r.score : null)) });
  else for (const r of results) process.stdout.write(`${r.ok ? r.score : `null (${r.reason})`}\n`);
}
