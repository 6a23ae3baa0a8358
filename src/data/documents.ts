// Document datasets and the three ways to batch them for next-token training, after lmms-engine's
// packing / use_rmpad (the project seed) and the varlen form of FlashAttention-2 (Dao 2023, §3.1 and
// flash_attn_varlen_func's cu_seqlens):
// - padded: one document per row, right-padded; the padding's targets are IGNORE_INDEX;
// - packed: documents packed first-fit decreasing into rows of a packing length, with cuSeqlens and
//   positions restarting at 0 per document; only a row's tail is padding;
// - unpadded (rmpad): the batch's documents end to end in one [1, total] row, no padding at all.
// A document of n tokens gives n - 1 (input, target) pairs, d[i] -> d[i + 1]: no target crosses a
// document boundary, so the three layouts of the same documents hold the same pairs and give the
// same token-sum loss.

import { RandomGenerator, type RngState } from "../tensor/rng.js";
import { Tensor } from "../tensor/tensor.js";
import { trackStorage } from "../tensor/memory.js";
import type { Tokenizer } from "../tokenizers/tokenizer.js";
import type { Batch, Sampler } from "./batches.js";

/** Target of padding (crossEntropy's default ignoreIndex, torch's -100). */
export const IGNORE_INDEX = -100;
/** Input id at padding positions: any valid id (its outputs never reach a loss). */
const PAD_ID = 0;
/** TinyStories' separator between stories (its train/valid .txt files). */
export const TINYSTORIES_SEPARATOR = "<|endoftext|>";

export const BATCHINGS = ["padded", "packed", "unpadded"] as const;
export type Batching = (typeof BATCHINGS)[number];

export interface DocumentTextOptions {
  /** Text between documents (default TinyStories' "<|endoftext|>"). */
  separator?: string;
  /** Prepend BOS (default: when the tokenizer has one, as llama2.c's tinystories.py encodes each story). */
  bos?: boolean;
  /** Append EOS (default false: llama2.c appends none). */
  eos?: boolean;
  name?: string;
}

export interface LengthStats { min: number; median: number; max: number; total: number }

export class DocumentDataset {
  constructor(readonly docs: readonly Int32Array[], readonly name = "documents") {
    if (!docs.length) throw new RangeError(`${name}: no documents`);
    docs.forEach((d, i) => {
      if (!(d instanceof Int32Array) || d.length < 2) throw new RangeError(`${name}: document ${i} must be an Int32Array of at least 2 tokens (one input and its next-token target), got ${d instanceof Int32Array ? `${d.length} tokens` : typeof d}`);
    });
  }

  /**
   * Documents of a text split at `separator`, each stripped of surrounding whitespace (llama2.c's
   * tinystories.py strips each story) and encoded; empty pieces and one-token documents (no target)
   * are dropped. A text with no document left is refused.
   */
  static fromText(text: string, tok: Tokenizer, o: DocumentTextOptions = {}): DocumentDataset {
    const { separator = TINYSTORIES_SEPARATOR, bos = tok.bosId !== undefined, eos = false, name = "documents" } = o;
    if (!separator) throw new RangeError(`${name}: the document separator must be a non-empty string`);
    const docs: Int32Array[] = [];
    for (const piece of text.split(separator)) {
      const s = piece.trim();
      if (!s) continue;
      const ids = tok.encode(s, { bos, eos });
      if (ids.length >= 2) docs.push(Int32Array.from(ids));
    }
    if (!docs.length) throw new RangeError(`${name}: no documents with at least 2 tokens (text of ${text.length} characters split at ${JSON.stringify(separator)})`);
    return new DocumentDataset(docs, name);
  }

  get length(): number { return this.docs.length; }

  /** Document lengths in tokens. */
  lengthStats(): LengthStats {
    const l = this.docs.map((d) => d.length).sort((a, b) => a - b);
    const h = l.length >> 1;
    return { min: l[0], median: l.length % 2 ? l[h] : (l[h - 1] + l[h]) / 2, max: l[l.length - 1], total: l.reduce((a, b) => a + b, 0) };
  }

  /** The first (1 - valFraction) of the documents train, the rest validate (at least one each). */
  split(valFraction: number): { train: DocumentDataset; val: DocumentDataset } {
    if (!(valFraction > 0 && valFraction < 1)) throw new RangeError(`${this.name}.split: valFraction must be in (0, 1), got ${valFraction}`);
    if (this.docs.length < 2) throw new RangeError(`${this.name}.split: needs at least 2 documents, has ${this.docs.length}`);
    const n = Math.min(Math.max(Math.round(this.docs.length * (1 - valFraction)), 1), this.docs.length - 1);
    return {
      train: new DocumentDataset(this.docs.slice(0, n), `${this.name} (train split)`),
      val: new DocumentDataset(this.docs.slice(n), `${this.name} (val split)`),
    };
  }
}

