// Checkpoints and model directories. A checkpoint is a directory:
//   config.json            the model config object
//   model.safetensors      the model state dict (F32; a tied tensor is stored under each of its names)
//   optimizer.safetensors  optimizer buffers by "<param>.<buffer>"; metadata "meta" = JSON scalars
//   trainer_state.json     { step, dataRng, dropoutRng, gradScaler?, bestValLoss, trainConfig }
//   *.json                 optional extra files from the caller (e.g. tokenizer.json)
//   *.safetensors          optional parts: other modules' state (Checkpoint.parts; the trainer's
//                          checkpointParts, e.g. mtp.safetensors: MTP modules beside the plain base model)
// A model directory (for inference, for sharing) is the first two plus the extra files: loadModelFiles
// reads it; only loadCheckpoint (resume) asks for the optimizer and trainer state.
//
// Saving is atomic: the files go to "<dir>.tmp-<id>", which first receives a marker file MARKER naming
// its role; the old directory gets a marker too and is renamed to "<dir>.old-<id>", the new one renamed
// in, the old one deleted. A crash leaves either the old or the new checkpoint. Recovery never looks at
// process ids: only directories carrying our marker are ever removed, and only by a save; a load never
// deletes anything, and renames only to restore "<dir>" from a marked "<dir>.old-<id>" when "<dir>" is
// missing (a crash between the two renames).

import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import { hostname } from "node:os";
import * as path from "node:path";
import { z } from "zod";
import { firstNonFinite } from "./finite.js";
import { FileReadError, formatBytes, maxModelBytes, parseJsonText, readJsonFile, shallow } from "./read.js";
import { SafetensorsError, encodeSafetensors, readSafetensors, type SafeTensor, type SafetensorsHeader } from "./safetensors.js";
import type { RngState } from "../tensor/rng.js";
import { Tensor } from "../tensor/tensor.js";

/** An optimizer's state as a checkpoint stores it: named float32 tensors plus JSON metadata. */
export interface OptimizerState { tensors: Record<string, Float32Array>; meta: Record<string, unknown> }

export interface TrainerState {
  /** Optimizer steps completed. */
  step: number;
  /** Batch sampler generator (the data position). */
  dataRng: RngState;
  /** Dropout generator, null when the model draws none. */
  dropoutRng: RngState | null;
  /** fp16 training's dynamic loss scale and its count of clean steps (train/grad-scaler.ts). */
  gradScaler?: { scale: number; growthTracker: number };
  bestValLoss: number | null;
  trainConfig: Record<string, unknown>;
}

/** What a model directory holds: enough for inference. */
export interface ModelFiles {
  config: unknown;
  model: Record<string, Tensor>;
  /** Extra files by name: JSON values ("tokenizer.json"), or bytes for a .safetensors (an adapter's weights). */
  extraFiles?: Record<string, unknown>;
}

/** A module's state in a .safetensors file of its own beside model.safetensors (a wrapper's extra part). */
export interface CheckpointPart { state: Record<string, Tensor>; metadata?: Record<string, string> }

export interface Checkpoint extends ModelFiles {
  optimizer: OptimizerState;
  trainerState: TrainerState;
  /** Extra parts by file name ("<name>.safetensors"), written and checked as model.safetensors is. */
  parts?: Record<string, CheckpointPart>;
}

export interface LoadModelOptions {
  /**
   * Called with config.json's object and model.safetensors' header before any tensor data is read or
   * allocated: throw to refuse (e.g. a config whose model the header's shapes cannot fill).
   */
  checkWeights?: (config: unknown, header: SafetensorsHeader) => void;
}

export class CheckpointError extends Error {
  constructor(readonly dir: string, problem: string, options?: { cause?: unknown }) {
    super(`checkpoint ${dir}: ${problem}`, options);
    this.name = "CheckpointError";
  }
}

const CONFIG = "config.json", MODEL = "model.safetensors", OPTIM = "optimizer.safetensors", STATE = "trainer_state.json";
const REQUIRED = [CONFIG, MODEL, OPTIM, STATE];
const MODEL_FILES = [CONFIG, MODEL];
/** Marks a directory as a save's own temp ("tmp") or moved-aside previous checkpoint ("old"). */
const PARTIAL_MARKER = ".tsformer-partial";

const rngSchema = z.object({ seed: z.number().int().nonnegative(), counter: z.number().int().nonnegative() }).strict();
const stateSchema = z.object({
  step: z.number().int().nonnegative(),
  dataRng: rngSchema,
  dropoutRng: rngSchema.nullable(),
  gradScaler: z.object({ scale: z.number().positive(), growthTracker: z.number().int().nonnegative() }).strict().optional(),
  bestValLoss: z.number().nullable(),
  // the run's settings (batch size, schedule, optimizer...): flat JSON; nesting is capped so that
  // comparing them on resume (JSON.stringify) cannot overflow the stack
  trainConfig: z.record(z.string(), z.unknown()).refine((c) => shallow(c, 4), "nests deeper than 4 levels; expected the trainer's flat settings"),
}).strict();

