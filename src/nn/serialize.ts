// save / load for any Module: a directory with model.safetensors (the state dict, each tensor in its
// own dtype, so a round trip is bit-identical) and, when given, config.json (a plain JSON object the
// caller rebuilds the module from: a constructor cannot be serialized generically). A new directory
// appears whole (written under a temp name, then renamed); an existing saved model is replaced only
// with { overwrite: true }, each file atomically.

import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync } from "node:fs";
import * as path from "node:path";
import { writeFileAtomic } from "../io/atomic.js";
import { encodeSafetensors, readSafetensors, type SafeDType, type SafeTensor } from "../io/safetensors.js";
import { readJsonFile } from "../io/read.js";
import * as ops from "../ops/index.js";
import type { DType } from "../tensor/dtype.js";
import type { Tensor } from "../tensor/tensor.js";
import type { Module } from "./module.js";

const MODEL = "model.safetensors", CONFIG = "config.json";

export interface SaveOptions {
  /** A JSON value written as config.json (e.g. the constructor's arguments); load() returns it. */
  config?: unknown;
  /** Replace a model already saved in the directory (default: refuse, so nothing saved is lost). */
  overwrite?: boolean;
  /** More files written beside the model (e.g. tokenizer.json): name -> content. */
  files?: Record<string, string | Uint8Array>;
}

export interface LoadedModule {
  stateDict: Record<string, Tensor>;
  /** config.json's value, or null when the model was saved without one. */
  config: unknown;
}

const SAFE: Record<DType, SafeDType> = { float32: "F32", float64: "F64", int32: "I32", bfloat16: "BF16", float16: "F16" };
const FROM_SAFE = Object.fromEntries(Object.entries(SAFE).map(([d, s]) => [s, d])) as Partial<Record<SafeDType, DType>>;
const ITEM_BYTES: Record<DType, number> = { float32: 4, float64: 8, int32: 4, bfloat16: 2, float16: 2 };

const fail = (op: string, dir: string, problem: string, cause?: unknown) => new Error(`${op} ${dir}: ${problem}`, { cause });

/** Write module's state dict (and options.config) to dir; see the file comment for the layout. */
export async function save(module: Module, dir: string, o: SaveOptions = {}): Promise<void> {
  let config: string | null = null;
  if (o.config !== undefined) {
    try {
      config = JSON.stringify(o.config, null, 2);
    } catch (e) {
      throw fail("save", dir, `config is not JSON-serializable (${(e as Error).message})`, e);
    }
    if (config === undefined) throw fail("save", dir, "config is not JSON-serializable; expected a plain object, array, string, number, boolean or null");
  }
  const tensors: Record<string, SafeTensor> = {};
  for (const [k, t] of Object.entries(module.stateDict())) tensors[k] = { dtype: SAFE[t.dtype], shape: [...t.shape], data: t.toTypedArray() };
  const files: [string, string | Uint8Array][] = [[MODEL, encodeSafetensors(tensors, { format: "pt" }, path.join(dir, MODEL))]];
  if (config !== null) files.push([CONFIG, `${config}\n`]);
  for (const [name, data] of Object.entries(o.files ?? {})) {
    if (name === MODEL || name === CONFIG || path.basename(name) !== name) throw fail("save", dir, `files: ${JSON.stringify(name)} is not a free file name in the directory`);
    files.push([name, data]);
  }

  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw fail("save", dir, "exists and is not a directory");
    const held = [MODEL, CONFIG].filter((f) => existsSync(path.join(dir, f)));
    if (held.length && !o.overwrite) throw fail("save", dir, `already holds a saved model (${held.join(", ")}); pass { overwrite: true } to replace it`);
    for (const [name, data] of files) writeFileAtomic(path.join(dir, name), data);
    // the old config belongs to the weights just replaced
    if (config === null) rmSync(path.join(dir, CONFIG), { force: true });
    return;
  }
  const parent = path.dirname(path.resolve(dir));
  mkdirSync(parent, { recursive: true });
  const tmp = mkdtempSync(path.join(parent, `.${path.basename(dir)}.saving-`));
  try {
    for (const [name, data] of files) writeFileAtomic(path.join(tmp, name), data);
    renameSync(tmp, dir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw fail("save", dir, `not written (${(e as Error).message})`, e);
  }
}

/** The saved state dict and config of dir. */
export async function load(dir: string): Promise<LoadedModule>;
/** Copy the saved weights into module (names and shapes must match exactly; nothing is copied otherwise). */
export async function load<M extends Module>(dir: string, module: M): Promise<M>;
export async function load(dir: string, module?: Module): Promise<LoadedModule | Module> {
  const file = path.join(dir, MODEL);
  if (!existsSync(file)) throw fail("load", dir, `no ${MODEL}; expected a directory written by save()`);
  if (module) {
    // bounded read: the module's weights (twice: saved as float64 for a float32 module) plus a header
    // entry per tensor (its name, possibly \u-escaped, dtype, shape and offsets) and the metadata
    const own = Object.entries(module.stateDict());
    const want = own.reduce((n, [, t]) => n + t.numel * ITEM_BYTES[t.dtype], 0);
    const header = own.reduce((n, [k, t]) => n + 6 * k.length + 20 * t.ndim + 128, 4096);
    const size = statSync(file).size;
    if (size > 8 + header + 2 * want) throw fail("load", dir, `${MODEL} is ${size} bytes; the module's weights take ${want}, so it is not this module's`);
  }
  const st = await readSafetensors(file);
  const stateDict: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(st.tensors)) {
    const dtype = FROM_SAFE[t.dtype];
    if (!dtype) throw fail("load", dir, `${MODEL}: tensor ${JSON.stringify(k)} is ${t.dtype}; expected one of ${Object.keys(FROM_SAFE).join(", ")}`);
    stateDict[k] = ops.tensor(t.data as Float32Array, { shape: t.shape, dtype });
  }
  if (module) {
    try {
      module.loadStateDict(stateDict);
    } catch (e) {
      throw fail("load", dir, (e as Error).message, e);
    }
    return module;
  }
  const cfgFile = path.join(dir, CONFIG);
  let config: unknown = null;
  if (existsSync(cfgFile)) {
    try {
      config = readJsonFile(cfgFile);  // bounded, regular files only (a FIFO or /dev/zero is refused)
    } catch (e) {
      throw fail("load", dir, (e as Error).message, e);
    }
  }
  return { stateDict, config };
}
