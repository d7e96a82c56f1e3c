#!/usr/bin/env node
import { Command, Option } from 'commander';
import { InvalidInputError } from '../core/errors';

// package-lock.json pins an AWS SDK release that supports Node 20; its notice about later
// releases needing Node 22 says nothing about the one installed, so it is not printed.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

// Commands load their modules when they run, so `--help` and config checks start fast
// (the Temporal and AWS SDKs take a second to load).

const collect = (value: string, previous: string[] = []) => [...previous, value];

function withConfigOptions(cmd: Command): Command {
  return cmd
    .option('--config <file>', 'run config, YAML or JSON')
    .option('--preset <name>', 'a built-in config instead of a file', undefined)
    .option('--set <key=value>', 'override a config field, e.g. --set iterations.settings.dpo.lr=2e-5 (repeatable)', collect);
}

function program(): Command {
  const srlm = new Command('srlm')
    .description('Self-Rewarding Language Models as a durable pipeline (Temporal + TensorFlow.js + S3).')
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ sortSubcommands: false });

  withConfigOptions(
    srlm
      .command('run')
      .description('start a run, or re-attach to the live run with the same ID; shows progress until it ends unless --detach')
      .option('--run-id <id>', 'run ID (default: <name>-s<seed>-<config hash>, so the same config attaches to the same run)')
      .option('--seed <n>', 'seed for everything random in the run')
      .option('--iterations <n>', 'self-rewarding iterations after M1 (paper: 2)')
      .option('--detach', 'start the run and return; workers elsewhere do the work')
      .option('--no-worker', 'do not run an all-in-one worker in this process')
      .option('--json', 'print the result as JSON on stdout'),
  ).action(async (opts) => (await import('./run.js')).runCommand(opts));

  withConfigOptions(
    srlm
      .command('worker')
      .description('serve task queues against the configured Temporal until interrupted')
      .addOption(new Option('--queues <list>', 'comma-separated: model (GPU work), orchestration (workflows, CPU work)').default('model,orchestration')),
  ).action(async (opts) => (await import('./worker.js')).workerCommand(opts));

  withConfigOptions(
    srlm.command('status').argument('<runId>', 'the run ID').description('stage, steps and status of a run').option('--json', 'print JSON on stdout'),
  ).action(async (runId, opts) => (await import('./status.js')).statusCommand(runId, opts));

  const config = srlm.command('config').description('inspect and validate run configs');
  withConfigOptions(config.command('show').description('print the resolved config (defaults filled in) as JSON')).action(async (opts) => {
    const { resolveRunConfig } = await import('./run-config.js');
    process.stdout.write(`${JSON.stringify(resolveRunConfig(opts).config, null, 2)}\n`);
  });
  config
    .command('check')
    .argument('<file>', 'a YAML or JSON run config')
    .description('validate a config file; errors name the file, line and field')
    .action(async (file) => {
      (await import('../core/config/index.js')).loadConfigFile(file);
      process.stdout.write(`${file}: valid\n`);
    });

  const infra = srlm.command('infra').description('the local Temporal dev server (with Web UI) and S3 server');
  infra.command('up').description('install (once, into the cache) and start both servers; they keep running').option('--json', 'print JSON').action(async (o) => (await import('./infra.js')).infraUp(o));
  infra.command('status').description('show whether the servers are running, and where').option('--json', 'print JSON').action(async (o) => (await import('./infra.js')).infraStatus(o));
  infra.command('down').description('stop both servers and wait until their processes are gone').action(async () => (await import('./infra.js')).infraDown());
  return srlm;
}

async function main(): Promise<void> {
  await program().parseAsync(process.argv);
}

main().catch((err: unknown) => {
  if (err instanceof InvalidInputError) {
    process.stderr.write(`srlm: ${err.message}\n`);
    process.exit(2);
  }
  console.error(err);
  process.exit(1);
});
