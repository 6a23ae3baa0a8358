// The encoding pipeline of a BPE tokenizer.json, written out for speed: added-token extraction, the
// normalizer (the library's component), the ByteLevel pre-tokenizer or none, and the BPE model.
// It follows HF tokenizers (Rust): AddedVocabulary::extract_and_normalize (added_vocabulary.rs),
// pre_tokenizers/byte_level.rs, and BPE::merge_word + Word::merge_all (models/bpe/model.rs, word.rs).
// @huggingface/tokenizers runs the same pipeline several times slower (a Map-based LRU cache touched
// per word, JSON.stringify'd merge keys) and splits on ECMAScript's \s instead of Oniguruma's (below).
import { BYTE_SYMBOLS, GPT2_SPLIT, specialTokenSplitter } from "./byte-level.js";

/** The BPE model of a tokenizer.json, checked and resolved to ids. */
export interface BpeModelSpec {
  vocab: ReadonlyMap<string, number>;
  /** [left, right] in rank order; both parts and their concatenation are vocabulary tokens. */
  merges: readonly (readonly [string, string])[];
  unkId: number | null;
  fuseUnk: boolean;
  byteFallback: boolean;
  /** A pre-token that is itself a vocabulary token is not merged (Llama 3's ignore_merges). */
  ignoreMerges: boolean;
}

export interface BpePipelineSpec {
  model: BpeModelSpec;
  /** Added tokens by content; `normalized` ones are matched after normalization (on the normalized text). */
  added: readonly { content: string; id: number; normalized: boolean }[];
  normalize: ((text: string) => string) | null;
  /** The ByteLevel pre-tokenizer's options, or null for no pre-tokenizer (the whole section is one word). */
  byteLevel: { addPrefixSpace: boolean; useRegex: boolean } | null;
}

/** byte_fallback's token for a byte (model.rs: format!("<{b:#04X}>")). */
const byteToken = (b: number) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;

/** (left id, right id) -> merge rank, open addressing on typed arrays (no per-lookup allocation). */
class PairRanks {
  private readonly left: Int32Array;
  private readonly right: Int32Array;
  private readonly rank: Int32Array;
  private readonly mask: number;

  constructor(n: number) {
    let cap = 16;
    while (cap < 2 * n) cap *= 2;
    this.left = new Int32Array(cap).fill(-1);
    this.right = new Int32Array(cap);
    this.rank = new Int32Array(cap);
    this.mask = cap - 1;
  }

  private slot(l: number, r: number): number {
    let i = (Math.imul(l, 0x9e3779b1) ^ Math.imul(r + 0x632be5ab, 0x85ebca77)) & this.mask;
    while (this.left[i] !== -1 && (this.left[i] !== l || this.right[i] !== r)) i = (i + 1) & this.mask;
    return i;
  }

  /** A later duplicate replaces the earlier rank, as HF's merge map is collected. */
  set(l: number, r: number, rank: number): void {
    const i = this.slot(l, r);
    this.left[i] = l;
    this.right[i] = r;
    this.rank[i] = rank;
  }

  get(l: number, r: number): number {
    const i = this.slot(l, r);
    return this.left[i] === -1 ? -1 : this.rank[i]!;
  }
}

/** A binary min-heap of numbers (merge candidates packed as rank * 2^32 + position). */
class MinHeap {
  private readonly a: number[] = [];
  get size(): number { return this.a.length; }
  push(x: number): void {
    const a = this.a;
    let i = a.push(x) - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]! <= x) break;
      a[i] = a[p]!;
      i = p;
    }
    a[i] = x;
  }
  pop(): number {
    const a = this.a, top = a[0]!, last = a.pop()!;
    const n = a.length;
    if (n === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const c = l + 1 < n && a[l + 1]! < a[l]! ? l + 1 : l;
      if (a[c]! >= last) break;
      a[i] = a[c]!;
      i = c;
    }
    a[i] = last;
    return top;
  }
}

const POS = 2 ** 32;
const CACHE_LIMIT = 50_000;
/** Longer words (a whole line without pre-tokenizer) are not cached, as HF's MAX_LENGTH. */
const CACHE_MAX_WORD = 256;

export class BpePipeline {
  private readonly ranks: PairRanks;
  private readonly mergedId: Int32Array;
  private readonly byteIds: (number | undefined)[];
  private readonly rawSplit: RegExp | null;
  private readonly normalizedSplit: RegExp | null;
  private readonly addedIds = new Map<string, number>();
  private readonly normalizedAddedIds = new Map<string, number>();
  /** Pre-token -> ids (HF caches words the same way, model.rs tokenize_with_cache). */
  private readonly cache = new Map<string, number[]>();
  private readonly utf8 = new TextEncoder();

