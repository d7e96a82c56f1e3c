import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { judgePrompt } from '../../core/judge/prompt';
import { selfInstructPrompt } from '../../core/method/prompts';
import { stopTokenSequences } from '../../core/method/text-model';
import { Rng } from '../../core/random';
import { INSTRUCTION_TEMPLATE } from '../../core/tokenizer/template';
import { HfTokenizer } from '../../core/tokenizer/tokenizer';
import { METASPACE, WordTokenizer } from '../../core/tokenizer/word';
import { makeTinyWorld, TINY_JUDGE_TEMPLATE, TINY_SELF_INSTRUCT_TEMPLATE, tinyTokenizer } from '../../core/worlds/tiny';

/** Every text the tiny world produces, as the pipeline tokenizes it. */
function worldTexts(seed: number): string[] {
  const w = makeTinyWorld(seed);
  return [
    ...w.ift.flatMap((r) => [INSTRUCTION_TEMPLATE.format(r.instruction), r.instruction, r.response]),
    ...w.eft.flatMap((r) => [INSTRUCTION_TEMPLATE.format(judgePrompt(r.instruction, r.response, TINY_JUDGE_TEMPLATE)), r.response, r.judgment]),
    ...w.evalPrompts.map((p) => INSTRUCTION_TEMPLATE.format(p.instruction)),
    ...w.rankedEval.flatMap((s) => s.responses.map((r) => INSTRUCTION_TEMPLATE.format(judgePrompt(s.instruction, r.text, TINY_JUDGE_TEMPLATE)))),
    ...w.pretrain,
    selfInstructPrompt(w.ift.slice(0, 8).map((r) => r.instruction), TINY_SELF_INSTRUCT_TEMPLATE),
  ];
}

describe('word tokenizer', () => {
  const small = new WordTokenizer(['cat', 'dog', 'Score', ':', '.', '\n', '###', '3']);

  it('makes one token per word, digit, mark, run of # and line break, spaces on the next token', () => {
    assert.deepEqual(small.pieces('Score: 3\ncat dog.'), [`${METASPACE}Score`, ':', `${METASPACE}3`, '\n', 'cat', `${METASPACE}dog`, '.']);
    assert.deepEqual(small.pieces('### cat'), [`${METASPACE}###`, `${METASPACE}cat`]);
    assert.deepEqual(small.pieces('cat  dog '), [`${METASPACE}cat`, METASPACE, `${METASPACE}dog`, METASPACE]);
    assert.deepEqual(small.pieces('33'), [`${METASPACE}3`, '3']);
    // Specials first, then the bare and spaced forms of each word in the order given.
    assert.deepEqual(small.tokens.slice(0, 7), ['<pad>', '<eos>', '<bos>', '<unk>', METASPACE, 'cat', `${METASPACE}cat`]);
    assert.equal(small.vocabSize, 5 + 7 * 2 + 1); // "\n" has no spaced form
    assert.deepEqual([small.padTokenId, small.eosTokenId, small.bosTokenId, small.unkTokenId], [0, 1, 2, 3]);
  });

  it('gives a word the same token at the start of a text and after a space', () => {
    assert.deepEqual(small.encode('cat'), small.encode(' cat'.slice(1)));
    assert.equal(small.encode('dog cat')[1], small.encode('cat')[0]);
  });

  it('round-trips texts of its words exactly and reads other words as <unk>', () => {
    for (const text of ['', 'cat', ' cat', 'cat ', '\ncat', 'cat\n\ndog', 'Score: 3', '  ###  cat\n', 'cat.dog', 'cat. dog']) {
      assert.equal(small.decode(small.encode(text)), text, JSON.stringify(text));
    }
    assert.deepEqual(small.encode('cat bird'), [small.encode('cat')[0], 3]);
    assert.equal(small.decode(small.encode('cat bird')), 'cat');
    assert.equal(small.decode(small.encode('cat bird'), { skipSpecialTokens: false }), 'cat<unk>');
    assert.equal(small.decode([2, ...small.encode('cat'), 1], { skipSpecialTokens: false }), '<bos> cat<eos>');
    assert.equal(small.decode([2, ...small.encode('cat'), 1]), 'cat');
  });

  it('refuses vocabulary entries that are not one token', () => {
    assert.throws(() => new WordTokenizer(['two words']), /not one token/);
    assert.throws(() => new WordTokenizer(['cat.']), /not one token/);
    assert.throws(() => new WordTokenizer([`${METASPACE}cat`]), /not one token/);
  });

  it('writes a tokenizer.json that @huggingface/tokenizers reads with the same ids and decoding', () => {
    const hf = new HfTokenizer(small.toJson());
    assert.equal(hf.vocabSize, small.vocabSize);
    assert.deepEqual([hf.padTokenId, hf.eosTokenId, hf.bosTokenId], [0, 1, 2]);
    const json = JSON.parse(small.toJson()) as { model: { type: string; unk_token: string } };
    assert.equal(json.model.type, 'WordLevel');
    assert.equal(json.model.unk_token, '<unk>');
    for (const text of ['cat', ' cat', 'cat ', '\ncat', 'cat\n\ndog', 'Score: 3', '  ###  cat\n', 'cat.dog', 'cat bird dog', 'cat<eos>dog', 'x']) {
      assert.deepEqual(hf.encode(text), small.encode(text), JSON.stringify(text));
      for (const skipSpecialTokens of [true, false]) {
        const ids = small.encode(text);
        if (ids.length > 0) assert.equal(hf.decode(ids, { skipSpecialTokens }), small.decode(ids, { skipSpecialTokens }), JSON.stringify(text));
      }
    }
    // Any id sequence a model might generate decodes the same way, clean-up of " ." included.
    const rng = new Rng(5);
    for (let i = 0; i < 300; i++) {
      const ids = Array.from({ length: 1 + rng.int(12) }, () => rng.int(small.vocabSize + 2));
      for (const skipSpecialTokens of [true, false]) assert.equal(hf.decode(ids, { skipSpecialTokens }), small.decode(ids, { skipSpecialTokens }), ids.join(','));
    }
  });

  it('covers and round-trips every text of the tiny world, identically through its tokenizer.json', () => {
    const tok = tinyTokenizer();
    const hf = new HfTokenizer(tok.toJson());
    assert.ok(tok.vocabSize < 512, `${tok.vocabSize} tokens`);
    for (const seed of [0, 1]) {
      for (const text of worldTexts(seed)) {
        const ids = tok.encode(text);
        assert.ok(!ids.includes(tok.unkTokenId), `unknown words in ${JSON.stringify(text)}: ${tok.pieces(text).filter((p) => !tok.tokens.includes(p)).join(' ')}`);
        assert.equal(tok.decode(ids), text);
        assert.deepEqual(hf.encode(text), ids, JSON.stringify(text));
        assert.equal(hf.decode(ids), text);
      }
    }
    // The instruction template's parts are single tokens; the response's first word is the same token as in the instruction.
    const prompt = tok.encode(INSTRUCTION_TEMPLATE.format('Reverse: cat dog'));
    assert.equal(prompt.length, 14);
    assert.equal(tok.encode('dog cat')[0], prompt[prompt.length - 7]);
  });

  it('lets generation stop at a line break written after a word', () => {
    const tok = tinyTokenizer();
    const newline = tok.encode('cat\n').slice(1);
    assert.ok(stopTokenSequences(tok, '\n').some((ids) => ids.join() === newline.join()));
  });
});
