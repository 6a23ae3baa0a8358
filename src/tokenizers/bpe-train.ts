// Byte-level BPE training (Sennrich et al. 2016, "Neural Machine Translation of Rare Words with Subword
// Units", §3.2, Algorithm 1; GPT-2's byte-level variant, Radford et al. 2019 §2.2) that writes a Hugging Face
// tokenizer.json of the GPT-2 kind. The bookkeeping follows HF tokenizers' BpeTrainer
// (tokenizers/src/models/bpe/trainer.rs, do_train): pair -> count, pair -> words holding it, and a max-heap
// with lazy deletion, so a merge only touches the words that contain its pair.
//
// Vocabulary ids: the special tokens get 0..k-1 (as BpeTrainer's add_special_tokens), then the 256 byte
// symbols sorted by code point, which is also the order of GPT-2's bytes_to_unicode table and of GPT-2's
// own ids 0..255; then each merge's new token, in merge order. A merged string is always new: every
// occurrence of a token was built exactly as its string alone is (no merge crosses a token's edge), so
// no two merges spell one string. BpeTrainer would reuse the id of a special token spelled by a merge
// (e.g. a special "Ġa" and the text " a"); here such a pair is never merged, since the decoder would
// print the special's text instead of the bytes.
//
// Tie-break: the most frequent pair wins; among equal counts, the pair with the smallest (left id, right
// id), compared left id first. That is the order of BpeTrainer's `Merge` (trainer.rs `impl Ord for Merge`).
import { brief } from "../io/read.js";
import { BYTE_SYMBOLS, GPT2_SPLIT, splitOnSpecialTokens, specialTokenSplitter } from "./byte-level.js";

export interface BpeTrainProgress {
  /** Merges done so far. */
  merges: number;
  /** Vocabulary size so far (special tokens + 256 byte symbols + merged tokens). */
  vocabSize: number;
  /** The vocabSize asked for. */
  target: number;
}

export interface TrainBpeOptions {
  /** Size of the final vocabulary, special tokens and the 256 byte symbols included. */
  vocabSize: number;
  /** Tokens given ids 0..k-1; the training text is split on them, so they are never merged into. */
  specialTokens?: string[];
  /** A pair seen fewer times than this is never merged (HF's min_frequency; 0 and 1 both mean any pair). */
  minFrequency?: number;
  /** Called after every merge. */
  onProgress?: (p: BpeTrainProgress) => void;
}

/** The tokenizer.json written by HF tokenizers (>= 0.20) for a byte-level BPE, as GPT-2's. */
export interface ByteLevelBpeTokenizerJSON {
  version: "1.0";
  truncation: null;
  padding: null;
  added_tokens: {
    id: number; content: string; single_word: false; lstrip: false; rstrip: false; normalized: false; special: true;
  }[];
  normalizer: null;
  pre_tokenizer: { type: "ByteLevel"; add_prefix_space: false; trim_offsets: true; use_regex: true };
  post_processor: { type: "ByteLevel"; add_prefix_space: false; trim_offsets: false; use_regex: true };
  decoder: { type: "ByteLevel"; add_prefix_space: false; trim_offsets: true; use_regex: true };
  model: {
    type: "BPE"; dropout: null; unk_token: null; continuing_subword_prefix: null; end_of_word_suffix: null;
    fuse_unk: false; byte_fallback: false; ignore_merges: false;
    vocab: Record<string, number>;
    /** [left, right] pairs in merge order: HF >= 0.20 writes this form (bpe/serialization.rs) and reads "a b" too. */
    merges: [string, string][];
  };
}

export interface TrainedBpe {
  /** Token string -> id, iterated in id order. */
  vocab: Map<string, number>;
  /** The merges in the order they were learned, as [left, right] token strings (merge i made id k + 256 + i). */
  merges: [string, string][];
  tokenizerJson: ByteLevelBpeTokenizerJSON;
}

export class BpeTrainError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BpeTrainError";
  }
}

// Pair keys are left * vocabSize + right, exact in a double while vocabSize^2 < 2^53.
const MAX_VOCAB = 1 << 24;

interface Options { vocabSize: number; specials: string[]; minFrequency: number; onProgress?: (p: BpeTrainProgress) => void }

