/**
 * Importers for public instruction data, into the rows of rows.ts.
 *
 * Errors are DatasetErrors, `file:line: field: problem`. In JSONL the line is the file's line. In a
 * JSON array file the line is the file's line where the bad item starts, and the field is the JSON
 * path from the top of the file, so it names the item by its 0-based index: `data.json:7: [2].output:
 * ...` is item [2], which starts on line 7.
 */
import { open, readFile } from 'node:fs/promises';
import { z } from 'zod';
import { InvalidInputError } from '../errors';
import { DatasetError, parseRow, readJsonl } from './jsonl';
import type { IftRow, RankedSetRow } from './rows';

// ---------------------------------------------------------------------------------------------
// Alpaca

/** An Alpaca-style row; other fields (`text` and the like) are dropped. */
export const AlpacaSourceRow = z.object({
  instruction: z.string().min(1),
  input: z.string().nullish(),
  output: z.string().min(1),
});
export type AlpacaSourceRow = z.infer<typeof AlpacaSourceRow>;

/** The IFT row for an Alpaca row: a non-empty `input` follows the instruction after a blank line. */
export function alpacaToIft(row: AlpacaSourceRow, index: number): IftRow {
  return { id: `alpaca-${index}`, instruction: row.input ? `${row.instruction}\n\n${row.input}` : row.instruction, response: row.output };
}

/**
 * IFT rows from an Alpaca-style file: a JSON array (the file's first non-blank character is `[`)
 * or JSONL. Ids are `alpaca-<i>` with i the row's 0-based place among the rows (array items, or
 * non-blank JSONL lines). A JSON array is read whole; JSONL streams.
 */
export async function* importAlpaca(file: string): AsyncGenerator<IftRow> {
  if ((await firstChar(file)) === '[') {
    const items = await readJsonArray(file);
    for (const [i, item] of items.entries()) yield alpacaToIft(parseRow(AlpacaSourceRow, item.value, file, item.line, [i]), i);
    return;
  }
  let i = 0;
  for await (const { row } of readJsonl(file, AlpacaSourceRow)) yield alpacaToIft(row, i++);
}

