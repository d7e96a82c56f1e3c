/**
 * Reading a judge's reply: the score it gave, or a failure — never a guess.
 *
 * The judge is asked to end with `Score: N` (N in 0..5, points added up over five criteria). Real
 * replies vary: case, markdown (`**Score:** 4`), `Score: 4/5`, `4.5`, a sentence after the score,
 * a scratch score before the final one. The rule: take the last `score` label followed by a value
 * that is unambiguously one number in [0, 5]; if the last labelled value is malformed (a range,
 * `8/10`, out of range), that is a failure rather than a fallback to an earlier one.
 */

export const MIN_SCORE = 0;
export const MAX_SCORE = 5;

export type ParseResult = { ok: true; score: number } | { ok: false; reason: string };

const WORDS: Record<string, number> = { zero: 0, one: 1, two: 2, three: 3, four: 4, five: 5 };

/** Markdown emphasis and code marks carry no meaning for the score. */
function normalise(reply: string): string {
  return reply.replace(/[*_`~]/g, '').replace(/：/g, ':').replace(/\u00a0/g, ' ');
}

// `score`, optionally "final"/"total" before it and "(out of 5)" after it, then ":", "=", "-", "is" or "of".
const LABEL = /\bscore\b(?:\s*\([^)\n]{0,30}\))?\s*(?::|=|-(?!\d)|–|—|\bis\b|\bof\b)\s*/gi;

function readValue(text: string): ParseResult {
  const m = /^([+-]?(?:\d+(?:\.\d+)?|\.\d+)|zero|one|two|three|four|five)\b/i.exec(text);
  if (!m) return { ok: false, reason: `no number after the score label (found ${JSON.stringify(text.slice(0, 12))})` };
  const raw = m[1]!;
  const value = raw.toLowerCase() in WORDS ? WORDS[raw.toLowerCase()]! : Number(raw);
  const rest = text.slice(raw.length);
  if (/^\s*(?:-|–|—|to)\s*\d/.test(rest)) return { ok: false, reason: `a range, not one score (${JSON.stringify(text.slice(0, 12))})` };
  if (/^,\d/.test(rest)) return { ok: false, reason: `ambiguous decimal comma (${JSON.stringify(text.slice(0, 12))})` };
  const outOf = /^\s*(?:\/|out of)\s*(\d+(?:\.\d+)?)/i.exec(rest);
  if (outOf && Number(outOf[1]) !== MAX_SCORE) return { ok: false, reason: `a score out of ${outOf[1]}, not out of ${MAX_SCORE}` };
  if (!Number.isFinite(value) || value < MIN_SCORE || value > MAX_SCORE) return { ok: false, reason: `score ${raw} is outside ${MIN_SCORE}..${MAX_SCORE}` };
  return { ok: true, score: value };
}

export function parseJudgeScore(reply: string): ParseResult {
  if (typeof reply !== 'string' || reply.trim() === '') return { ok: false, reason: 'empty reply' };
  const text = normalise(reply);
  let last: ParseResult | undefined;
  for (const m of text.matchAll(LABEL)) {
    const value = readValue(text.slice(m.index + m[0].length));
    // "the score of this reply…", "the score is high": prose, not a score statement.
    const prose = /\b(?:is|of)\s*$/i.test(m[0]) && !value.ok && /^no number/.test(value.reason);
    if (!prose) last = value;
  }
  return last ?? { ok: false, reason: 'no "Score:" label in the reply' };
}

/** The mean of the parsed scores of k judgments, and how many failed to parse. */
export function meanScore(replies: string[]): { mean: number | null; parsed: number; failed: number } {
  const scores = replies.map(parseJudgeScore).filter((r): r is { ok: true; score: number } => r.ok).map((r) => r.score);
  return { mean: scores.length ? scores.reduce((a, b) => a + b, 0) / scores.length : null, parsed: scores.length, failed: replies.length - scores.length };
}
