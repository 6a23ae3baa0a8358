// Reader for llama2.c legacy "version 0" checkpoints (karpathy/llama2.c export.py `legacy_export`,
// read by run.c `read_checkpoint` / `memory_map_weights`). Layout, all little-endian:
//   7 int32 header: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
//   (a negative vocab_size means the classifier is not shared with the embedding), then fp32:
//   tok_embeddings [V,D], attention_norm [L,D], wq [L,D,D], wk [L,KV,D], wv [L,KV,D], wo [L,D,D],
//   ffn_norm [L,D], w1 [L,H,D], w2 [L,D,H], w3 [L,H,D], norm [D],
//   freq_cis_real and freq_cis_imag [seq_len, head_size/2] (unused: RoPE is recomputed),
//   output [V,D] only when not shared. KV = dim * n_kv_heads / n_heads. Matrices are [out, in].
import { closeSync } from "node:fs";
import { EXPECTED_FINITE, firstNonFinite } from "./finite.js";
import { formatBytes, maxModelBytes, openRegular, readAt, type FileReadError } from "./read.js";

export interface Llama2cConfig {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  seqLen: number;
  /** true when the output classifier reuses tok_embeddings (positive vocab_size in the header). */
  sharedClassifier: boolean;
}

export interface Llama2cWeight {
  /** A view into the file's bytes (no copy). */
  data: Float32Array;
  shape: number[];
}

export interface Llama2cCheckpoint {
  config: Llama2cConfig;
  /** tok_embeddings, layers.{i}.{attention_norm,wq,wk,wv,wo,ffn_norm,w1,w2,w3}, norm, output (unshared only). */
  weights: Record<string, Llama2cWeight>;
}

export class Llama2cCheckpointError extends Error {
  constructor(readonly source: string, problem: string) {
    super(`${source}: ${problem}`);
    this.name = "Llama2cCheckpointError";
  }
}

const HEADER_FIELDS = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"] as const;
const HEADER_BYTES = HEADER_FIELDS.length * 4;
// export.py `version_export` (versions 1, 2) starts with this uint32 magic ("ak42") instead of a header.
const MAGIC_V1 = 0x616b3432;
/** "GGUF" read as a little-endian uint32 (llama.cpp's format). */
const MAGIC_GGUF = 0x46554747;

/** Checks the header and returns the config; `bad` names the file. */
function parseHeader(view: DataView, bad: (problem: string) => Error): Llama2cConfig {
  const h = HEADER_FIELDS.map((_, i) => view.getInt32(i * 4, true));
  if (h[0] === MAGIC_GGUF) throw bad('starts with the magic "GGUF": a GGUF (llama.cpp) file; expected a llama2.c version 0 checkpoint');
  if (h[0] === MAGIC_V1) {
    throw bad(`starts with the magic "ak42" of a llama2.c version ${view.getInt32(4, true)} export; expected a legacy version 0 checkpoint (export.py --version 0)`);
  }
  HEADER_FIELDS.forEach((field, i) => {
    if (field !== "vocab_size" && h[i]! <= 0) throw bad(`header field ${field} is ${h[i]}; expected a positive int32`);
  });
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocab, seqLen] = h as [number, number, number, number, number, number, number];
  if (vocab === 0) throw bad("header field vocab_size is 0; expected a non-zero int32 (negative = unshared classifier)");
  if (dim % nHeads !== 0) throw bad(`header field n_heads=${nHeads} does not divide dim=${dim}; expected dim % n_heads == 0`);
  if ((dim / nHeads) % 2 !== 0) throw bad(`head size dim/n_heads = ${dim / nHeads} is odd; expected an even head size (RoPE rotates pairs)`);
  if (nHeads % nKvHeads !== 0) {
    throw bad(`header field n_kv_heads=${nKvHeads} does not divide n_heads=${nHeads}; expected n_heads % n_kv_heads == 0`);
  }
  return { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize: Math.abs(vocab), seqLen, sharedClassifier: vocab > 0 };
}

