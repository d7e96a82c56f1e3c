import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { applyAssignments, loadConfigFile, parseConfig, presetConfig, type RunConfig } from '../core/config';
import { canonicalJson } from '../core/canonical-json';
import { InvalidInputError } from '../core/errors';
import { configWorldVersions } from '../core/pipeline/world';
import '../core/worlds/index'; // the built-in worlds' versions (their code loads on first use)
import { srlmHome } from '../infra/paths';

/** Resolving a run config from CLI options; kept free of the Temporal SDK so config commands start fast. */

export interface ConfigOptions {
  config?: string;
  preset?: string;
  seed?: string;
  iterations?: string;
  set?: string[];
}

/** The run config named by --config or --preset (default: the tiny preset), with CLI overrides applied. */
export function resolveRunConfig(opts: ConfigOptions): { config: RunConfig; source: string } {
  if (opts.config && opts.preset) throw new InvalidInputError('give either --config FILE or --preset NAME, not both');
  const assignments = [...(opts.set ?? [])];
  if (opts.seed !== undefined) assignments.push(`seed=${intOption('--seed', opts.seed)}`);
  if (opts.iterations !== undefined) assignments.push(`iterations.count=${intOption('--iterations', opts.iterations)}`);
  let config: RunConfig;
  let source: string;
  let baseDir = process.cwd();
  if (opts.config) {
    config = loadConfigFile(opts.config);
    source = path.resolve(opts.config);
    baseDir = path.dirname(source);
    if (assignments.length) config = applyAssignments(config, assignments);
  } else {
    const name = opts.preset ?? 'tiny';
    source = `preset:${name}`;
    config = assignments.length ? applyAssignments(presetConfig(name), assignments) : parseConfig(presetConfig(name), source);
  }
  // Workers may run elsewhere: a local store path travels as an absolute file:// URI.
  const uri = config.store.uri.replace(/^\$SRLM_HOME(?=\/|$)/, srlmHome());
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) {
    const expanded = uri === '~' || uri.startsWith('~/') ? path.join(os.homedir(), uri.slice(1)) : path.resolve(baseDir, uri);
    config = { ...config, store: { ...config.store, uri: `file://${expanded}` } };
  }
  return { config, source };
}

function intOption(flag: string, value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidInputError(`${flag} ${value}: expected a non-negative integer`);
  return Number(value);
}

/**
 * The same config always gets the same run ID, so `srlm run` again attaches to (or resumes) it. The
 * versions of the built-in worlds it names count too: after a world changes, a new run starts
 * instead of the old one being reported.
 */
export function defaultRunId(config: RunConfig): string {
  const worlds = configWorldVersions(config);
  const hashed = Object.keys(worlds).length ? { config, worlds } : config;
  const hash = createHash('sha256').update(canonicalJson(hashed)).digest('hex').slice(0, 10);
  return `${config.name}-s${config.seed}-${hash}`;
}