const errno = (e: unknown) => (e as NodeJS.ErrnoException).code ?? (e as Error).message;
const exists = (p: string) => fs.stat(p).then(() => true, () => false);
const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

interface Marker { role: "tmp" | "old"; target: string; pid: number; host: string; time: string }

/** The marker of a sibling directory, or null when it carries none (then it is not ours to touch). */
async function readMarker(p: string): Promise<Marker | null> {
  try {
    // bounded: a FIFO or device put there must not stall or flood a save
    const m = readJsonFile(path.join(p, PARTIAL_MARKER), 4096) as Marker | null;
    return m?.role === "tmp" || m?.role === "old" ? m : null;
  } catch {
    return null;
  }
}

/** Siblings "<dir>.tmp-*" / "<dir>.old-*" that carry a marker naming dir, newest first. */
async function markedSiblings(dir: string): Promise<{ path: string; marker: Marker }[]> {
  const parent = path.dirname(dir), base = path.basename(dir);
  const names = await fs.readdir(parent).catch(() => [] as string[]);
  const found: { path: string; marker: Marker }[] = [];
  for (const n of names) {
    if (!/^\.(tmp|old)-[\w-]+$/.test(n.slice(base.length)) || !n.startsWith(base)) continue;
    const p = path.join(parent, n), marker = await readMarker(p);
    if (marker && marker.target === base && n.startsWith(`${base}.${marker.role}-`)) found.push({ path: p, marker });
  }
  return found.sort((a, b) => b.marker.time.localeCompare(a.marker.time));
}

/**
 * A crash between the two renames left dir missing and the previous checkpoint in a marked .old: move
 * it back (the one rename a load may do: it restores data, and only when dir is missing). True if done.
 */
export async function rollBack(dir: string): Promise<boolean> {
  if (await exists(dir)) return false;
  const old = (await markedSiblings(dir)).find((s) => s.marker.role === "old");
  if (!old) return false;
  try {
    await fs.rename(old.path, dir);
  } catch (e) {
    throw new CheckpointError(dir, `is missing, and ${old.path} holds the previous checkpoint left by an interrupted save, but it cannot be renamed back (${errno(e)}); rename it to ${dir}`, { cause: e });
  }
  await fs.rm(path.join(dir, PARTIAL_MARKER), { force: true });
  process.emitWarning(`checkpoint ${dir} was missing after an interrupted save; restored the previous checkpoint from ${old.path}`);
  return true;
}

/** For a missing dir: a hint naming an unmarked "<dir>.old-*" (an older version's interrupted save, or the user's own: not ours to move). */
async function unmarkedOld(dir: string): Promise<string> {
  const base = path.basename(dir);
  const names = await fs.readdir(path.dirname(dir)).catch(() => [] as string[]);
  const old = names.filter((n) => n.startsWith(`${base}.old-`)).sort();
  return old.length ? `; ${old.map((n) => path.join(path.dirname(dir), n)).join(", ")} may hold an earlier checkpoint left by an interrupted save: rename it to ${dir} if so` : "";
}

