/**
 * A closed-vocabulary word-level tokenizer for small synthetic worlds: each word, digit, run of
 * `#`, punctuation mark and line break is one token, so a sentence of a task language is a few
 * tokens long and copying an item is copying one token.
 *
 * Spaces are kept as the metaspace `▁` on the token that follows them (`▁cat` is " cat"), with
 * one implied space before every text, so a word is the same token at the start of a text (a
 * response's first word) as after a space (the same word in its instruction). Every word of the
 * vocabulary has both forms: bare (after a line break or punctuation, `Score` in "\nScore") and
 * spaced (`▁Score`). Extra spaces are lone `▁` tokens. Any text made of the vocabulary's words
 * round-trips exactly; other words become `<unk>`.
 *
 * `toJson()` writes the same tokenizer as a standard Hugging Face tokenizer.json (a WordLevel
 * model; a normalizer that turns spaces into `▁` and prepends one; a Split pre-tokenizer; a
 * Replace → Fuse → Strip decoder), which @huggingface/tokenizers and the Python tokenizers load
 * with the same ids and the same decoding (including the JS library's default clean-up of spaces
 * before `.,!?`, which is mirrored here; the world's texts never contain those).
 */
import type { TextTokenizer } from './tokenizer';
import { InvalidInputError } from '../errors';

export const METASPACE = '\u2581';

/** One token: an optional metaspace, then a word, one digit, a run of `#`, one other visible mark, or one whitespace character. */
const PIECE_SOURCE = `${METASPACE}?[A-Za-z]+|${METASPACE}?[0-9]|${METASPACE}?#+|${METASPACE}?[^\\s${METASPACE}A-Za-z0-9#]|\\s|${METASPACE}`;
const PIECE = new RegExp(PIECE_SOURCE, 'gu');

/** The clean-up @huggingface/tokenizers applies after decoding (clean_up_tokenization_spaces, on by default). */
function cleanUpSpaces(text: string): string {
  return text
    .replace(/ \./g, '.')
    .replace(/ \?/g, '?')
    .replace(/ !/g, '!')
    .replace(/ ,/g, ',')
    .replace(/ ' /g, "'")
    .replace(/ n't/g, "n't")
    .replace(/ 'm/g, "'m")
    .replace(/ 's/g, "'s")
    .replace(/ 've/g, "'ve")
    .replace(/ 're/g, "'re");
}

export class WordTokenizer implements TextTokenizer {
  static readonly SPECIALS = ['<pad>', '<eos>', '<bos>', '<unk>'] as const;
  readonly padTokenId = 0;
  readonly eosTokenId = 1;
  readonly bosTokenId = 2;
  readonly unkTokenId = 3;
  readonly vocabSize: number;
  /** Token strings by id (specials first, then each word bare and with its metaspace). */
  readonly tokens: readonly string[];
  private readonly ids = new Map<string, number>();

  /**
   * @param words the vocabulary's words (letters, digits, punctuation marks, `\n`, runs of `#`);
   *   each gets a bare and a spaced token, in this order, after the four special tokens.
   */
  constructor(words: Iterable<string>) {
    const tokens: string[] = [...WordTokenizer.SPECIALS];
    const add = (t: string) => {
      if (!this.ids.has(t)) {
        this.ids.set(t, tokens.length);
        tokens.push(t);
      }
    };
    tokens.forEach((t, i) => this.ids.set(t, i));
    add(METASPACE);
    for (const word of words) {
      const pieces = word.match(PIECE) ?? [];
      if (pieces.length !== 1 || pieces[0] !== word || word.startsWith(METASPACE) || word === ' ') {
        throw new InvalidInputError(`word tokenizer: ${JSON.stringify(word)} is not one token (a word, a digit, a run of #, one mark or one whitespace character)`);
      }
      add(word);
      if (!/^\s$/.test(word)) add(METASPACE + word);
    }
    this.tokens = tokens;
    this.vocabSize = tokens.length;
  }

  /** Token strings of a text (as the tokenizer.json's normalizer and pre-tokenizer make them). */
  pieces(text: string): string[] {
    const out: string[] = [];
    // Special tokens' text is split out first and each section normalised alone, as the HF tokenizers do.
    for (const section of this.sections(text)) {
      if ((WordTokenizer.SPECIALS as readonly string[]).includes(section)) out.push(section);
      else out.push(...(METASPACE + section.replaceAll(' ', METASPACE)).match(PIECE)!);
    }
    return out;
  }

  private sections(text: string): string[] {
    const parts = text.split(/(<pad>|<eos>|<bos>|<unk>)/);
    return parts.filter((p) => p.length > 0);
  }

  encode(text: string): number[] {
    return this.pieces(text).map((p) => this.ids.get(p) ?? this.unkTokenId);
  }

  decode(ids: number[], options: { skipSpecialTokens?: boolean } = {}): string {
    const skip = options.skipSpecialTokens ?? true;
    let tokens = ids.map((id) => this.tokens[id] ?? '<unk>');
    if (skip) tokens = tokens.filter((t) => !(WordTokenizer.SPECIALS as readonly string[]).includes(t));
    const text = tokens.join('').replaceAll(METASPACE, ' ');
    return cleanUpSpaces(text.startsWith(' ') ? text.slice(1) : text);
  }

  /** Is every token of this text in the vocabulary? */
  covers(text: string): boolean {
    return this.pieces(text).every((p) => this.ids.has(p));
  }

  toJson(): string {
    const vocab: Record<string, number> = {};
    this.tokens.forEach((t, i) => (vocab[t] = i));
    return JSON.stringify({
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: WordTokenizer.SPECIALS.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
      normalizer: {
        type: 'Sequence',
        normalizers: [
          { type: 'Replace', pattern: { String: ' ' }, content: METASPACE },
          { type: 'Prepend', prepend: METASPACE },
        ],
      },
      pre_tokenizer: { type: 'Split', pattern: { Regex: PIECE_SOURCE }, behavior: 'Isolated', invert: false },
      post_processor: null,
      decoder: {
        type: 'Sequence',
        decoders: [
          { type: 'Replace', pattern: { String: METASPACE }, content: ' ' },
          { type: 'Fuse' },
          { type: 'Strip', content: ' ', start: 1, stop: 0 },
        ],
      },
      model: { type: 'WordLevel', vocab, unk_token: '<unk>' },
    });
  }
}
