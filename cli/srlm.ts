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

/** Options shared by `train sft` and `train dpo` (the per-method ones — lr, batch size, dropout — are on each command). */
function withTrainingOptions(cmd: Command): Command {
  return cmd
    .option('--schedule <s>', 'cosine, linear or constant')
    .option('--warmup-steps <n>', 'linear warmup steps')
    .option('--gradient-accumulation <n>', 'micro-batches per optimizer step')
    .option('--epochs <n>', 'passes over the data')
    .option('--max-steps <n>', 'stop after this many optimizer steps')
    .option('--weight-decay <x>', 'AdamW decoupled weight decay')
    .option('--grad-clip <x>', 'clip the global gradient norm')
    .option('--max-seq-len <n>', 'truncate prompt + response to this many tokens')
    .option('--checkpoint-every-steps <n>', 'save resumable state every n steps')
    .option('--checkpoint-every-seconds <n>', '... or every n seconds')
    .option('--seed <n>', 'seed for shuffling and dropout', '0')
    .option('--state <dir|uri>', 'where resumable state goes (default: <out>.state)')
    .option('--tokenizer <bytes>', 'use the built-in byte tokenizer for text')
    .option('--save-dtype <dtype>', 'float32 or bfloat16', 'float32');
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
  ).action(async (runId, opts) => (await import('./runs.js')).statusCommand(runId, opts));

  withConfigOptions(
    srlm
      .command('retry')
      .argument('<runId>', 'the run ID')
      .description('retry a failed iteration, reusing its finished steps; --set changes that iteration\'s settings (e.g. --set dpo.lr=2e-5)')
      .option('--iteration <n>', 'the failed iteration (checked against the run)')
      .option('--json', 'print JSON on stdout'),
  ).action(async (runId, opts) => (await import('./runs.js')).retryCommand(runId, opts));

  withConfigOptions(
    srlm
      .command('report')
      .argument('<runId>', 'the run ID')
      .description('the results of a finished run: head-to-head, judge metrics, pairs per iteration, training')
      .option('--out <dir>', 'also write report.json and report.md there')
      .option('--json', 'print the report as JSON on stdout'),
  ).action(async (runId, opts) => (await import('./runs.js')).reportCommand(runId, opts));

  withConfigOptions(
    srlm
      .command('export')
      .argument('<runId>', 'the run ID')
      .description('take one of a finished run\'s models out of the artifact store: its Hugging Face directory, or its answers to the run\'s evaluation prompts as AlpacaEval model_outputs.json')
      .requiredOption('--model <name>', 'a model as the run report names it: SFT, M1, M2, ... (M0 is the base; control/M2, ceiling/M2 are the reference arms\')')
      .requiredOption('--format <format>', 'hf (config.json, model.safetensors, tokenizer.json, ...; every file verified against its sha256) or alpaca-eval ([{instruction, output, generator}])')
      .requiredOption('--out <path>', 'hf: a directory to create (absent or empty); alpaca-eval: the JSON file to write (an existing directory gets model_outputs.json)')
      .option('--store <uri>', 'the artifact store the run used (default: the store of --config / --preset, as srlm run resolves it)')
      .option('--generator <name>', 'alpaca-eval: the generator field (default: the model name)')
      .option('--json', 'print what was written as JSON on stdout')
      .addHelpText('after', '\nReads only the artifact store (the run\'s recorded config, its report, checkpoints and answers), not Temporal:\nit works after the Temporal server that ran the run is gone. The run must have finished (it has a report).'),
  ).action(async (runId, opts) => (await import('./export.js')).exportCommand(runId, opts));

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

  const model = srlm.command('model').description('inspect a Hugging Face model directory (Llama or GPT-2)');
  model
    .command('logits')
    .description('logits for a token sequence: {"logits": number[][]}, one row per position')
    .requiredOption('--model <dir>', 'model directory (config.json, model.safetensors)')
    .requiredOption('--ids <ids>', 'comma-separated token ids, e.g. 1,2,3')
    .option('--json', 'print JSON (the default; accepted for symmetry)')
    .action(async (o) => (await import('./model.js')).logitsCommand(o));
  model
    .command('init')
    .description('a freshly initialised model (normal std 0.02) from a transformers config.json')
    .requiredOption('--config <file>', 'config.json with model_type llama or gpt2')
    .requiredOption('--out <dir>', 'where to write the model directory')
    .option('--seed <n>', 'initialisation seed', '0')
    .option('--tokenizer <bytes>', 'attach the built-in byte tokenizer (sets vocab and special ids if absent)')
    .action(async (o) => (await import('./model.js')).initCommand(o));
  model
    .command('generate')
    .description('continue a sequence: {"ids": prompt + new tokens, "newIds": [...]} with --json')
    .requiredOption('--model <dir>', 'model directory')
    .option('--ids <ids>', 'comma-separated prompt token ids')
    .option('--prompt <text>', 'prompt text (needs the model\'s tokenizer.json)')
    .requiredOption('--max-new-tokens <n>', 'how many tokens to add at most')
    .option('--greedy', 'argmax decoding (default: sampling)')
    .option('--temperature <t>', 'sampling temperature', '0.7')
    .option('--top-p <p>', 'nucleus sampling threshold', '0.9')
    .option('--top-k <k>', 'keep the k most likely tokens (0 = all)', '0')
    .option('--seed <n>', 'sampling seed', '0')
    .option('--no-cache', 'recompute every position each step instead of using the KV cache')
    .option('--json', 'print JSON')
    .action(async (o) => (await import('./model.js')).generateCommand(o));

  const train = srlm.command('train').description('train outside a pipeline run');
  const sft = train
    .command('sft')
    .description('supervised fine-tuning on JSONL rows; resumable: run the same command again after a crash or Ctrl-C')
    .requiredOption('--model <dir>', 'the model to start from')
    .requiredOption('--data <file>', 'JSONL rows: {instruction, response}, {prompt, response}, Alpaca {instruction, input, output}, or {prompt_ids, response_ids}')
    .requiredOption('--out <dir>', 'where to write the trained model')
    .option('--lr <x>', 'peak learning rate (paper: 5.5e-6)')
    .option('--lr-end <x>', 'final learning rate (paper: 1.1e-6)')
    .option('--batch-size <n>', 'sequences per optimizer step (paper: 16)')
    .option('--dropout <p>', 'dropout (paper: 0.1)');
  withTrainingOptions(sft)
    .option('--json', 'print a JSON summary')
    .action(async (o) => (await import('./train.js')).trainSftCommand(o));

  const dpo = train
    .command('dpo')
    .description('DPO on preference pairs from a checkpoint (also the frozen reference); resumable like train sft')
    .requiredOption('--model <dir>', 'the model to start from, with tokenizer.json')
    .requiredOption('--pairs <file>', 'JSONL pairs: {promptId, instruction, chosen, rejected, chosenScore, rejectedScore}')
    .requiredOption('--out <dir>', 'where to write the trained model')
    .option('--beta <x>', 'DPO beta (paper: 0.1)')
    .option('--loss <kind>', 'sigmoid (DPO) or ipo')
    .option('--lr <x>', 'peak learning rate (paper: 1e-6)')
    .option('--lr-end <x>', 'final learning rate (paper: 1e-7)')
    .option('--batch-size <n>', 'pairs per optimizer step (paper: 16)')
    .option('--dropout <p>', 'dropout');
  withTrainingOptions(dpo)
    .option('--json', 'print a JSON summary with the first, last and final metrics')
    .action(async (o) => (await import('./train.js')).trainDpoCommand(o));

  const evaluate = srlm.command('eval').description('evaluate models and judges');
  evaluate
    .command('head-to-head')
    .description('both models answer the prompts (greedy); a judge picks the better answer: wins, ties, losses, win rate with a 95% CI')
    .requiredOption('--a <dir>', 'model A (the win rate is A\'s)')
    .requiredOption('--b <dir>', 'model B')
    .requiredOption('--prompts <file>', 'JSONL rows with an instruction (prompt, IFT or Alpaca rows)')
    .option('--judge <judge>', 'self (model A judges with the 5-point rubric), a judge model directory, or oracle (built-in worlds)', 'self')
    .option('--samples <k>', 'judgments per response, averaged', '3')
    .option('--max-new-tokens <n>', 'longest answer', '256')
    .option('--judge-max-new-tokens <n>', 'longest judgment', '128')
    .option('--seed <n>', 'judge sampling seed', '0')
    .option('--out <file>', 'write every prompt\'s responses and verdicts as JSONL')
    .option('--json', 'print JSON')
    .action(async (o) => (await import('./eval.js')).headToHeadCommand(o));
  evaluate
    .command('judge')
    .description('a judge against reference rankings: pairwise accuracy, 5-best, exact match, Spearman, Kendall')
    .requiredOption('--model <dir>', 'the model (judges itself with --judge self)')
    .requiredOption('--ranked <file>', 'JSONL ranked sets: {id, instruction, responses: [{text, rank}]}, rank 0 = best')
    .option('--judge <judge>', 'self or a judge model directory', 'self')
    .option('--samples <k>', 'judgments per response, averaged', '3')
    .option('--judge-max-new-tokens <n>', 'longest judgment', '128')
    .option('--seed <n>', 'judge sampling seed', '0')
    .option('--json', 'print JSON')
    .action(async (o) => (await import('./eval.js')).judgeEvalCommand(o));

  const judge = srlm.command('judge').description('the self-judging step');
  judge
    .command('parse')
    .description('scores from judge replies on stdin (one JSON-encoded string per line): {"scores": [n|null, ...]}')
    .option('--json', 'print {"scores": [...]} (otherwise one score per line, with the reason for each null)')
    .action(async (o) => (await import('./judge.js')).judgeParseCommand(o));

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
