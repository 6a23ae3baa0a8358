// Character-level tokenizer, as nanoGPT's shakespeare_char: the vocabulary is the sorted set of
// distinct characters (Unicode code points, sorted by code point like Python's sorted(set(text))).
import { brief } from "../io/read.js";
import type { EncodeOptions, Tokenizer } from "./tokenizer.js";

/** The tokenizer.json form saved next to a checkpoint. */
export interface CharTokenizerJSON {
  type: "char";
  /** vocab[id] is the character of that id, one code point each, sorted, distinct. */
  vocab: string[];
}

export class CharTokenizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CharTokenizerError";
  }
}

const codePoint = (ch: string) => ch.codePointAt(0) as number;
const describe = (ch: string) =>
  `${JSON.stringify(ch)} (U+${codePoint(ch).toString(16).toUpperCase().padStart(4, "0")})`;

export class CharTokenizer implements Tokenizer {
  readonly vocab: readonly string[];
  private readonly ids: Map<string, number>;

  private constructor(vocab: string[]) {
    this.vocab = vocab;
    this.ids = new Map(vocab.map((ch, i) => [ch, i]));
  }

  get vocabSize(): number {
    return this.vocab.length;
  }

  /** Builds the vocabulary from a corpus. */
  static fromText(text: string): CharTokenizer {
    if (text.length === 0) throw new CharTokenizerError("CharTokenizer.fromText: the corpus is empty; expected at least one character");
    const chars = [...new Set(text)].sort((a, b) => codePoint(a) - codePoint(b));
    return new CharTokenizer(chars);
  }

  /** Restores a tokenizer from its toJSON() form; `source` (e.g. the file name) prefixes errors. */
  static fromJSON(json: unknown, source = "tokenizer.json"): CharTokenizer {
    const bad = (problem: string) => new CharTokenizerError(`${source}: ${problem}`);
    if (typeof json !== "object" || json === null || Array.isArray(json)) throw bad("expected an object {type: \"char\", vocab: [...]}");
    const { type, vocab } = json as Record<string, unknown>;
    if (type !== "char") throw bad(`"type" is ${brief(type)}; expected "char"`);
    if (!Array.isArray(vocab) || vocab.length === 0) throw bad('"vocab" must be a non-empty array of single characters');
    vocab.forEach((ch: unknown, i) => {
      if (typeof ch !== "string" || [...ch].length !== 1) throw bad(`"vocab"[${i}] is ${brief(ch)}; expected a single character`);
      if (i > 0 && codePoint(vocab[i - 1] as string) >= codePoint(ch)) {
        throw bad(`"vocab"[${i}] ${describe(ch)} is out of order or repeated; expected distinct characters sorted by code point`);
      }
    });
    return new CharTokenizer(vocab as string[]);
  }

  toJSON(): CharTokenizerJSON {
    return { type: "char", vocab: [...this.vocab] };
  }

  /** Encodes code point by code point; an unknown character is an error naming it and its position. */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    if (opts.bos || opts.eos) throw new CharTokenizerError("CharTokenizer has no BOS/EOS tokens; expected bos and eos to be unset");
    const out: number[] = [];
    let pos = 0; // code point index
    for (const ch of text) {
      const id = this.ids.get(ch);
      if (id === undefined) {
        throw new CharTokenizerError(`CharTokenizer.encode: character ${describe(ch)} at position ${pos} is not in the vocabulary of ${this.vocabSize} characters`);
      }
      out.push(id);
      pos++;
    }
    return out;
  }

  decode(ids: number[]): string {
    let s = "";
    ids.forEach((id, i) => {
      const ch = this.vocab[id];
      if (ch === undefined) throw new CharTokenizerError(`CharTokenizer.decode: id ${id} at position ${i} is out of range; expected an integer in [0, ${this.vocabSize})`);
      s += ch;
    });
    return s;
  }
}