/** The first non-whitespace character of a file ('' if none), read a block at a time. */
async function firstChar(file: string): Promise<string> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    throw new InvalidInputError(`cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    const buffer = Buffer.alloc(4096);
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) return '';
      // \s covers a byte-order mark; a character cut at the block's end is never whitespace.
      const match = /\S/.exec(buffer.toString('utf8', 0, bytesRead));
      if (match) return match[0];
    }
  } finally {
    await handle.close();
  }
}

/** The items of a file holding one JSON array, each with the line it starts on. */
async function readJsonArray(file: string): Promise<{ value: unknown; line: number }[]> {
  const text = (await readFile(file, 'utf8')).replace(/^\uFEFF/, '');
  let whole: unknown;
  try {
    whole = JSON.parse(text);
  } catch (err) {
    // Find the item that does not parse, to name its line.
    const { items, error } = splitArray(text);
    for (const [i, item] of items.entries()) {
      try {
        JSON.parse(text.slice(item.start, item.end));
      } catch (itemErr) {
        throw new DatasetError(file, lineAt(text, item.start), `[${i}]`, `not valid JSON (${(itemErr as Error).message})`);
      }
    }
    throw new DatasetError(file, lineAt(text, error ?? 0), '', `not valid JSON (${(err as Error).message})`);
  }
  if (!Array.isArray(whole)) throw new DatasetError(file, 1, '', 'expected a JSON array of rows');
  const starts = splitArray(text).items;
  let line = 1;
  let at = 0;
  return whole.map((value, i) => {
    // Items come in order, so lines are counted once over the file.
    const start = starts[i]?.start ?? at;
    for (; at < start; at++) if (text.charCodeAt(at) === 10) line++;
    return { value, line };
  });
}

/** 1-based line of `offset` in `text`. */
function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/**
 * Where each item of a top-level JSON array lies (`[start, end)`, whitespace trimmed), found by
 * tracking strings and bracket depth only; `error` is the offset where the structure broke, if it did.
 * Used to place items on lines; JSON.parse decides what is valid.
 */
function splitArray(text: string): { items: { start: number; end: number }[]; error?: number } {
  const items: { start: number; end: number }[] = [];
  let i = text.search(/\S/);
  if (i < 0 || text[i] !== '[') return { items, error: Math.max(i, 0) };
  i++;
  let depth = 0;
  let start = -1;
  let end = -1;
  for (; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') {
      if (start < 0) start = i;
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
      if (i >= text.length) return { items, error: start };
      end = i + 1;
    } else if (depth === 0 && (c === ',' || c === ']')) {
      if (start >= 0) items.push({ start, end });
      else if (c === ',' || items.length > 0) return { items, error: i };
      if (c === ']') return { items };
      start = -1;
    } else if (!/\s/.test(c)) {
      if (start < 0) start = i;
      if (c === '{' || c === '[') depth++;
      else if (c === '}' || c === ']') depth--;
      end = i + 1;
    }
  }
  return { items, error: start >= 0 ? start : text.length };
}

// ---------------------------------------------------------------------------------------------
// OpenAssistant

const OasstRole = z.enum(['prompter', 'assistant']);
const messageFields = {
  message_id: z.string().min(1),
  role: OasstRole,
  text: z.string().min(1),
  lang: z.string().min(1),
  rank: z.number().int().nonnegative().nullish(),
  deleted: z.boolean().nullish(),
  review_result: z.boolean().nullish(),
};

/** One message of the flat format (one per JSONL line); other fields are ignored. */
export const OasstMessage = z.object({ ...messageFields, parent_id: z.string().min(1).nullable() });
export type OasstMessage = z.infer<typeof OasstMessage>;

export interface OasstTreeNode extends z.infer<z.ZodObject<typeof messageFields>> {
  replies: OasstTreeNode[];
}
export const OasstTreeNode: z.ZodType<OasstTreeNode> = z.lazy(() => z.object({ ...messageFields, replies: z.array(OasstTreeNode).default([]) }));

/** One conversation tree of the tree format (one per JSONL line); other fields are ignored. */
export const OasstTree = z.object({ message_tree_id: z.string().min(1), prompt: OasstTreeNode });
export type OasstTree = z.infer<typeof OasstTree>;

export interface OasstImport {
  /** The rank-0 reply to each kept prompt. Id `oasst-<prompt message_id>`. */
  ift: IftRow[];
  /** Each kept prompt with its kept replies that have a rank (at least two), best first. Id `oasst-<prompt message_id>`. */
  ranked: RankedSetRow[];
  /** What was left out and why, in a fixed order; reasons with a count of 0 are omitted. */
  skipped: { reason: string; count: number }[];
}

export interface OasstOptions {
  /** Keep only prompts whose `lang` is this; null keeps every language. Default 'en'. */
  lang?: string | null;
}

type Message = Omit<OasstMessage, 'parent_id'>;
interface Conversation {
  prompt: Message;
  replies: Message[];
  /** Messages below the first turn. */
  later: number;
}

/**
 * IFT rows and ranked sets from OpenAssistant conversation trees, first turns only (the root
 * prompter message and its direct assistant replies). Reads JSONL in either format, told apart by
 * the first row: flat messages (`message_id`, `parent_id`, ...; parents may come after their
 * replies and trees may interleave) or one tree per line (`message_tree_id`, `prompt.replies`).
 * Both give the same result for the same content: prompts in the order their root appears in
 * the file, replies in file order. Not streaming: the flat format must be grouped whole.
 *
 * A prompt that is deleted, failed review (`review_result === false`) or is not in `lang` (checked
 * on the prompt only) is dropped with its replies; a deleted or failed-review reply is dropped on
 * its own. An assistant root, a prompter reply to a prompt, a repeated message_id or (flat) a
 * parent missing from the file is an error.
 */
export async function importOpenAssistant(file: string, options: OasstOptions = {}): Promise<OasstImport> {
  const conversations: Conversation[] = [];
  let format: 'messages' | 'trees' | undefined;
  const messages = new Map<string, { message: OasstMessage; line: number }>();
  const order: string[] = [];
  for await (const { line, row } of readJsonl(file, z.unknown())) {
    format ??= row !== null && typeof row === 'object' && 'prompt' in row && !('message_id' in row) ? 'trees' : 'messages';
    if (format === 'trees') {
      const tree = parseRow(OasstTree, row, file, line);
      checkRoot(tree.prompt, file, line, 'prompt.');
      const replies = tree.prompt.replies.map((reply, i) => {
        if (reply.role !== 'assistant') throw new DatasetError(file, line, `prompt.replies[${i}].role`, 'a reply to a prompt must be an assistant message');
        return reply;
      });
      const later = replies.reduce((sum, reply) => sum + countNodes(reply.replies), 0);
      conversations.push({ prompt: tree.prompt, replies, later });
    } else {
      const message = parseRow(OasstMessage, row, file, line);
      if (messages.has(message.message_id)) throw new DatasetError(file, line, 'message_id', `${message.message_id} appears twice`);
      messages.set(message.message_id, { message, line });
      order.push(message.message_id);
    }
  }
  if (format === 'messages') conversations.push(...groupMessages(messages, order, file));
  return selectFirstTurns(conversations, options.lang === undefined ? 'en' : options.lang);
}

function checkRoot(prompt: Message, file: string, line: number, prefix = ''): void {
  if (prompt.role !== 'prompter') throw new DatasetError(file, line, `${prefix}role`, 'a conversation must start with a prompter message');
}

function countNodes(nodes: OasstTreeNode[]): number {
  return nodes.reduce((sum, node) => sum + 1 + countNodes(node.replies), 0);
}

/** Flat messages into conversations: roots in file order, each with its direct replies in file order. */
function groupMessages(messages: Map<string, { message: OasstMessage; line: number }>, order: string[], file: string): Conversation[] {
  const byRoot = new Map<string, Conversation>();
  for (const id of order) {
    const { message, line } = messages.get(id)!;
    if (message.parent_id === null) {
      checkRoot(message, file, line);
      byRoot.set(id, { prompt: message, replies: [], later: 0 });
    }
  }
  for (const id of order) {
    const { message, line } = messages.get(id)!;
    if (message.parent_id === null) continue;
    const parent = messages.get(message.parent_id);
    if (!parent) throw new DatasetError(file, line, 'parent_id', `no message ${message.parent_id} in the file`);
    const conversation = byRoot.get(message.parent_id);
    if (conversation) {
      if (message.role !== 'assistant') throw new DatasetError(file, line, 'role', 'a reply to a prompt must be an assistant message');
      conversation.replies.push(message);
    } else {
      // Below the first turn: count it against its root (a cycle has none and is an error).
      const seen = new Set([id]);
      let up = parent.message;
      while (up.parent_id !== null) {
        if (seen.has(up.message_id)) throw new DatasetError(file, line, 'parent_id', 'its ancestors form a cycle');
        seen.add(up.message_id);
        const next = messages.get(up.parent_id);
        if (!next) break; // reported at that message's own line
        up = next.message;
      }
      const root = up.parent_id === null ? byRoot.get(up.message_id) : undefined;
      if (root) root.later++;
    }
  }
  return [...byRoot.values()];
}

const dropped = (m: Message) => m.deleted === true || m.review_result === false;

function selectFirstTurns(conversations: Conversation[], lang: string | null): OasstImport {
  const counts = {
    promptDropped: 0,
    promptLang: 0,
    replyDropped: 0,
    later: 0,
    noBest: 0,
    fewRanked: 0,
  };
  const ift: IftRow[] = [];
  const ranked: RankedSetRow[] = [];
  for (const { prompt, replies, later } of conversations) {
    counts.later += later;
    if (dropped(prompt)) {
      counts.promptDropped++;
      continue;
    }
    if (lang !== null && prompt.lang !== lang) {
      counts.promptLang++;
      continue;
    }
    const kept = replies.filter((reply) => {
      if (dropped(reply)) counts.replyDropped++;
      return !dropped(reply);
    });
    const id = `oasst-${prompt.message_id}`;
    const best = kept.find((reply) => reply.rank === 0);
    if (best) ift.push({ id, instruction: prompt.text, response: best.text });
    else counts.noBest++;
    // Stable sort: equal ranks (ties) keep file order.
    const withRank = kept.filter((reply) => reply.rank !== null && reply.rank !== undefined).sort((x, y) => x.rank! - y.rank!);
    if (withRank.length >= 2) ranked.push({ id, instruction: prompt.text, responses: withRank.map((reply) => ({ text: reply.text, rank: reply.rank! })) });
    else counts.fewRanked++;
  }
  const skipped = [
    { reason: 'prompt deleted or failed review', count: counts.promptDropped },
    { reason: `prompt not in language ${lang}`, count: counts.promptLang },
    { reason: 'first-turn reply deleted or failed review', count: counts.replyDropped },
    { reason: 'message below the first turn', count: counts.later },
    { reason: 'prompt without a rank-0 reply (no IFT row)', count: counts.noBest },
    { reason: 'prompt with fewer than 2 ranked replies (no ranked set)', count: counts.fewRanked },
  ].filter((s) => s.count > 0);
  return { ift, ranked, skipped };
}
