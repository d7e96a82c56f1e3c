import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { ByteTokenizer, HfTokenizer } from '../../core/tokenizer/tokenizer';
import { INSTRUCTION_TEMPLATE, formatPrompt } from '../../core/tokenizer/template';
import { HF_FIXTURES } from '../support/hf-fixtures';

interface TokCase {
  text: string;
  ids: number[];
  decoded: string;
}
const dir = path.join(HF_FIXTURES, 'tokenizer');
const cases = (JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8')) as { cases: TokCase[] }).cases;

describe('tokenizers', () => {
  it('encodes and decodes a byte-level BPE tokenizer.json exactly as Hugging Face tokenizers does', () => {
    const tok = new HfTokenizer(readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
    assert.ok(cases.length >= 15);
    for (const c of cases) {
      assert.deepEqual(tok.encode(c.text), c.ids, JSON.stringify(c.text));
      assert.equal(tok.decode(c.ids), c.decoded, JSON.stringify(c.text));
    }
    assert.equal(tok.eosTokenId, 0); // <|endoftext|>
  });

  it('rejects a tokenizer.json that is not JSON, naming the file', () => {
    assert.throws(() => new HfTokenizer('{nope', {}, '/models/x/tokenizer.json'), /\/models\/x\/tokenizer\.json is not valid JSON/);
  });

  it('has a byte tokenizer that round-trips any text and whose tokenizer.json gives the same ids', () => {
    const bytes = new ByteTokenizer();
    const fromJson = new HfTokenizer(bytes.toJson());
    assert.equal(fromJson.vocabSize, 259);
    for (const { text } of cases) {
      const ids = bytes.encode(text);
      assert.equal(bytes.decode(ids), text);
      assert.deepEqual(fromJson.encode(text), ids, JSON.stringify(text));
      assert.equal(fromJson.decode(ids), text);
    }
    assert.equal(bytes.decode([bytes.bosTokenId, ...bytes.encode('hi'), bytes.eosTokenId], { skipSpecialTokens: false }), '<bos>hi<eos>');
    assert.equal(bytes.decode([bytes.bosTokenId, ...bytes.encode('hi'), bytes.eosTokenId]), 'hi');
  });

  it('formats prompts with the model template, and writes it as a chat template', () => {
    assert.equal(formatPrompt(INSTRUCTION_TEMPLATE, 'Sort: b a'), '### Instruction:\nSort: b a\n\n### Response:\n');
    assert.match(INSTRUCTION_TEMPLATE.jinja, /message\['content'\]/);
  });
});