async function writeSynced(file: string, data: string | Uint8Array, flag = "wx"): Promise<void> {
  const fh = await fs.open(file, flag);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function checkFinite(dir: string, file: string, tensors: Iterable<[string, ArrayLike<number>]>, when: string): void {
  for (const [name, a] of tensors) {
    const bad = firstNonFinite(a);
    if (bad) throw new CheckpointError(dir, `${file}: tensor ${JSON.stringify(name)} holds ${bad.value} at element ${bad.index}; ${when}`);
  }
}

export async function saveCheckpoint(dir: string, ckpt: Checkpoint): Promise<void> {
  const extras = Object.entries(ckpt.extraFiles ?? {});
  for (const [name] of extras) {
    if (!/^[\w.-]+\.(json|safetensors)$/.test(name) || REQUIRED.includes(name)) {
      throw new CheckpointError(dir, `extra file name ${JSON.stringify(name)} is invalid; expected a plain "<name>.json" (or "<name>.safetensors" bytes) other than ${REQUIRED.join(", ")}`);
    }
  }
  const parts = Object.entries(ckpt.parts ?? {});
  for (const [name] of parts) {
    if (!/^[\w.-]+\.safetensors$/.test(name) || REQUIRED.includes(name) || ckpt.extraFiles?.[name] !== undefined) {
      throw new CheckpointError(dir, `part file name ${JSON.stringify(name)} is invalid; expected a plain "<name>.safetensors" other than ${REQUIRED.join(", ")} and the extra files`);
    }
  }
  const refuse = "refusing to write a checkpoint of non-finite values; the previous checkpoint, if any, is unchanged";
  // a state dict as F32 safetensors bytes, refused when a value is not finite
  const encodeState = (name: string, state: Record<string, Tensor>, metadata: Record<string, string>): Uint8Array => {
    const data = Object.entries(state).map(([k, t]) => [k, t.to("float32").toTypedArray() as Float32Array] as [string, Float32Array]);
    checkFinite(dir, name, data, refuse);
    const tensors: Record<string, SafeTensor> = {};
    for (const [k, a] of data) tensors[k] = { dtype: "F32", shape: [...state[k].shape], data: a };
    return encodeSafetensors(tensors, metadata, name);
  };
  const modelBytes = encodeState(MODEL, ckpt.model, { format: "pt" });
  const partBytes = parts.map(([name, p]) => [name, encodeState(name, p.state, { format: "pt", ...p.metadata })] as const);
  checkFinite(dir, OPTIM, Object.entries(ckpt.optimizer.tensors), refuse);

  await fs.mkdir(path.dirname(dir), { recursive: true });
  // Leftovers of interrupted saves of this checkpoint: roll back, then remove our marked directories.
  await rollBack(dir);
  for (const s of await markedSiblings(dir)) await fs.rm(s.path, { recursive: true, force: true });

  const id = `${process.pid}-${randomBytes(4).toString("hex")}`;
  const tmp = `${dir}.tmp-${id}`, old = `${dir}.old-${id}`;
  const marker = (role: Marker["role"]) => JSON.stringify({ role, target: path.basename(dir), pid: process.pid, host: hostname(), time: new Date().toISOString() });
  try {
    await fs.mkdir(tmp);
    await writeSynced(path.join(tmp, PARTIAL_MARKER), marker("tmp"));
    await writeSynced(path.join(tmp, CONFIG), json(ckpt.config));
    await writeSynced(path.join(tmp, MODEL), modelBytes);
    for (const [name, bytes] of partBytes) await writeSynced(path.join(tmp, name), bytes);
    const optim: Record<string, SafeTensor> = {};
    for (const [k, a] of Object.entries(ckpt.optimizer.tensors)) optim[k] = { dtype: "F32", shape: [a.length], data: a };
    await writeSynced(path.join(tmp, OPTIM), encodeSafetensors(optim, { meta: JSON.stringify(ckpt.optimizer.meta) }, OPTIM));
    await writeSynced(path.join(tmp, STATE), json(ckpt.trainerState));
    for (const [name, v] of extras) await writeSynced(path.join(tmp, name), v instanceof Uint8Array ? v : json(v));
  } catch (e) {
    await fs.rm(tmp, { recursive: true, force: true });
    throw new CheckpointError(dir, `save failed (${(e as Error).message}); the previous checkpoint, if any, is unchanged`, { cause: e });
  }
  const hadOld = await exists(dir);
  if (hadOld) {
    await writeSynced(path.join(dir, PARTIAL_MARKER), marker("old"), "w");
    await fs.rename(dir, old);
  }
  try {
    await fs.rename(tmp, dir);
  } catch (e) {
    if (hadOld) {
      await fs.rename(old, dir);
      await fs.rm(path.join(dir, PARTIAL_MARKER), { force: true });
    }
    await fs.rm(tmp, { recursive: true, force: true });
    throw new CheckpointError(dir, `save failed (${errno(e)}); the previous checkpoint, if any, is unchanged`, { cause: e });
  }
  await fs.rm(path.join(dir, PARTIAL_MARKER), { force: true });
  await fs.rm(old, { recursive: true, force: true });
  const d = await fs.open(path.dirname(dir), "r").catch(() => undefined); // persist the renames
  await d?.sync().catch(() => {});
  await d?.close();
}

function readJson(dir: string, name: string): unknown {
  try {
    return readJsonFile(path.join(dir, name));
  } catch (e) {
    if (!(e instanceof FileReadError)) throw e;
    throw new CheckpointError(dir, e.code ? `cannot read ${name} (${e.code})` : `${name} ${e.problem}`, { cause: e });
  }
}

function parseJson(dir: string, name: string, text: string): unknown {
  try {
    return parseJsonText(text);
  } catch (e) {
    throw new CheckpointError(dir, `${name} is not valid JSON (${(e as Error).message})`, { cause: e });
  }
}

/** A safetensors file of F32 tensors whose data section holds at most maxBytes (checked on its header). */
async function readTensors(dir: string, name: string, maxBytes: number, limit: string, check?: (h: SafetensorsHeader) => void) {
  const checkHeader = (h: SafetensorsHeader) => {
    for (const [k, t] of Object.entries(h.tensors)) {
      if (t.dtype !== "F32") throw new CheckpointError(dir, `${name}: tensor ${JSON.stringify(k)} is ${t.dtype}; expected F32`);
    }
    if (h.dataBytes > maxBytes) throw new CheckpointError(dir, `${name}: its header promises ${formatBytes(h.dataBytes)} of tensors; the limit is ${limit}`);
    check?.(h);
  };
  let st;
  try {
    st = await readSafetensors(path.join(dir, name), { checkHeader });
  } catch (e) {
    // A refusal by the caller's checkWeights passes through as it is.
    throw e instanceof SafetensorsError ? new CheckpointError(dir, e.message, { cause: e }) : e;
  }
  const tensors: Record<string, Float32Array> = {}, shapes: Record<string, number[]> = {};
  for (const [k, t] of Object.entries(st.tensors)) {
    tensors[k] = t.data as Float32Array;
    shapes[k] = t.shape;
  }
  checkFinite(dir, name, Object.entries(tensors), "expected finite values (the file is corrupt, or was saved from a diverged run)");
  return { tensors, shapes, metadata: st.metadata };
}

async function listDir(dir: string, required: string[]): Promise<string[]> {
  await rollBack(dir);
  const present = await fs.readdir(dir).catch(async (e) => {
    throw new CheckpointError(dir, `cannot open the checkpoint directory (${errno(e)})${await unmarkedOld(dir)}`, { cause: e });
  });
  const missing = required.filter((f) => !present.includes(f));
  if (missing.length) throw new CheckpointError(dir, `missing file${missing.length > 1 ? "s" : ""} ${missing.join(", ")}; expected ${required.join(", ")}`);
  return present;
}

const modelLimit = () => `TSFORMER_MAX_MODEL_BYTES = ${formatBytes(maxModelBytes())} (raise it to load a larger model)`;

async function readModelFiles(dir: string, present: string[], opts: LoadModelOptions): Promise<ModelFiles> {
  const config = readJson(dir, CONFIG);
  const m = await readTensors(dir, MODEL, maxModelBytes(), modelLimit(), (h) => opts.checkWeights?.(config, h));
  const model = Object.fromEntries(Object.entries(m.tensors).map(([k, a]) => [k, new Tensor(a, m.shapes[k])]));
  const extraFiles: Record<string, unknown> = {};
  for (const f of present.filter((n) => n.endsWith(".json") && !REQUIRED.includes(n)).sort()) extraFiles[f] = readJson(dir, f);
  return { config, model, extraFiles };
}

/**
 * A model directory for inference: config.json, model.safetensors and the extra JSON files (the
 * optimizer and trainer state are neither needed nor looked for). Reads only; see the header comment.
 */
export async function loadModelFiles(dir: string, opts: LoadModelOptions = {}): Promise<ModelFiles> {
  return readModelFiles(dir, await listDir(dir, MODEL_FILES), opts);
}

/** A part file of a checkpoint (Checkpoint.parts), read and checked as model.safetensors is. */
export async function loadCheckpointPart(dir: string, name: string): Promise<Required<CheckpointPart>> {
  const p = await readTensors(dir, name, maxModelBytes(), modelLimit());
  return { state: Object.fromEntries(Object.entries(p.tensors).map(([k, a]) => [k, new Tensor(a, p.shapes[k])])), metadata: p.metadata };
}

/** Load and validate every file of a checkpoint (for resume); an error names the checkpoint, the file and what is wrong. */
export async function loadCheckpoint(dir: string, opts: LoadModelOptions = {}): Promise<Checkpoint> {
  const present = await listDir(dir, REQUIRED);
  const files = await readModelFiles(dir, present, opts);
  // AdamW keeps two buffers per parameter.
  const limit = 2 * maxModelBytes();
  const o = await readTensors(dir, OPTIM, limit, `${formatBytes(limit)} (twice TSFORMER_MAX_MODEL_BYTES)`);
  if (o.metadata.meta === undefined) throw new CheckpointError(dir, `${OPTIM}: metadata has no "meta" entry; expected the optimizer's JSON scalars`);
  const meta = parseJson(dir, `${OPTIM} metadata "meta"`, o.metadata.meta);
  if (typeof meta !== "object" || meta === null || Array.isArray(meta)) throw new CheckpointError(dir, `${OPTIM}: metadata "meta" is not a JSON object`);
  const parsed = stateSchema.safeParse(readJson(dir, STATE));
  if (!parsed.success) {
    const msgs = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new CheckpointError(dir, `${STATE} is invalid: ${msgs.join("; ")}`);
  }
  return { ...files, optimizer: { tensors: o.tensors, meta: meta as Record<string, unknown> }, trainerState: parsed.data };
}