  constructor(private readonly spec: BpePipelineSpec) {
    const { vocab, merges } = spec.model;
    this.ranks = new PairRanks(merges.length);
    this.mergedId = new Int32Array(merges.length);
    merges.forEach(([l, r], rank) => {
      this.ranks.set(vocab.get(l)!, vocab.get(r)!, rank);
      this.mergedId[rank] = vocab.get(l + r)!;
    });
    this.byteIds = Array.from({ length: 256 }, (_, b) => vocab.get(byteToken(b)));
    // Non-normalized tokens are cut from the raw text, the others from the normalized sections.
    for (const t of spec.added) {
      if (t.normalized && spec.normalize) this.normalizedAddedIds.set(spec.normalize(t.content), t.id);
      else this.addedIds.set(t.content, t.id);
    }
    this.rawSplit = specialTokenSplitter([...this.addedIds.keys()].filter((s) => s !== ""));
    this.normalizedSplit = specialTokenSplitter([...this.normalizedAddedIds.keys()].filter((s) => s !== ""));
  }

  encode(text: string): number[] {
    const out: number[] = [];
    this.eachPiece(text, this.rawSplit, this.addedIds, out, (section) => {
      const normalized = this.spec.normalize ? this.spec.normalize(section) : section;
      this.eachPiece(normalized, this.normalizedSplit, this.normalizedAddedIds, out, (piece) => this.preTokenize(piece, out));
    });
    return out;
  }

  /** Calls `onText` for each non-empty stretch between added tokens, pushing the tokens' ids between. */
  private eachPiece(text: string, split: RegExp | null, ids: Map<string, number>, out: number[], onText: (s: string) => void): void {
    let at = 0;
    if (split) {
      for (const m of text.matchAll(split)) {
        if (m.index > at) onText(text.slice(at, m.index));
        out.push(ids.get(m[0])!);
        at = m.index + m[0].length;
      }
    }
    if (at < text.length) onText(at === 0 ? text : text.slice(at));
  }

  private preTokenize(piece: string, out: number[]): void {
    const bl = this.spec.byteLevel;
    if (!bl) return this.word(piece, false, out);
    const s = bl.addPrefixSpace && !piece.startsWith(" ") ? ` ${piece}` : piece;
    if (!bl.useRegex) return this.word(s, true, out);
    for (const m of s.matchAll(GPT2_SPLIT)) this.word(m[0], true, out);
  }

  /** One pre-token: its ids from the cache, or merged (byteLevel: the text's UTF-8 bytes are the symbols). */
  private word(w: string, byteLevel: boolean, out: number[]): void {
    let ids = this.cache.get(w);
    if (ids === undefined) {
      const s = byteLevel ? this.symbols(w) : w;
      const direct = this.spec.model.ignoreMerges ? this.spec.model.vocab.get(s) : undefined;
      ids = direct !== undefined ? [direct] : this.merge(this.initial(s));
      if (w.length < CACHE_MAX_WORD) {
        if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
        this.cache.set(w, ids);
      }
    }
    for (const id of ids) out.push(id);
  }

  private symbols(w: string): string {
    let s = "";
    for (const b of this.utf8.encode(w)) s += BYTE_SYMBOLS[b];
    return s;
  }

  /** merge_word's start: one symbol per character, else its <0xNN> bytes, else <unk> (consecutive ones fused). */
  private initial(w: string): number[] {
    const { vocab, unkId, fuseUnk, byteFallback } = this.spec.model;
    const ids: number[] = [];
    let unkPending = false;
    for (const ch of w) {
      const id = vocab.get(ch);
      if (id !== undefined) {
        if (unkPending) ids.push(unkId!);
        unkPending = false;
        ids.push(id);
        continue;
      }
      if (byteFallback) {
        const bytes = Array.from(this.utf8.encode(ch), (b) => this.byteIds[b]);
        if (bytes.every((b) => b !== undefined)) {
          for (const b of bytes) ids.push(b!);
          continue;
        }
      }
      if (unkId === null) continue; // no <unk>: HF drops the character
      if (unkPending && !fuseUnk) ids.push(unkId);
      unkPending = true;
    }
    if (unkPending) ids.push(unkId!);
    return ids;
  }

  /**
   * Word::merge_all: repeatedly merge the adjacent pair of lowest rank, the leftmost among equals,
   * over a linked list with a heap of candidates; a popped candidate whose pair changed is dropped.
   */
  private merge(ids: number[]): number[] {
    const n = ids.length;
    if (n < 2) return ids;
    const sym = Int32Array.from(ids);
    const next = new Int32Array(n), prev = new Int32Array(n);
    for (let i = 0; i < n; i++) { next[i] = i + 1 < n ? i + 1 : -1; prev[i] = i - 1; }
    const heap = new MinHeap();
    const consider = (i: number) => {
      if (i < 0 || next[i]! < 0) return;
      const j = next[i]!;
      const r = this.ranks.get(sym[i]!, sym[j]!);
      if (r >= 0) heap.push(r * POS + i);
    };
    for (let i = 0; i + 1 < n; i++) consider(i);
    while (heap.size > 0) {
      const key = heap.pop();
      const rank = Math.floor(key / POS), i = key - rank * POS;
      const j = next[i]!;
      if (sym[i] === -1 || j < 0 || this.ranks.get(sym[i]!, sym[j]!) !== rank) continue;
      sym[i] = this.mergedId[rank]!;
      sym[j] = -1;
      next[i] = next[j]!;
      if (next[i]! >= 0) prev[next[i]!] = i;
      consider(prev[i]!);
      consider(i);
    }
    const out: number[] = [];
    for (let i = 0; i >= 0; i = next[i]!) out.push(sym[i]!);
    return out;
  }
}
