/**
 * A small user-supplied setup for pipeline tests, written as files the way a user would bring
 * their own: a byte-level base model directory, IFT / EFT / evaluation / ranked JSONL files, a short
 * judge template and a self-instruct template, and a config that runs the whole loop in about a
 * minute on 2 cores. The task: reverse a list of words. The IFT set also teaches "write a new task"
 * (so self-instruct has something to say) and the EFT set teaches judging with `Score: N`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { initBackend } from '../../core/compute/backend';
import { parseConfig, type RunConfig } from '../../core/config';
import { ModelConfig } from '../../core/model/config';
import { DecoderModel } from '../../core/model/decoder';
import { saveTextModel } from '../../core/method/text-model';
import { Rng } from '../../core/random';
import { INSTRUCTION_TEMPLATE } from '../../core/tokenizer/template';
import { ByteTokenizer } from '../../core/tokenizer/tokenizer';

const WORDS = ['cat', 'dog', 'sun', 'sea', 'map', 'pen', 'cup', 'box', 'owl', 'fig', 'jam', 'kit'];

export const FIXTURE_JUDGE_TEMPLATE = 'Rate the reply to "{instruction}": "{response}". Score 0-5.\n';
export const FIXTURE_SELF_INSTRUCT_TEMPLATE = '### Instruction:\nWrite a new task like these.\n{tasks}\n\n### Response:\nTask:';

function task(rng: Rng): { instruction: string; items: string[] } {
  const items = rng.shuffle([...WORDS]).slice(0, 3);
  return { instruction: `Reverse: ${items.join(' ')}`, items };
}

export async function writePipelineFixture(dir: string, seed = 0): Promise<{ configFor: (store: string, queues: { model: string; orchestration: string }, over?: Partial<RunConfig>) => RunConfig }> {
  await initBackend(undefined, () => undefined);
  mkdirSync(dir, { recursive: true });
  const rng = new Rng(seed);
  const lines = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
  const ift: { instruction: string; response: string }[] = [];
  for (let i = 0; i < 24; i++) {
    const t = task(rng);
    ift.push({ instruction: t.instruction, response: [...t.items].reverse().join(' ') });
  }
  for (let i = 0; i < 8; i++) {
    const shots = [task(rng), task(rng)].map((t) => `Task: ${t.instruction}`).join('\n');
    ift.push({ instruction: `Write a new task like these.\n${shots}`, response: `Task: ${task(rng).instruction}` });
  }
  const eft = [];
  // Four kinds of reply, each with its score: the reversal (5), the list as given (2), a reply that
  // drops a word (1), and one that is off the task (0).
  for (let i = 0; i < 24; i++) {
    const t = task(rng);
    const kinds: [string, number][] = [[[...t.items].reverse().join(' '), 5], [t.items.join(' '), 2], [[...t.items].reverse().slice(0, 2).join(' '), 1], [rng.next() < 0.5 ? 'no' : 'Task: Reverse', 0]];
    const [response, score] = kinds[i % 4]!;
    eft.push({ instruction: t.instruction, response, judgment: `Score: ${score}`, score });
  }
  const evalPrompts = Array.from({ length: 6 }, (_, i) => ({ id: `eval-${i}`, instruction: task(rng).instruction, source: 'eval' }));
  const ranked = Array.from({ length: 3 }, (_, i) => {
    const t = task(rng);
    return { id: `ranked-${i}`, instruction: t.instruction, responses: [{ text: [...t.items].reverse().join(' '), rank: 0 }, { text: t.items.join(' '), rank: 1 }, { text: 'no', rank: 2 }] };
  });
  writeFileSync(path.join(dir, 'ift.jsonl'), lines(ift));
  writeFileSync(path.join(dir, 'eft.jsonl'), lines(eft));
  writeFileSync(path.join(dir, 'eval.jsonl'), lines(evalPrompts));
  writeFileSync(path.join(dir, 'ranked.jsonl'), lines(ranked));
  writeFileSync(path.join(dir, 'judge-template.txt'), FIXTURE_JUDGE_TEMPLATE);
  writeFileSync(path.join(dir, 'self-instruct-template.txt'), FIXTURE_SELF_INSTRUCT_TEMPLATE);

  const config = ModelConfig.parse({
    family: 'llama', vocabSize: 259, hiddenSize: 48, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 12,
    intermediateSize: 96, maxPositions: 128, normEps: 1e-5, tieEmbeddings: true, padTokenId: 0, eosTokenId: 1, bosTokenId: 2,
  });
  const model = DecoderModel.initialise(config, seed);
  await saveTextModel({ model, tokenizer: new ByteTokenizer(), template: INSTRUCTION_TEMPLATE }, path.join(dir, 'm0'));
  model.dispose();

  return {
    configFor: (store, queues, over = {}) => {
      const base = parseConfig({
        name: 'fixture',
        seed,
        model: { base: path.join(dir, 'm0') },
        data: { ift: path.join(dir, 'ift.jsonl'), eft: path.join(dir, 'eft.jsonl'), evalPrompts: path.join(dir, 'eval.jsonl'), rankedEval: path.join(dir, 'ranked.jsonl') },
        sft: { lr: 1e-2, lrEnd: 1e-3, batchSize: 8, epochs: 25, dropout: 0, maxSeqLen: 128, warmupSteps: 2, checkpointEverySteps: 5 },
        iterations: {
          count: 2,
          settings: {
            prompts: { count: 6, fewShotIft: 2, fewShotGenerated: 1, maxNewTokens: 20, minChars: 5, template: path.join(dir, 'self-instruct-template.txt') },
            candidates: { n: 3, maxNewTokens: 14, temperature: 1, shardSize: 2 },
            judge: { samples: 3, maxNewTokens: 10, temperature: 0.5, template: path.join(dir, 'judge-template.txt') },
            dpo: { lr: 1e-4, lrEnd: 1e-5, batchSize: 2, epochs: 2, dropout: 0, maxSeqLen: 128, checkpointEverySteps: 1 },
          },
        },
        evaluation: { judge: 'self', maxNewTokens: 14 },
        store: { uri: store },
        temporal: { taskQueues: queues },
      });
      return { ...base, ...over };
    },
  };
}