/** The tensors in file order: [name, shape], with per-layer tensors stacked over layers. */
function layout(c: Llama2cConfig): [string, number[]][] {
  const { dim: D, hiddenDim: H, nLayers: L, vocabSize: V, seqLen: S } = c;
  const kv = (D * c.nKvHeads) / c.nHeads;
  const half = D / c.nHeads / 2;
  return [
    ["tok_embeddings", [V, D]],
    ["attention_norm", [L, D]],
    ["wq", [L, D, D]],
    ["wk", [L, kv, D]],
    ["wv", [L, kv, D]],
    ["wo", [L, D, D]],
    ["ffn_norm", [L, D]],
    ["w1", [L, H, D]],
    ["w2", [L, D, H]],
    ["w3", [L, H, D]],
    ["norm", [D]],
    ["freq_cis_real", [S, half]],
    ["freq_cis_imag", [S, half]],
    ...(c.sharedClassifier ? [] : [["output", [V, D]] as [string, number[]]]),
  ];
}

const STACKED = new Set(["attention_norm", "wq", "wk", "wv", "wo", "ffn_norm", "w1", "w2", "w3"]);
const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** The file size the header implies; a different size is an error naming the header. */
function checkSize(config: Llama2cConfig, size: number, bad: (problem: string) => Error): void {
  const expected = HEADER_BYTES + 4 * layout(config).reduce((sum, [, shape]) => sum + numel(shape), 0);
  if (size !== expected) {
    const how = size < expected ? "truncated" : `${size - expected} trailing bytes`;
    const shared = config.sharedClassifier ? "shared" : "unshared";
    throw bad(`file is ${size} bytes (${how}); the header (dim=${config.dim}, hidden_dim=${config.hiddenDim}, n_layers=${config.nLayers}, n_heads=${config.nHeads}, n_kv_heads=${config.nKvHeads}, vocab_size=${config.vocabSize} ${shared}, seq_len=${config.seqLen}) implies exactly ${expected} bytes`);
  }
}

/** Bounds of the header fields for recognizing a file as llama2.c by content (far above real models). */
const PLAUSIBLE: Record<(typeof HEADER_FIELDS)[number], number> = {
  dim: 2 ** 16, hidden_dim: 2 ** 20, n_layers: 2 ** 12, n_heads: 2 ** 12, n_kv_heads: 2 ** 12, vocab_size: 2 ** 24, seq_len: 2 ** 20,
};

/**
 * The config when `head` (the file's first bytes) is a valid llama2.c version 0 header and either the
 * file has exactly the size it implies or every field is of a plausible size; null otherwise.
 */
export function matchLlama2cHeader(head: Uint8Array, size: number): Llama2cConfig | null {
  if (head.byteLength < HEADER_BYTES) return null;
  const view = new DataView(head.buffer, head.byteOffset, HEADER_BYTES);
  const nope = () => new Error();
  try {
    const config = parseHeader(view, nope);
    if (HEADER_FIELDS.every((f, i) => Math.abs(view.getInt32(i * 4, true)) <= PLAUSIBLE[f])) return config;
    checkSize(config, size, nope);
    return config;
  } catch {
    return null;
  }
}

/** Parses a version 0 checkpoint held in memory; `source` (the file name) prefixes every error. */
export function parseLlama2cCheckpoint(bytes: Uint8Array, source = "<buffer>"): Llama2cCheckpoint {
  const bad = (problem: string) => new Llama2cCheckpointError(source, problem);
  if (bytes.byteLength < HEADER_BYTES) {
    throw bad(`file is ${bytes.byteLength} bytes; expected at least the ${HEADER_BYTES}-byte header (7 int32: ${HEADER_FIELDS.join(", ")})`);
  }
  const config = parseHeader(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), bad);
  checkSize(config, bytes.byteLength, bad);
  // Float32Array views need 4-byte alignment; copy once if the buffer does not provide it.
  const aligned = (bytes.byteOffset + HEADER_BYTES) % 4 === 0 ? bytes : new Uint8Array(bytes);
  const weights: Record<string, Llama2cWeight> = {};
  let off = aligned.byteOffset + HEADER_BYTES;
  for (const [name, shape] of layout(config)) {
    const count = numel(shape);
    const data = new Float32Array(aligned.buffer, off, count);
    off += 4 * count;
    if (name.startsWith("freq_cis")) continue;
    if (!STACKED.has(name)) {
      weights[name] = { data, shape };
      continue;
    }
    const [L, ...rest] = shape as [number, ...number[]];
    const per = numel(rest);
    for (let i = 0; i < L; i++) weights[`layers.${i}.${name}`] = { data: data.subarray(i * per, (i + 1) * per), shape: [...rest] };
  }
  for (const [name, w] of Object.entries(weights)) {
    const nf = firstNonFinite(w.data);
    if (nf) throw bad(`tensor ${name} holds ${nf.value} at element ${nf.index}; ${EXPECTED_FINITE}`);
  }
  return { config, weights };
}

