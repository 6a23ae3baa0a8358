// The weights of a Hugging Face model directory: model.safetensors, or shards listed by
// model.safetensors.index.json ({"metadata": {"total_size"}, "weight_map": {tensor: shard file}}, as
// transformers' save_pretrained writes them when a model exceeds max_shard_size).

import { existsSync } from "node:fs";
import * as path from "node:path";
import { EXPECTED_FINITE, firstNonFinite } from "../finite.js";
import { brief, FileReadError, formatBytes, isObject, maxModelBytes, readJsonFile, shallow } from "../read.js";
import { encodeSafetensors, readSafetensors, SafetensorsError, type SafeTensor } from "../safetensors.js";

export const SINGLE = "model.safetensors";
export const INDEX = "model.safetensors.index.json";
/** transformers' default max_shard_size. */
export const DEFAULT_MAX_SHARD_BYTES = 5 * 1000 ** 3;

/** An HF-directory problem: names the directory, the file and what was expected. */
export class HFDirError extends Error {
  constructor(readonly dir: string, problem: string, options?: { cause?: unknown }) {
    super(`HF model ${dir}: ${problem}`, options);
    this.name = "HFDirError";
  }
}

/** HF's JSON files nest a few levels (a text_config holding a rope_scaling); deeper is not a config, and would overflow the stack when written back. */
const MAX_JSON_DEPTH = 32;

/** A JSON file of the directory; errors name the directory and the file. */
export function readDirJson(dir: string, name: string): unknown {
  let v: unknown;
  try {
    v = readJsonFile(path.join(dir, name));
  } catch (e) {
    if (!(e instanceof FileReadError)) throw e;
    throw new HFDirError(dir, e.code ? `cannot read ${name} (${e.code})` : `${name} ${e.problem}`, { cause: e });
  }
  if (!shallow(v, MAX_JSON_DEPTH)) throw new HFDirError(dir, `${name} nests arrays / objects deeper than ${MAX_JSON_DEPTH} levels; expected an HF JSON file`);
  return v;
}

/** shard file -> tensor names it must hold, from the index (validated). */
function readIndex(dir: string): Map<string, string[]> {
  const idx = readDirJson(dir, INDEX);
  const map = isObject(idx) ? idx.weight_map : undefined;
  if (!isObject(map)) throw new HFDirError(dir, `${INDEX} has no "weight_map" object; expected {"metadata": {...}, "weight_map": {"<tensor>": "<shard>.safetensors"}}`);
  const shards = new Map<string, string[]>();
  for (const [name, file] of Object.entries(map)) {
    if (typeof file !== "string" || path.basename(file) !== file || !file.endsWith(".safetensors")) {
      throw new HFDirError(dir, `${INDEX}: weight_map[${JSON.stringify(name)}] is ${brief(file)}; expected the name of a .safetensors file in the directory`);
    }
    shards.set(file, [...(shards.get(file) ?? []), name]);
  }
  for (const file of shards.keys()) {
    if (!existsSync(path.join(dir, file))) throw new HFDirError(dir, `shard ${file} named by ${INDEX} is missing`);
  }
  return shards;
}

/** The files holding the weights: the shards of the index, or model.safetensors. */
function weightFiles(dir: string): Map<string, string[] | null> {
  if (existsSync(path.join(dir, INDEX))) return readIndex(dir);
  if (existsSync(path.join(dir, SINGLE))) return new Map([[SINGLE, null]]);
  const pickled = ["pytorch_model.bin", "pytorch_model.bin.index.json"].find((f) => existsSync(path.join(dir, f)));
  if (pickled) throw new HFDirError(dir, `holds ${pickled} (pickled PyTorch weights), which tsformer does not read; expected ${SINGLE} or ${INDEX} (re-save the model with safe_serialization=True)`);
  throw new HFDirError(dir, `has neither ${SINGLE} nor ${INDEX}; expected the weights in safetensors`);
}

const ITEM: Record<string, number> = { F64: 8, F32: 4, BF16: 2, F16: 2 };

/**
 * Every tensor of the directory (16-bit tensors as raw bits; the caller widens them). The total, as
 * float32, is refused past TSFORMER_MAX_MODEL_BYTES before the data of a shard is read.
 */
export async function readHFWeights(dir: string): Promise<Record<string, SafeTensor>> {
  const limit = maxModelBytes();
  let f32Bytes = 0;
  const out: Record<string, SafeTensor> = {};
  for (const [file, expected] of weightFiles(dir)) {
    let st;
    try {
      st = await readSafetensors(path.join(dir, file), {
        checkHeader: (h) => {
          for (const [name, t] of Object.entries(h.tensors)) {
            if (!(t.dtype in ITEM)) throw new HFDirError(dir, `${file}: tensor ${name} is ${t.dtype}; expected floating-point weights (F32, F16, BF16 or F64)`);
            f32Bytes += t.shape.reduce((a, b) => a * b, 1) * 4;
          }
          if (f32Bytes > limit) throw new HFDirError(dir, `its weights take ${formatBytes(f32Bytes)} as float32 (counted up to ${file}); the limit is TSFORMER_MAX_MODEL_BYTES = ${formatBytes(limit)} (raise it to load a larger model)`);
          for (const name of expected ?? []) {
            if (!(name in h.tensors)) throw new HFDirError(dir, `${INDEX} names tensor ${name} in ${file}, but ${file} does not hold it`);
          }
        },
      });
    } catch (e) {
      throw e instanceof SafetensorsError ? new HFDirError(dir, e.message.replace(`${dir}${path.sep}`, ""), { cause: e }) : e;
    }
    for (const [name, t] of Object.entries(st.tensors)) {
      if (name in out) throw new HFDirError(dir, `tensor ${name} appears in two shards (${file} and another); expected each tensor once`);
      const bad = firstNonFinite(t.data, t.dtype);
      if (bad) throw new HFDirError(dir, `${file}: tensor ${name} holds ${bad.value} at element ${bad.index}; ${EXPECTED_FINITE}`);
      out[name] = t;
    }
  }
  return out;
}

/**
 * The files that hold `tensors` as transformers writes them: one model.safetensors, or shards of at
 * most maxShardBytes (filled in order; a tensor larger than the limit gets a shard of its own) and
 * the index. Returns [file name, bytes] pairs; the caller writes them.
 */
export function encodeHFWeights(tensors: [string, SafeTensor][], maxShardBytes = DEFAULT_MAX_SHARD_BYTES): [string, string | Uint8Array][] {
  const size = (t: SafeTensor) => t.data.byteLength;
  const shards: [string, SafeTensor][][] = [[]];
  let used = 0;
  for (const e of tensors) {
    if (used > 0 && used + size(e[1]) > maxShardBytes) { shards.push([]); used = 0; }
    shards[shards.length - 1]!.push(e);
    used += size(e[1]);
  }
  const meta = { format: "pt" };
  if (shards.length === 1) return [[SINGLE, encodeSafetensors(Object.fromEntries(tensors), meta, SINGLE)]];
  const n = shards.length, pad = (i: number) => String(i).padStart(5, "0");
  const files: [string, string | Uint8Array][] = [];
  const weightMap: Record<string, string> = {};
  shards.forEach((s, i) => {
    const name = `model-${pad(i + 1)}-of-${pad(n)}.safetensors`;
    for (const [t] of s) weightMap[t] = name;
    files.push([name, encodeSafetensors(Object.fromEntries(s), meta, name)]);
  });
  const totalSize = tensors.reduce((a, [, t]) => a + size(t), 0);
  files.push([INDEX, `${JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2)}\n`]);
  return files;
}
