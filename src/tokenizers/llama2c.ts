// The llama2.c tokenizer (.bin written by llama2.c's tokenizer.py from a SentencePiece model).
// File layout (little-endian): int32 max_token_length, then for each id: float32 score, int32 len,
// len bytes of the piece. "▁" is stored as a space; ids 3..258 are the byte fallbacks "<0xNN>".
// encode/decode follow karpathy/llama2.c run.c (`encode`, `decode`); pieces are kept as byte
// strings (one char per byte, "latin1") so that lookups compare bytes exactly as strcmp does.
import { closeSync } from "node:fs";
import { MAX_TOKENIZER_BYTES, formatBytes, openRegular, readAt, type FileReadError } from "../io/read.js";
import type { EncodeOptions, Tokenizer } from "./tokenizer.js";

export class Llama2cTokenizerError extends Error {
  constructor(readonly source: string, problem: string) {
    super(`${source}: ${problem}`);
    this.name = "Llama2cTokenizerError";
  }
}

const BOS = 1; // run.c: "add optional BOS (=1) token"
const EOS = 2; // run.c: "add optional EOS (=2) token"
const BYTE_OFFSET = 3; // run.c: byte fallback id = byte + 3 (after <unk>, <s>, </s>)
// run.c starts the merge search at `float best_score = -1e10`, so a pair must score strictly above it.
const MIN_SCORE = Math.fround(-1e10);
const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

interface Candidate { score: number; left: number; right: number; id: number; vl: number; vr: number }

/** Max-heap order: higher score first, then the leftmost pair (run.c keeps the first of equal scores). */
const before = (a: Candidate, b: Candidate) => a.score > b.score || (a.score === b.score && a.left < b.left);