function checkOptions(opts: unknown): Options {
  const bad = (m: string) => new BpeTrainError(`trainBpe: ${m}`);
  if (typeof opts !== "object" || opts === null) throw bad(`options is ${brief(opts)}; expected { vocabSize, specialTokens?, minFrequency?, onProgress? }`);
  const { vocabSize, specialTokens = [], minFrequency = 0, onProgress } = opts as Record<string, unknown>;
  if (!Array.isArray(specialTokens)) throw bad(`specialTokens is ${brief(specialTokens)}; expected an array of strings`);
  const symbols = new Set(BYTE_SYMBOLS);
  specialTokens.forEach((t: unknown, i) => {
    if (typeof t !== "string" || t === "") throw bad(`specialTokens[${i}] is ${brief(t)}; expected a non-empty string`);
    if (specialTokens.indexOf(t) !== i) throw bad(`specialTokens[${i}] ${brief(t)} repeats specialTokens[${specialTokens.indexOf(t)}]; expected distinct tokens`);
    if (symbols.has(t)) throw bad(`specialTokens[${i}] ${brief(t)} is one of the 256 byte symbols; expected a token of its own`);
  });
  const least = 256 + specialTokens.length;
  if (typeof vocabSize !== "number" || !Number.isInteger(vocabSize) || vocabSize < least || vocabSize > MAX_VOCAB) {
    throw bad(`vocabSize is ${brief(vocabSize)}; expected an integer in [${least}, ${MAX_VOCAB}] ` +
      `(256 byte symbols + ${specialTokens.length} special tokens at least)`);
  }
  if (typeof minFrequency !== "number" || !Number.isInteger(minFrequency) || minFrequency < 0) {
    throw bad(`minFrequency is ${brief(minFrequency)}; expected an integer >= 0`);
  }
  if (onProgress !== undefined && typeof onProgress !== "function") throw bad(`onProgress is ${brief(onProgress)}; expected a function`);
  return { vocabSize, specials: specialTokens as string[], minFrequency, onProgress: onProgress as Options["onProgress"] };
}

/** Pre-token -> number of occurrences, the text first cut on the special tokens, then by GPT-2's regex. */
function countWords(texts: Iterable<string> | string, specials: string[]): Map<string, number> {
  if (typeof texts !== "string" && (texts === null || typeof (texts as Iterable<string>)[Symbol.iterator] !== "function")) {
    throw new BpeTrainError(`trainBpe: texts is ${brief(texts)}; expected a string or an iterable of strings`);
  }
  const splitter = specialTokenSplitter(specials);
  const counts = new Map<string, number>();
  let i = 0;
  for (const text of typeof texts === "string" ? [texts] : texts) {
    if (typeof text !== "string") throw new BpeTrainError(`trainBpe: texts[${i}] is ${brief(text)}; expected a string`);
    for (const piece of splitOnSpecialTokens(text, splitter)) {
      for (const m of piece.matchAll(GPT2_SPLIT)) counts.set(m[0], (counts.get(m[0]) ?? 0) + 1);
    }
    i++;
  }
  return counts;
}

/** Max-heap of (count, pair key): higher count first, then smaller key, i.e. smaller (left, right). */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.keys.length;
  }

  private above(i: number, j: number): boolean {
    const ci = this.counts[i]!, cj = this.counts[j]!;
    return ci > cj || (ci === cj && this.keys[i]! < this.keys[j]!);
  }

  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j]!, this.counts[i]!];
    [this.keys[i], this.keys[j]] = [this.keys[j]!, this.keys[i]!];
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    for (let i = this.keys.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (!this.above(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  /** Removes the top entry and returns it as [count, key]. */
  pop(): [number, number] {
    const top: [number, number] = [this.counts[0]!, this.keys[0]!];
    const lastCount = this.counts.pop()!, lastKey = this.keys.pop()!;
    const n = this.keys.length;
    if (n > 0) {
      this.counts[0] = lastCount;
      this.keys[0] = lastKey;
      for (let i = 0; ;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < n && this.above(l, m)) m = l;
        if (r < n && this.above(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }
}

/** Replaces every (a, b) in w by c, left to right (a run "a a a" of pair (a, a) gives "c a"), as BPE applies a merge. */
function mergeWord(w: number[], a: number, b: number, c: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < w.length; i++) {
    if (w[i] === a && i + 1 < w.length && w[i + 1] === b) {
      out.push(c);
      i++;
    } else {
      out.push(w[i]!);
    }
  }
  return out;
}

function hasPair(w: number[], a: number, b: number): boolean {
  for (let i = 0; i + 1 < w.length; i++) if (w[i] === a && w[i + 1] === b) return true;
  return false;
}

/**
 * Trains a byte-level BPE on `texts` (one string, or one string per document: pre-tokens never span two).
 * Returns the vocabulary, the merges and the HF tokenizer.json (GPT-2's pre-tokenizer, decoder and
 * post-processor; the special tokens as added tokens). Training stops at vocabSize, or earlier when no
 * pair is left or the most frequent one is rarer than minFrequency.
 */
export function trainBpe(texts: Iterable<string> | string, options: TrainBpeOptions): TrainedBpe {
  const { vocabSize: V, specials, minFrequency, onProgress } = checkOptions(options);
  const tokens: string[] = [...specials, ...[...BYTE_SYMBOLS].sort((x, y) => x.codePointAt(0)! - y.codePointAt(0)!)];
  const byteId = BYTE_SYMBOLS.map((s) => tokens.indexOf(s));
  const specialSet = new Set(specials);

  const wordCounts = countWords(texts, specials);
  const encoder = new TextEncoder();
  const words: number[][] = [], freq: number[] = [];
  for (const [word, n] of wordCounts) {
    words.push(Array.from(encoder.encode(word), (byte) => byteId[byte]!));
    freq.push(n);
  }

  const pairCount = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  words.forEach((w, wi) => {
    for (let i = 0; i + 1 < w.length; i++) {
      const key = w[i]! * V + w[i + 1]!;
      pairCount.set(key, (pairCount.get(key) ?? 0) + freq[wi]!);
      let s = where.get(key);
      if (!s) where.set(key, (s = new Set()));
      s.add(wi);
    }
  });
  const heap = new PairHeap();
  for (const [key, n] of pairCount) heap.push(n, key);

  const merges: [string, string][] = [];
  while (tokens.length < V && heap.size > 0) {
    const [n, key] = heap.pop();
    if (n !== (pairCount.get(key) ?? 0)) continue; // stale: the pair's current count was pushed when it changed
    if (n < minFrequency) break;
    const a = Math.floor(key / V), b = key - a * V;
    const merged = tokens[a]! + tokens[b]!;
    if (specialSet.has(merged)) continue;
    const c = tokens.length;
    tokens.push(merged);
    merges.push([tokens[a]!, tokens[b]!]);

    // Net count change per pair over the words holding (a, b): their old pairs out, their new pairs in.
    const delta = new Map<number, number>();
    const add = (k: number, d: number) => delta.set(k, (delta.get(k) ?? 0) + d);
    for (const wi of where.get(key)!) {
      const w = words[wi]!;
      if (!hasPair(w, a, b)) continue; // an earlier merge took this occurrence
      const f = freq[wi]!;
      for (let i = 0; i + 1 < w.length; i++) add(w[i]! * V + w[i + 1]!, -f);
      const nw = mergeWord(w, a, b, c);
      for (let i = 0; i + 1 < nw.length; i++) {
        const k = nw[i]! * V + nw[i + 1]!;
        add(k, f);
        // Pairs without c were already in w, so this word is already in their sets.
        if (nw[i] === c || nw[i + 1] === c) {
          let s = where.get(k);
          if (!s) where.set(k, (s = new Set()));
          s.add(wi);
        }
      }
      words[wi] = nw;
    }
    where.delete(key);
    for (const [k, d] of delta) {
      if (d === 0) continue;
      const now = (pairCount.get(k) ?? 0) + d;
      if (now > 0) {
        pairCount.set(k, now);
        heap.push(now, k);
      } else {
        pairCount.delete(k);
      }
    }
    onProgress?.({ merges: merges.length, vocabSize: tokens.length, target: V });
  }

  const vocab = new Map(tokens.map((t, i) => [t, i]));
  return { vocab, merges, tokenizerJson: byteLevelBpeJson(vocab, merges, specials) };
}

/** The HF tokenizer.json of a byte-level BPE (field order and defaults as HF tokenizers serializes them). */
export function byteLevelBpeJson(vocab: Map<string, number>, merges: [string, string][], specialTokens: string[]): ByteLevelBpeTokenizerJSON {
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: specialTokens.map((content) => ({
      id: vocab.get(content)!, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
    })),
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: true },
    decoder: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false,
      // fromEntries defines own properties, so a token such as "__proto__" stays a key.
      vocab: Object.fromEntries(vocab),
      merges: merges.map(([l, r]) => [l, r]),
    },
  };
}