/** Input positions of a document: all tokens but the last (which has no next token). */
const inputLen = (d: Int32Array) => d.length - 1;

function longest(docs: readonly Int32Array[]): number {
  let m = 0;
  for (const d of docs) m = Math.max(m, d.length);
  return m;
}

/** A row length below the longest document: one error naming both lengths. */
function tooShort(what: string, len: number, docs: readonly Int32Array[], where: string): RangeError {
  const n = longest(docs);
  return new RangeError(`${what} ${len} is below the longest document${where}: ${n} tokens, ${n - 1} input positions (its last token is only a target); use at least ${n - 1}`);
}

function tensors(x: Int32Array, y: Int32Array, rows: number): { x: Tensor; y: Tensor } {
  trackStorage(x);
  trackStorage(y);
  return { x: new Tensor(x, [rows, x.length / rows]), y: new Tensor(y, [rows, y.length / rows]) };
}

/** Writes document d's pairs at offset o of x / y. */
function put(x: Int32Array, y: Int32Array, d: Int32Array, o: number): void {
  x.set(d.subarray(0, d.length - 1), o);
  y.set(d.subarray(1), o);
}

/** Positions restarting at 0 at every cuSeqlens boundary. */
function segmentPositions(cu: Int32Array): Int32Array {
  const pos = new Int32Array(cu[cu.length - 1]);
  for (let s = 0; s + 1 < cu.length; s++) for (let t = cu[s]; t < cu[s + 1]; t++) pos[t] = t - cu[s];
  return pos;
}

/** Real (input, target) pairs of the documents. */
const pairCount = (docs: readonly Int32Array[]) => docs.reduce((s, d) => s + inputLen(d), 0);

function checkDocs(docs: readonly Int32Array[], what: string): void {
  if (!docs.length) throw new RangeError(`${what}: no documents`);
}

/** One document per row, right-padded to padTo (default: the longest in the batch); a causal mask
 * keeps real tokens from seeing the padding after them. */
export function padBatch(docs: readonly Int32Array[], padTo?: number): Batch {
  checkDocs(docs, "padBatch");
  const T = padTo ?? longest(docs) - 1;
  if (!Number.isSafeInteger(T) || docs.some((d) => inputLen(d) > T)) throw tooShort("padBatch: padTo", T, docs, " of the batch");
  const x = new Int32Array(docs.length * T).fill(PAD_ID), y = new Int32Array(docs.length * T).fill(IGNORE_INDEX);
  docs.forEach((d, r) => put(x, y, d, r * T));
  return { ...tensors(x, y, docs.length), tokens: pairCount(docs) };
}

/**
 * Documents packed first-fit decreasing (Johnson 1973; lmms-engine fills its buffer in arrival order
 * instead, which leaves more tail) into rows of packLen input positions. SeqContext's cuSeqlens is
 * shared by every batch row, so the rows go end to end as one [1, rows * packLen] row: each row's tail
 * padding is a segment of its own (no document crosses a row end), so attention is the same as R rows.
 */
export function packBatch(docs: readonly Int32Array[], packLen: number): Batch & { rows: number } {
  checkDocs(docs, "packBatch");
  if (!Number.isSafeInteger(packLen) || docs.some((d) => inputLen(d) > packLen)) throw tooShort("packBatch: packLen", packLen, docs, " of the batch");
  const order = docs.map((_, i) => i).sort((a, b) => inputLen(docs[b]) - inputLen(docs[a]) || a - b);
  const rows: number[][] = [], free: number[] = [];
  for (const i of order) {
    const n = inputLen(docs[i]);
    const r = free.findIndex((f) => f >= n);
    if (r >= 0) { rows[r].push(i); free[r] -= n; } else { rows.push([i]); free.push(packLen - n); }
  }
  const x = new Int32Array(rows.length * packLen).fill(PAD_ID), y = new Int32Array(rows.length * packLen).fill(IGNORE_INDEX);
  const cu = [0];
  rows.forEach((row, r) => {
    let o = r * packLen;
    for (const i of row) { put(x, y, docs[i], o); o += inputLen(docs[i]); cu.push(o); }
    if (free[r] > 0) cu.push((r + 1) * packLen);
  });
  const cuSeqlens = Int32Array.from(cu);
  return { ...tensors(x, y, 1), cuSeqlens, positions: segmentPositions(cuSeqlens), tokens: pairCount(docs), rows: rows.length };
}