class CandidateHeap {
  private readonly items: Candidate[] = [];
  get size(): number { return this.items.length; }
  push(c: Candidate): void {
    const h = this.items;
    h.push(c);
    for (let i = h.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (!before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }
  pop(): Candidate {
    const h = this.items;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < h.length && before(h[l]!, h[m]!)) m = l;
        if (r < h.length && before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

export class Llama2cTokenizer implements Tokenizer {
  readonly bosId = BOS;
  readonly eosId = EOS;
  /** Piece bytes as latin1 strings, exactly as stored (a space stands for "▁"). */
  readonly pieces: readonly string[];
  readonly scores: Float32Array;
  private readonly lookup = new Map<string, number>();
  /** Decoded bytes of each piece: <0xNN> pieces become the raw byte (run.c `decode`). */
  private readonly pieceBytes: Uint8Array[];

  private constructor(readonly source: string, readonly maxTokenLength: number, pieces: string[], scores: Float32Array) {
    this.pieces = pieces;
    this.scores = scores;
    // The vocabulary has no duplicate pieces; should one repeat, the lowest id wins.
    pieces.forEach((p, i) => { if (!this.lookup.has(p)) this.lookup.set(p, i); });
    this.pieceBytes = pieces.map((p) => {
      const m = BYTE_PIECE.exec(p);
      return m ? Uint8Array.of(parseInt(m[1]!, 16)) : Buffer.from(p, "latin1");
    });
  }

  get vocabSize(): number {
    return this.pieces.length;
  }

  /**
   * Parses a tokenizer .bin. With `vocabSize` (the model header's), exactly that many tokens must be
   * present and nothing may follow; without it, tokens are read to the end of the file.
   */
  static fromBytes(bytes: Uint8Array, source = "<buffer>", vocabSize?: number): Llama2cTokenizer {
    const bad = (problem: string) => new Llama2cTokenizerError(source, problem);
    if (vocabSize !== undefined && !(Number.isSafeInteger(vocabSize) && vocabSize > BYTE_OFFSET + 255)) {
      throw bad(`vocab size ${vocabSize} from the caller is invalid; expected an integer >= ${BYTE_OFFSET + 256} (3 special ids + 256 byte tokens)`);
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.byteLength < 4) throw bad(`file is ${bytes.byteLength} bytes; expected at least a 4-byte int32 max_token_length`);
    const maxTokenLength = view.getInt32(0, true);
    if (maxTokenLength <= 0) throw bad(`max_token_length is ${maxTokenLength}; expected a positive int32`);
    const pieces: string[] = [];
    const scores: number[] = [];
    let off = 4;
    while (vocabSize === undefined ? off < bytes.byteLength : pieces.length < vocabSize) {
      const i = pieces.length;
      const expectedTotal = vocabSize === undefined ? "" : ` of ${vocabSize}`;
      if (off + 4 > bytes.byteLength) throw bad(`truncated at token ${i}${expectedTotal}: expected 4-byte float32 score at byte ${off}`);
      const score = view.getFloat32(off, true);
      if (off + 8 > bytes.byteLength) throw bad(`truncated at token ${i}${expectedTotal}: expected 4-byte int32 length at byte ${off + 4}`);
      const len = view.getInt32(off + 4, true);
      if (len < 0 || len > maxTokenLength) throw bad(`token ${i} has length ${len} at byte ${off + 4}; expected 0..${maxTokenLength} (max_token_length)`);
      off += 8;
      if (off + len > bytes.byteLength) throw bad(`truncated at token ${i}${expectedTotal}: expected ${len} piece bytes at byte ${off}, file has ${bytes.byteLength - off}`);
      pieces.push(Buffer.from(bytes.buffer, bytes.byteOffset + off, len).toString("latin1"));
      scores.push(score);
      off += len;
    }
    if (off < bytes.byteLength) {
      throw bad(`${bytes.byteLength - off} trailing bytes after ${vocabSize} tokens; expected the file to end there (is this the tokenizer of this model?)`);
    }
    if (pieces.length < BYTE_OFFSET + 256) {
      throw bad(`has ${pieces.length} tokens; expected at least ${BYTE_OFFSET + 256} (<unk>, <s>, </s> and 256 byte tokens)`);
    }
    return new Llama2cTokenizer(source, maxTokenLength, pieces, Float32Array.from(scores));
  }

  /** The tokenizer .bin (the inverse of fromBytes): max_token_length, then (score, length, bytes) per token. */
  toBytes(): Uint8Array {
    const size = 4 + this.pieces.reduce((s, p) => s + 8 + p.length, 0);
    const out = new Uint8Array(size), view = new DataView(out.buffer);
    view.setInt32(0, this.maxTokenLength, true);
    let off = 4;
    this.pieces.forEach((p, i) => {
      view.setFloat32(off, this.scores[i]!, true);
      view.setInt32(off + 4, p.length, true);
      out.set(Buffer.from(p, "latin1"), off + 8);
      off += 8 + p.length;
    });
    return out;
  }

  /**
   * Reads a tokenizer file: a regular file no larger than its vocabulary can fill (vocabSize tokens of
   * at most max_token_length bytes each) or, without vocabSize, MAX_TOKENIZER_BYTES.
   */
  static async load(file: string, vocabSize?: number): Promise<Llama2cTokenizer> {
    let opened: { fd: number; size: number };
    try {
      opened = openRegular(file);
    } catch (e) {
      const err = e as FileReadError;
      throw new Llama2cTokenizerError(file, err.code ? `cannot read the tokenizer file (${err.code})` : err.problem);
    }
    const { fd, size } = opened;
    try {
      const head = readAt(fd, Math.min(4, size), 0);
      const maxLen = head.length === 4 ? new DataView(head.buffer).getInt32(0, true) : 0;
      const limit = vocabSize !== undefined && maxLen > 0 ? 4 + vocabSize * (8 + maxLen) : MAX_TOKENIZER_BYTES;
      if (size > limit) {
        const why = limit === MAX_TOKENIZER_BYTES ? `the ${formatBytes(limit)} limit for tokenizer files` : `${limit} bytes (${vocabSize} tokens of at most max_token_length ${maxLen} bytes)`;
        throw new Llama2cTokenizerError(file, `is ${formatBytes(size)} (${size} bytes); expected at most ${why}`);
      }
      return Llama2cTokenizer.fromBytes(readAt(fd, size, 0), file, vocabSize);
    } finally {
      closeSync(fd);
    }
  }

  /** run.c `encode`: BOS?, dummy prefix " ", code points with byte fallback, greedy best-score merges, EOS?. */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    // run.c puts BOS in the list before the merge loop, so the same is done here.
    const tokens: number[] = opts.bos ? [BOS] : [];
    // run.c: add_dummy_prefix, but only if text != ""
    if (text.length > 0) {
      const space = this.lookup.get(" ");
      if (space === undefined) throw new Llama2cTokenizerError(this.source, 'no " " (▁) piece for the dummy prefix; expected a SentencePiece vocabulary');
      tokens.push(space);
    }
    // run.c splits the UTF-8 bytes into code points (a lead byte and up to 3 continuation bytes)
    // and looks each one up; a miss falls back to one <0xNN> token per byte.
    const bytes = Buffer.from(text, "utf8");
    for (let start = 0; start < bytes.length;) {
      let end = start + 1;
      while (end < bytes.length && (bytes[end]! & 0xc0) === 0x80 && end - start < 4) end++;
      const id = this.lookup.get(bytes.toString("latin1", start, end));
      if (id !== undefined) tokens.push(id);
      else for (let k = start; k < end; k++) tokens.push(bytes[k]! + BYTE_OFFSET);
      start = end;
    }
    const merged = this.merge(tokens);
    if (opts.eos) merged.push(EOS);
    return merged;
  }

  /**
   * run.c's merge loop (repeatedly merge the adjacent pair whose concatenation is a piece with the
   * highest score, leftmost on ties) in O(n log n): a heap of candidate pairs over a linked list,
   * with stale candidates detected by per-position version counters.
   */
  private merge(tokens: number[]): number[] {
    const n = tokens.length;
    const tok = Int32Array.from(tokens);
    const next = Int32Array.from({ length: n }, (_, i) => (i + 1 < n ? i + 1 : -1));
    const prev = Int32Array.from({ length: n }, (_, i) => i - 1);
    const version = new Int32Array(n);
    const heap = new CandidateHeap();
    const consider = (left: number, right: number) => {
      if (left < 0 || right < 0) return;
      const id = this.lookup.get(this.pieces[tok[left]!]! + this.pieces[tok[right]!]!);
      if (id === undefined || !(this.scores[id]! > MIN_SCORE)) return;
      heap.push({ score: this.scores[id]!, left, right, id, vl: version[left]!, vr: version[right]! });
    };
    for (let i = 0; i + 1 < n; i++) consider(i, i + 1);
    while (heap.size > 0) {
      const c = heap.pop();
      if (next[c.left] !== c.right || version[c.left] !== c.vl || version[c.right] !== c.vr) continue;
      tok[c.left] = c.id;
      version[c.left]!++;
      version[c.right]!++; // the right position leaves the list
      const after = next[c.right]!;
      next[c.left] = after;
      if (after >= 0) prev[after] = c.left;
      consider(prev[c.left]!, c.left);
      consider(c.left, after);
    }
    const out: number[] = [];
    for (let i = n > 0 ? 0 : -1; i >= 0; i = next[i]!) out.push(tok[i]!);
    return out;
  }

  /**
   * run.c `decode`, applied to each id with the id before it: after BOS a leading space is stripped,
   * <0xNN> pieces are raw bytes. BOS and EOS themselves print nothing (run.c stops at BOS instead of
   * printing it). The bytes are decoded as UTF-8, invalid sequences becoming U+FFFD.
   */
  decode(ids: number[]): string {
    const chunks: Uint8Array[] = [];
    ids.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new Llama2cTokenizerError(this.source, `decode: id ${id} at position ${i} is out of range; expected an integer in [0, ${this.vocabSize})`);
      }
      if (id === BOS || id === EOS) return;
      const bytes = this.pieceBytes[id]!;
      const stripSpace = i > 0 && ids[i - 1] === BOS && this.pieces[id]!.startsWith(" ");
      chunks.push(stripSpace ? bytes.subarray(1) : bytes);
    });
    return utf8.decode(Buffer.concat(chunks));
  }
}

// ignoreBOM: a leading U+FEFF is text like any other, not a byte-order mark to drop.
const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });
