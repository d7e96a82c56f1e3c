import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isNode, type Document } from 'yaml';
import type { z } from 'zod';
import { InvalidInputError } from '../errors';
import { RunConfig, IterationSettings, type RunConfigInput } from './schema';

export interface ConfigIssue {
  file: string;
  line?: number;
  column?: number;
  /** Dotted field path, e.g. `iterations.settings.dpo.beta`. */
  path: string;
  message: string;
}

/** A config that does not validate; the message lists every problem as `file:line:col: field: what`. */
export class ConfigError extends InvalidInputError {
  constructor(readonly issues: ConfigIssue[]) {
    super(
      `invalid config:\n${[...issues]
        .sort((a, b) => (a.line ?? 0) - (b.line ?? 0))
        .map((i) => `  ${i.file}${i.line ? `:${i.line}:${i.column}` : ''}: ${i.path || '(top level)'}: ${i.message}`)
        .join('\n')}`,
    );
  }
}

export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, seg) => (typeof seg === 'number' ? `${acc}[${seg}]` : acc ? `${acc}.${String(seg)}` : String(seg)), '');
}

/** The deepest node of `path` that exists in the document, so a missing field points at its parent. */
function locate(doc: Document | undefined, counter: LineCounter | undefined, path: readonly PropertyKey[]) {
  if (!doc || !counter) return {};
  for (let depth = path.length; depth >= 0; depth--) {
    const node = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth) as (string | number)[], true);
    if (isNode(node) && node.range) {
      const pos = counter.linePos(node.range[0]);
      return { line: pos.line, column: pos.col };
    }
  }
  return {};
}

function toIssues(error: z.ZodError, file: string, doc?: Document, counter?: LineCounter): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const path = [...issue.path, key];
        issues.push({ file, ...locate(doc, counter, path), path: formatPath(path), message: 'unknown field (check its spelling and place)' });
      }
      continue;
    }
    issues.push({ file, ...locate(doc, counter, issue.path), path: formatPath(issue.path), message: issue.message });
  }
  return issues;
}

/** Validates a config object (from a preset, a file or code). `source` names it in errors. */
export function parseConfig(value: unknown, source = '<config>'): RunConfig {
  const result = RunConfig.safeParse(value);
  if (!result.success) throw new ConfigError(toIssues(result.error, source));
  return result.data;
}

/** Reads a YAML or JSON config file; every error names the file, the line and the field. */
export function loadConfigFile(file: string): RunConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new InvalidInputError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  // JSON is (for configs) a subset of YAML, so one parser gives line numbers for both.
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = counter.linePos(e.pos[0]);
        return { file, line: pos.line, column: pos.col, path: '', message: `not valid YAML/JSON: ${e.message.split('\n')[0]}` };
      }),
    );
  }
  const value = doc.toJS() ?? {};
  const result = RunConfig.safeParse(value);
  if (!result.success) throw new ConfigError(toIssues(result.error, file, doc, counter));
  return result.data;
}

/** The settings of iteration `n` (1-based): the shared settings with that iteration's overrides on top. */
export function settingsForIteration(config: RunConfig, n: number): IterationSettings {
  const merged: Record<string, Record<string, unknown>> = structuredClone(config.iterations.settings);
  for (const override of config.iterations.overrides) {
    if (override.iteration !== n) continue;
    for (const [section, values] of Object.entries(override)) {
      if (section === 'iteration' || values === undefined) continue;
      merged[section] = { ...merged[section], ...(values as Record<string, unknown>) };
    }
  }
  const parsed = IterationSettings.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new InvalidInputError(`iteration ${n} settings: ${formatPath(issue.path)}: ${issue.message}`);
  }
  return parsed.data;
}

/**
 * Applies `key=value` assignments (`--set seed=3`, `--set iterations.count=3`) to a config input.
 * Values are parsed as JSON where they can be (numbers, booleans), else taken as strings; the
 * result is validated like a file, so a wrong key or value names the assignment.
 */
export function applyAssignments(input: RunConfigInput, assignments: string[]): RunConfig {
  const value = structuredClone(input) as Record<string, unknown>;
  for (const assignment of assignments) {
    const eq = assignment.indexOf('=');
    if (eq <= 0) throw new InvalidInputError(`--set ${assignment}: expected key=value, e.g. --set iterations.count=3`);
    const path = assignment.slice(0, eq).split('.');
    const raw = assignment.slice(eq + 1);
    let parsed: unknown = raw;
    try {
      parsed = JSON.parse(raw);
    } catch {
      /* a plain string */
    }
    let cursor = value;
    for (const seg of path.slice(0, -1)) {
      if (cursor[seg] === undefined) cursor[seg] = {};
      if (typeof cursor[seg] !== 'object' || cursor[seg] === null) {
        throw new InvalidInputError(`--set ${assignment}: ${seg} is not a section`);
      }
      cursor = cursor[seg] as Record<string, unknown>;
    }
    cursor[path[path.length - 1]!] = parsed;
  }
  return parseConfig(value, '--set');
}