/** rmpad: the documents end to end in one [1, total] row, no padding. */
export function unpadBatch(docs: readonly Int32Array[]): Batch {
  checkDocs(docs, "unpadBatch");
  const cu = new Int32Array(docs.length + 1);
  docs.forEach((d, i) => { cu[i + 1] = cu[i] + inputLen(d); });
  const x = new Int32Array(cu[docs.length]), y = new Int32Array(cu[docs.length]);
  docs.forEach((d, i) => put(x, y, d, cu[i]));
  return { ...tensors(x, y, 1), cuSeqlens: cu, positions: segmentPositions(cu), tokens: cu[docs.length] };
}

export interface DocumentBatcherOptions {
  batching: Batching;
  /** Documents per batch (the same documents whatever the batching). */
  docsPerBatch: number;
  /** packed: input positions per row (required); padded: a fixed row length (default: the batch's longest). */
  packLen?: number;
  seed?: number;
}

/**
 * Batches of docsPerBatch documents drawn without replacement from a reshuffled order each epoch.
 * The state is {seed, counter}, counter = documents drawn so far: epoch e's order is a Fisher-Yates
 * shuffle from the Philox stream at counter e * ceil(n / 4) (disjoint per epoch), so a state resumes
 * exactly and {seed, counter: 0} restarts the stream (what the trainer's loss estimates do).
 */
export class DocumentBatcher implements Sampler {
  private counter = 0;
  private seed: number;
  private readonly gen: RandomGenerator;
  private order: { epoch: number; perm: Int32Array } | null = null;

  constructor(readonly data: DocumentDataset, readonly opts: DocumentBatcherOptions) {
    const { batching, docsPerBatch, packLen, seed = 0 } = opts;
    if (!(BATCHINGS as readonly string[]).includes(batching)) throw new RangeError(`DocumentBatcher: batching must be ${BATCHINGS.map((b) => `"${b}"`).join(", ")}, got ${JSON.stringify(batching)}`);
    if (!Number.isSafeInteger(docsPerBatch) || docsPerBatch < 1) throw new RangeError(`DocumentBatcher: docsPerBatch must be a positive integer, got ${docsPerBatch}`);
    if (batching === "packed" && packLen === undefined) throw new RangeError("DocumentBatcher: packed batching needs packLen (input positions per row)");
    if (packLen !== undefined) {
      if (batching === "unpadded") throw new RangeError("DocumentBatcher: packLen applies to packed or padded batching, not unpadded");
      if (!Number.isSafeInteger(packLen) || packLen < longest(data.docs) - 1) throw tooShort(`DocumentBatcher: ${batching === "packed" ? "packing length" : "padded length"}`, packLen, data.docs, ` of ${data.name}`);
    }
    this.gen = new RandomGenerator(seed);
    this.seed = seed;
  }

  /** The next batch's documents. */
  nextDocs(): Int32Array[] {
    const n = this.data.length, out: Int32Array[] = [];
    for (let i = 0; i < this.opts.docsPerBatch; i++, this.counter++) {
      const epoch = Math.floor(this.counter / n);
      out.push(this.data.docs[this.permutation(epoch)[this.counter - epoch * n]]);
    }
    return out;
  }

  next(): Batch {
    const docs = this.nextDocs();
    const { batching, packLen } = this.opts;
    return batching === "packed" ? packBatch(docs, packLen!) : batching === "padded" ? padBatch(docs, packLen) : unpadBatch(docs);
  }

  getState(): RngState { return { seed: this.seed, counter: this.counter }; }

  setState(s: RngState): void {
    this.gen.setState(s); // validates
    this.seed = s.seed;
    this.counter = s.counter;
    this.order = null;
  }

  private permutation(epoch: number): Int32Array {
    if (this.order?.epoch === epoch) return this.order.perm;
    const n = this.data.length;
    this.gen.setState({ seed: this.seed, counter: epoch * Math.ceil(n / 4) });
    const u = new Uint32Array(n);
    this.gen.uint32(u);
    const perm = Int32Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor((u[i] / 4294967296) * (i + 1));
      [perm[i], perm[j]] = [perm[j], perm[i]];
    }
    this.order = { epoch, perm };
    return perm;
  }
}