/**
 * Reads and validates a llama2.c version 0 checkpoint file. The header is read first: the file must be
 * a regular file of exactly the size it implies, within TSFORMER_MAX_MODEL_BYTES, before the rest is read.
 */
export async function readLlama2cCheckpoint(file: string): Promise<Llama2cCheckpoint> {
  const bad = (problem: string) => new Llama2cCheckpointError(file, problem);
  let opened: { fd: number; size: number };
  try {
    opened = openRegular(file);
  } catch (e) {
    const err = e as FileReadError;
    throw bad(err.code ? `cannot read the checkpoint file (${err.code})` : err.problem);
  }
  const { fd, size } = opened;
  try {
    const head = readAt(fd, Math.min(HEADER_BYTES, size), 0);
    if (head.byteLength < HEADER_BYTES) return parseLlama2cCheckpoint(head, file); // the "too short" error
    checkSize(parseHeader(new DataView(head.buffer, head.byteOffset, HEADER_BYTES), bad), size, bad);
    const limit = maxModelBytes();
    if (size > limit) throw bad(`is ${formatBytes(size)}; the limit is TSFORMER_MAX_MODEL_BYTES = ${formatBytes(limit)} (set it higher to load a larger model)`);
    return parseLlama2cCheckpoint(readAt(fd, size, 0), file);
  } finally {
    closeSync(fd);
  }
}

/**
 * A version 0 checkpoint's bytes (the inverse of parseLlama2cCheckpoint): the header, then every
 * tensor of `layout` in order; freq_cis_real / freq_cis_imag are computed as export.py writes them
 * (cos / sin of pos * 10000^(-2j/head_size), in float32 as model.py computes them). Stacked per-layer weights are given per layer.
 */
export function encodeLlama2c(c: Llama2cConfig, weights: Record<string, Float32Array>): Uint8Array {
  const parts = layout(c);
  const total = HEADER_BYTES + 4 * parts.reduce((s, [, shape]) => s + numel(shape), 0);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  [c.dim, c.hiddenDim, c.nLayers, c.nHeads, c.nKvHeads, c.sharedClassifier ? c.vocabSize : -c.vocabSize, c.seqLen]
    .forEach((v, i) => view.setInt32(i * 4, v, true));
  const f = new Float32Array(out.buffer, HEADER_BYTES);
  let off = 0;
  const half = c.dim / c.nHeads / 2;
  for (const [name, shape] of parts) {
    const n = numel(shape);
    if (name === "freq_cis_real" || name === "freq_cis_imag") {
      // in float32 steps, as model.py precompute_freqs_cis: 1 / theta^(2j/d), outer(t, freqs), cos / sin
      const fr = Math.fround;
      for (let j = 0; j < half; j++) {
        const inv = fr(1 / fr(Math.pow(10000, fr(fr(2 * j) / (2 * half)))));
        for (let p = 0; p < c.seqLen; p++) {
          const a = fr(p * inv);
          f[off + p * half + j] = name === "freq_cis_real" ? Math.cos(a) : Math.sin(a);
        }
      }
    } else if (STACKED.has(name)) {
      const per = n / c.nLayers;
      for (let l = 0; l < c.nLayers; l++) f.set(need(weights, `layers.${l}.${name}`, per), off + l * per);
    } else {
      f.set(need(weights, name, n), off);
    }
    off += n;
  }
  return out;
}

function need(w: Record<string, Float32Array>, name: string, n: number): Float32Array {
  const t = w[name];
  if (!t || t.length !== n) throw new Error(`encodeLlama2c: weight ${name} ${t ? `has ${t.length} values` : "is missing"}; expected ${n}`);
  return t;
}
