/**
 * How an instruction becomes a prompt for a model. One template per model, stored with its
 * checkpoint (tokenizer_config.json's `chat_template`, in the Jinja form transformers uses), so the
 * same words reach the model in training, in generation and in transformers.
 */
export interface PromptTemplate {
  name: string;
  /** Text before the instruction. */
  before: string;
  /** Text between the instruction and the response. */
  after: string;
}

/** An Alpaca-style template: plain text, no special tokens, readable in logs. */
export const INSTRUCTION_TEMPLATE: PromptTemplate = {
  name: 'instruction',
  before: '### Instruction:\n',
  after: '\n\n### Response:\n',
};

export function formatPrompt(template: PromptTemplate, instruction: string): string {
  return `${template.before}${instruction}${template.after}`;
}

/** The same template as a transformers chat_template (user turns only; the response follows). */
export function chatTemplateJinja(template: PromptTemplate): string {
  const lit = (s: string) => JSON.stringify(s);
  return `{% for message in messages %}{% if message['role'] == 'user' %}{{ ${lit(template.before)} + message['content'] + ${lit(template.after)} }}{% elif message['role'] == 'assistant' %}{{ message['content'] }}{% endif %}{% endfor %}`;
}
