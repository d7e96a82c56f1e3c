/**
 * Tokenizers behind one interface: Hugging Face tokenizer.json files through the maintained
 * @huggingface/tokenizers package (byte-level BPE and the rest of the format), and a byte
 * tokenizer for models trained from scratch — itself written out as a standard tokenizer.json
 * (a byte-level BPE with no merges), so transformers and any tokenizers library load it too.
 */
import type { Tokenizer as HfTokenizerImpl } from '@huggingface/tokenizers' with { 'resolution-mode': 'import' };
import { InvalidInputError } from '../errors';

// The package ships a CommonJS build for Node (its types are declared as ESM only).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Tokenizer: HfTokenizerClass } = require('@huggingface/tokenizers') as { Tokenizer: typeof HfTokenizerImpl };

export interface TextTokenizer {
  readonly vocabSize: number;
  readonly eosTokenId: number | null;
  readonly padTokenId: number | null;
  readonly bosTokenId: number | null;
  encode(text: string): number[];
  decode(ids: number[], options?: { skipSpecialTokens?: boolean }): string;
  /** The tokenizer.json to write next to a checkpoint. */
  toJson(): string;
}

type Json = Record<string, unknown>;

export class HfTokenizer implements TextTokenizer {
  private readonly impl: HfTokenizerImpl;
  readonly vocabSize: number;
  readonly eosTokenId: number | null;
  readonly padTokenId: number | null;
  readonly bosTokenId: number | null;

  constructor(
    private readonly json: string,
    config: Json = {},
    source = 'tokenizer.json',
  ) {
    let parsed: Json;
    try {
      parsed = JSON.parse(json) as Json;
    } catch (err) {
      throw new InvalidInputError(`${source} is not valid JSON: ${(err as Error).message}`);
    }
    // @huggingface/tokenizers has no WordLevel model: it reads the vocabulary as is and takes the
    // unknown token from the config only, so a WordLevel model's unk_token is passed on there.
    const wordLevel = parsed.model as { type?: unknown; unk_token?: unknown } | undefined;
    if (wordLevel?.type === 'WordLevel' && typeof wordLevel.unk_token === 'string' && config.unk_token === undefined) config = { ...config, unk_token: wordLevel.unk_token };
    try {
      this.impl = new HfTokenizerClass(parsed, config);
    } catch (err) {
      throw new InvalidInputError(`${source}: unsupported tokenizer: ${(err as Error).message}`);
    }
    const model = parsed.model as { vocab?: Record<string, number> | unknown[] } | undefined;
    const added = (parsed.added_tokens ?? []) as { id: number; content: string }[];
    const vocab = model?.vocab;
    const size = Array.isArray(vocab) ? vocab.length : Object.keys(vocab ?? {}).length;
    this.vocabSize = Math.max(size, ...added.map((t) => t.id + 1));
    const idOf = (names: string[]) => {
      for (const n of names) {
        const hit = added.find((t) => t.content === n);
        if (hit) return hit.id;
      }
      return null;
    };
    const cfgToken = (key: string) => (typeof config[key] === 'string' ? [config[key] as string] : []);
    this.eosTokenId = idOf([...cfgToken('eos_token'), '<|endoftext|>', '</s>', '<eos>', '<|eot_id|>']);
    this.padTokenId = idOf([...cfgToken('pad_token'), '<pad>', '<|pad|>']);
    this.bosTokenId = idOf([...cfgToken('bos_token'), '<s>', '<bos>', '<|begin_of_text|>']);
  }

  encode(text: string): number[] {
    return this.impl.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: number[], options: { skipSpecialTokens?: boolean } = {}): string {
    if (ids.length === 0) return '';
    return this.impl.decode(ids, { skip_special_tokens: options.skipSpecialTokens ?? true });
  }

  toJson(): string {
    return this.json;
  }
}

/** GPT-2's reversible map from bytes to printable characters (what byte-level BPE vocabularies use). */
function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const map: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) map[b] = String.fromCodePoint(printable.includes(b) ? b : 256 + extra++);
  return map;
}

/**
 * Bytes as tokens, after a few special tokens: `<pad>` 0, `<eos>` 1, `<bos>` 2, then byte b at
 * 3 + b. Any text round-trips; the vocabulary is 259.
 */
export class ByteTokenizer implements TextTokenizer {
  static readonly SPECIALS = ['<pad>', '<eos>', '<bos>'] as const;
  readonly vocabSize = 256 + ByteTokenizer.SPECIALS.length;
  readonly padTokenId = 0;
  readonly eosTokenId = 1;
  readonly bosTokenId = 2;
  private readonly offset = ByteTokenizer.SPECIALS.length;

  encode(text: string): number[] {
    return [...Buffer.from(text, 'utf8')].map((b) => b + this.offset);
  }

  decode(ids: number[], options: { skipSpecialTokens?: boolean } = {}): string {
    const skip = options.skipSpecialTokens ?? true;
    const bytes: number[] = [];
    let text = '';
    const flush = () => {
      text += Buffer.from(bytes).toString('utf8');
      bytes.length = 0;
    };
    for (const id of ids) {
      if (id >= this.offset && id < this.vocabSize) bytes.push(id - this.offset);
      else if (!skip && id >= 0 && id < this.offset) {
        flush();
        text += ByteTokenizer.SPECIALS[id];
      }
    }
    flush();
    return text;
  }

  toJson(): string {
    const chars = bytesToUnicode();
    const vocab: Record<string, number> = {};
    ByteTokenizer.SPECIALS.forEach((s, i) => (vocab[s] = i));
    chars.forEach((c, b) => (vocab[c] = b + this.offset));
    return JSON.stringify({
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: ByteTokenizer.SPECIALS.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
      normalizer: null,
      pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      post_processor: null,
      decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: [] },
    });
  }
}
