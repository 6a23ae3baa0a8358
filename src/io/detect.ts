// What a path holds, recognized by content (never by its name), so that a wrong kind of file gets an
// error naming what it is instead of a garbled field deep inside a parser. Reads a few bytes of a file
// (JSON files: up to MAX_JSON_BYTES) and the config.json of a directory; never modifies anything.

import { readdirSync, statSync } from "node:fs";
import * as path from "node:path";
import { matchLlama2cHeader } from "./llama2c.js";
import { isObject, MAX_JSON_BYTES, readFileHead, readJsonFile } from "./read.js";
import { MAX_HEADER_BYTES } from "./safetensors.js";

export type FileKind =
  | "missing" | "not-regular" | "empty"
  | "gguf" | "safetensors" | "zip" | "llama2c-model" | "llama2c-export-v1" | "llama2c-tokenizer"
  | "char-tokenizer-json" | "hf-tokenizer-json" | "hf-config-json" | "tsformer-config-json" | "json"
  | "tsformer-checkpoint" | "tsformer-model-dir" | "hf-dir" | "peft-adapter-dir" | "directory"
  | "text" | "binary";

export interface Detected {
  kind: FileKind;
  /** For messages: "a GGUF file", "an HF model directory (model_type \"llama\")", ... */
  description: string;
}

const HEAD_BYTES = 4096;
const ascii = (b: Uint8Array, n: number) => String.fromCharCode(...b.subarray(0, n));

/** What the path is: a file kind by its bytes, a directory kind by the files it holds. */
export function detectFile(p: string): Detected {
  let st;
  try {
    st = statSync(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { kind: "missing", description: code === "ENOENT" ? "missing (no such file or directory)" : `not readable (${code ?? (e as Error).message})` };
  }
  if (st.isDirectory()) return detectDirectory(p);
  if (!st.isFile()) {
    const what = st.isCharacterDevice() ? "a character device" : st.isBlockDevice() ? "a block device" : st.isFIFO() ? "a FIFO (named pipe)" : st.isSocket() ? "a socket" : "not a regular file";
    return { kind: "not-regular", description: `${what}, not a regular file` };
  }
  const { head, size } = readFileHead(p, HEAD_BYTES);
  return detectBytes(head, size, p);
}

/** A file's kind from its first bytes (`head`), its size and, for JSON, its content. */
function detectBytes(head: Uint8Array, size: number, file: string): Detected {
  if (size === 0) return { kind: "empty", description: "an empty file" };
  const magic = ascii(head, Math.min(4, head.length));
  if (magic === "GGUF") return { kind: "gguf", description: "a GGUF file" };
  if (magic === "PK\x03\x04") return { kind: "zip", description: "a ZIP archive (a PyTorch .pt / .bin checkpoint?)" };
  if (head.length >= 9) {
    const n = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
    if (n <= BigInt(MAX_HEADER_BYTES) && 8n + n <= BigInt(size) && head[8] === 0x7b /* { */) return { kind: "safetensors", description: "a safetensors file" };
  }
  if (head.length >= 4 && new DataView(head.buffer, head.byteOffset, 4).getUint32(0, true) === 0x616b3432) {
    return { kind: "llama2c-export-v1", description: 'a llama2.c version 1/2 export (magic "ak42"; re-export with export.py --version 0)' };
  }
  const first = head.find((b) => b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09 && b !== 0xef && b !== 0xbb && b !== 0xbf);
  if (first === 0x7b && size <= MAX_JSON_BYTES) {
    const json = detectJson(file);
    if (json) return json;
  }
  const llama = matchLlama2cHeader(head, size);
  if (llama) return { kind: "llama2c-model", description: `a llama2.c model (dim ${llama.dim}, ${llama.nLayers} layers, vocab ${llama.vocabSize})` };
  if (isLlama2cTokenizer(head, size)) return { kind: "llama2c-tokenizer", description: "a llama2.c tokenizer (.bin)" };
  if (!head.includes(0)) {
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(head, { stream: true });
      return { kind: "text", description: "a text file" };
    } catch { /* not UTF-8: binary */ }
  }
  return { kind: "binary", description: "an unrecognized binary file" };
}

function detectJson(file: string): Detected | null {
  let v: unknown;
  try {
    v = readJsonFile(file);
  } catch {
    return null;
  }
  if (!isObject(v)) return { kind: "json", description: "a JSON file" };
  if (v.type === "char" && Array.isArray(v.vocab)) return { kind: "char-tokenizer-json", description: `a tsformer character tokenizer (tokenizer.json, ${v.vocab.length} characters)` };
  if (isObject(v.model) && ("added_tokens" in v || "pre_tokenizer" in v || "normalizer" in v)) return { kind: "hf-tokenizer-json", description: "an HF tokenizer.json" };
  if (typeof v.model_type === "string" || Array.isArray(v.architectures)) return { kind: "hf-config-json", description: `an HF config.json${typeof v.model_type === "string" ? ` (model_type ${JSON.stringify(v.model_type)})` : ""}` };
  if ("dModel" in v && "nLayers" in v) return { kind: "tsformer-config-json", description: "a tsformer model config (config.json)" };
  return { kind: "json", description: "a JSON file" };
}

/** llama2.c tokenizer.bin: int32 max_token_length, then (float32 score, int32 len, len bytes) per token. */
function isLlama2cTokenizer(head: Uint8Array, size: number): boolean {
  if (head.length < 12) return false;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const maxLen = view.getInt32(0, true);
  if (maxLen < 1 || maxLen > 1024) return false;
  let off = 4, tokens = 0;
  while (tokens < 3 && off + 8 <= head.length) {
    const score = view.getFloat32(off, true), len = view.getInt32(off + 4, true);
    if (!Number.isFinite(score) || len < 0 || len > maxLen) return false;
    off += 8 + len;
    tokens++;
  }
  return tokens === 3 || off === size;
}

function detectDirectory(dir: string): Detected {
  const names = new Set(readdirSync(dir));
  const cfg = names.has("config.json") ? detectFile(path.join(dir, "config.json")) : null;
  if (cfg?.kind === "hf-config-json") return { kind: "hf-dir", description: cfg.description.replace("an HF config.json", "an HF model directory") };
  // Our files present: the loader validates them and names what is missing or corrupt.
  if (names.has("model.safetensors") || cfg?.kind === "tsformer-config-json") {
    return names.has("optimizer.safetensors") && names.has("trainer_state.json")
      ? { kind: "tsformer-checkpoint", description: "a tsformer checkpoint directory" }
      : { kind: "tsformer-model-dir", description: "a tsformer model directory" };
  }
  if (names.has("adapter_config.json")) return { kind: "peft-adapter-dir", description: "a PEFT adapter directory (adapter_config.json)" };
  return { kind: "directory", description: cfg ? `a directory whose config.json is ${cfg.description}` : "a directory without config.json or model.safetensors" };
}
