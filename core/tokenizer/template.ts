/**
 * How an instruction becomes a prompt for a model. One template per model, stored with its
 * checkpoint as tokenizer_config.json's `chat_template` (the Jinja form transformers uses), so the
 * same words reach the model in training, in generation and in transformers. A Hugging Face model
 * that ships a chat template is prompted with it (rendered by @huggingface/jinja, the renderer the
 * JS tokenizers use); a model without one gets the plain instruction template below.
 */
import type { Template as JinjaTemplateImpl } from '@huggingface/jinja' with { 'resolution-mode': 'import' };
import { InvalidInputError } from '../errors';

// The package ships a CommonJS build for Node (its types are declared as ESM only).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Template: JinjaTemplate } = require('@huggingface/jinja') as { Template: typeof JinjaTemplateImpl };

export interface PromptTemplate {
  readonly name: string;
  /** The prompt for one user instruction, ending where the model's response begins. */
  format(instruction: string): string;
  /** The same template as a transformers chat_template. */
  readonly jinja: string;
}

/** A template that is fixed text before and after the instruction. */
export function textTemplate(name: string, before: string, after: string): PromptTemplate {
  const lit = (s: string) => JSON.stringify(s);
  return {
    name,
    format: (instruction) => `${before}${instruction}${after}`,
    jinja: `{% for message in messages %}{% if message['role'] == 'user' %}{{ ${lit(before)} + message['content'] + ${lit(after)} }}{% elif message['role'] == 'assistant' %}{{ message['content'] }}{% endif %}{% endfor %}`,
  };
}

/** An Alpaca-style template: plain text, no special tokens, readable in logs. */
export const INSTRUCTION_TEMPLATE = textTemplate('instruction', '### Instruction:\n', '\n\n### Response:\n');

/**
 * A transformers chat template, rendered for one user turn with `add_generation_prompt`, as
 * `apply_chat_template` does. `specialTokens` fills `bos_token`, `eos_token` and the like.
 */
export function jinjaTemplate(source: string, specialTokens: Record<string, string> = {}, name = 'chat_template'): PromptTemplate {
  let compiled: JinjaTemplateImpl;
  try {
    compiled = new JinjaTemplate(source);
  } catch (err) {
    throw new InvalidInputError(`${name}: not a valid Jinja chat template: ${(err as Error).message}`);
  }
  return {
    name,
    jinja: source,
    format: (instruction) => {
      try {
        return compiled.render({ ...specialTokens, messages: [{ role: 'user', content: instruction }], add_generation_prompt: true });
      } catch (err) {
        throw new InvalidInputError(`${name}: rendering the chat template failed: ${(err as Error).message}`);
      }
    },
  };
}

/**
 * The template a tokenizer_config.json names: its `chat_template` (a string, or a list of named
 * templates of which `default` is used), with its special tokens; null when it has none.
 */
export function templateFromTokenizerConfig(config: Record<string, unknown>, source = 'tokenizer_config.json'): PromptTemplate | null {
  let chat = config.chat_template;
  if (Array.isArray(chat)) {
    const named = chat as { name?: unknown; template?: unknown }[];
    chat = (named.find((t) => t.name === 'default') ?? named[0])?.template;
  }
  if (chat === undefined || chat === null) return null;
  if (typeof chat !== 'string') throw new InvalidInputError(`${source}: chat_template must be a string or a list of {name, template}`);
  const specials: Record<string, string> = {};
  for (const key of ['bos_token', 'eos_token', 'pad_token', 'unk_token']) {
    const v = config[key];
    if (typeof v === 'string') specials[key] = v;
    else if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') specials[key] = (v as { content: string }).content;
  }
  return jinjaTemplate(chat, specials, `${source}: chat_template`);
}

export function formatPrompt(template: PromptTemplate, instruction: string): string {
  return template.format(instruction);
}
