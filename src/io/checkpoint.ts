// Training checkpoints. A checkpoint is a directory:
//   config.json            the model config object
//   model.safetensors      the model state dict (F32; a tied tensor is stored under each of its names)
//   optimizer.safetensors  optimizer buffers by "<param>.<buffer>"; metadata "meta" = JSON scalars
//   trainer_state.json     { step, dataRng, dropoutRng, lossScale?, bestValLoss, trainConfig }
//   *.json                 optional extra files from the caller (e.g. tokenizer.json)
// Saving is atomic: the files go to "<dir>.tmp-<pid>" (each fsynced), then the old directory is renamed
// to "<dir>.old-<pid>", the new one renamed in and the old one deleted. A crash leaves either the old or
// the new checkpoint; leftovers of a dead process are cleaned up (or rolled back) by the next save or load.

import { promises as fs } from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import { decodeSafetensors, encodeSafetensors, type SafeTensor } from "./safetensors.js";
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
  /** Dynamic loss scale of mixed-precision training, when used. */
  lossScale?: number;
  bestValLoss: number | null;
  trainConfig: Record<string, unknown>;
}

export interface Checkpoint {
  config: unknown;
  model: Record<string, Tensor>;
  optimizer: OptimizerState;
  trainerState: TrainerState;
  /** Extra JSON files by file name ("tokenizer.json"). */
  extraFiles?: Record<string, unknown>;
}

export class CheckpointError extends Error {
  constructor(readonly dir: string, problem: string, options?: { cause?: unknown }) {
    super(`checkpoint ${dir}: ${problem}`, options);
    this.name = "CheckpointError";
  }
}

const CONFIG = "config.json", MODEL = "model.safetensors", OPTIM = "optimizer.safetensors", STATE = "trainer_state.json";
const REQUIRED = [CONFIG, MODEL, OPTIM, STATE];

const rngSchema = z.object({ seed: z.number().int().nonnegative(), counter: z.number().int().nonnegative() }).strict();
const stateSchema = z.object({
  step: z.number().int().nonnegative(),
  dataRng: rngSchema,
  dropoutRng: rngSchema.nullable(),
  lossScale: z.number().positive().optional(),
  bestValLoss: z.number().nullable(),
  trainConfig: z.record(z.string(), z.unknown()),
}).strict();

const errno = (e: unknown) => (e as NodeJS.ErrnoException).code ?? (e as Error).message;
const exists = (p: string) => fs.stat(p).then(() => true, () => false);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errno(e) === "EPERM";
  }
}

/** Remove temp dirs of dead savers; if a dead saver moved the old checkpoint aside and never renamed the new one in, move it back. */
async function recover(dir: string): Promise<void> {
  const parent = path.dirname(dir), base = path.basename(dir);
  const names = await fs.readdir(parent).catch(() => [] as string[]);
  for (const n of names) {
    const m = n.slice(base.length).match(/^\.(tmp|old)-(\d+)$/);
    if (!n.startsWith(base) || !m || Number(m[2]) === process.pid || alive(Number(m[2]))) continue;
    const p = path.join(parent, n);
    if (m[1] === "old" && !(await exists(dir))) await fs.rename(p, dir);
    else await fs.rm(p, { recursive: true, force: true });
  }
}

async function writeSynced(file: string, data: string | Uint8Array): Promise<void> {
  const fh = await fs.open(file, "wx");
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

export async function saveCheckpoint(dir: string, ckpt: Checkpoint): Promise<void> {
  const extras = Object.entries(ckpt.extraFiles ?? {});
  for (const [name] of extras) {
    if (!/^[\w.-]+\.json$/.test(name) || REQUIRED.includes(name)) {
      throw new CheckpointError(dir, `extra file name ${JSON.stringify(name)} is invalid; expected a plain "<name>.json" other than ${REQUIRED.join(", ")}`);
    }
  }
  await fs.mkdir(path.dirname(dir), { recursive: true });
  await recover(dir);
  const tmp = `${dir}.tmp-${process.pid}`, old = `${dir}.old-${process.pid}`;
  await fs.rm(tmp, { recursive: true, force: true });
  try {
    await fs.mkdir(tmp);
    await writeSynced(path.join(tmp, CONFIG), json(ckpt.config));
    const model: Record<string, SafeTensor> = {};
    for (const [k, t] of Object.entries(ckpt.model)) model[k] = { dtype: "F32", shape: [...t.shape], data: t.to("float32").toTypedArray() as Float32Array };
    await writeSynced(path.join(tmp, MODEL), encodeSafetensors(model, { format: "pt" }, MODEL));
    const optim: Record<string, SafeTensor> = {};
    for (const [k, a] of Object.entries(ckpt.optimizer.tensors)) optim[k] = { dtype: "F32", shape: [a.length], data: a };
    await writeSynced(path.join(tmp, OPTIM), encodeSafetensors(optim, { meta: JSON.stringify(ckpt.optimizer.meta) }, OPTIM));
    await writeSynced(path.join(tmp, STATE), json(ckpt.trainerState));
    for (const [name, v] of extras) await writeSynced(path.join(tmp, name), json(v));
  } catch (e) {
    await fs.rm(tmp, { recursive: true, force: true });
    throw new CheckpointError(dir, `save failed (${(e as Error).message}); the previous checkpoint, if any, is unchanged`, { cause: e });
  }
  const hadOld = await exists(dir);
  if (hadOld) await fs.rename(dir, old);
  try {
    await fs.rename(tmp, dir);
  } catch (e) {
    if (hadOld) await fs.rename(old, dir);
    await fs.rm(tmp, { recursive: true, force: true });
    throw new CheckpointError(dir, `save failed (${errno(e)}); the previous checkpoint, if any, is unchanged`, { cause: e });
  }
  await fs.rm(old, { recursive: true, force: true });
  const d = await fs.open(path.dirname(dir), "r").catch(() => undefined); // persist the renames
  await d?.sync().catch(() => {});
  await d?.close();
}

async function readFile(dir: string, name: string): Promise<Buffer> {
  try {
    return await fs.readFile(path.join(dir, name));
  } catch (e) {
    throw new CheckpointError(dir, `cannot read ${name} (${errno(e)})`, { cause: e });
  }
}

function parseJson(dir: string, name: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(dir, `${name} is not valid JSON (${(e as Error).message})`, { cause: e });
  }
}

async function readTensors(dir: string, name: string): Promise<{ tensors: Record<string, Float32Array>; shapes: Record<string, number[]>; metadata: Record<string, string> }> {
  const file = path.join(dir, name);
  let st;
  try {
    st = decodeSafetensors(await readFile(dir, name), file);
  } catch (e) {
    throw e instanceof CheckpointError ? e : new CheckpointError(dir, (e as Error).message, { cause: e });
  }
  const tensors: Record<string, Float32Array> = {}, shapes: Record<string, number[]> = {};
  for (const [k, t] of Object.entries(st.tensors)) {
    if (t.dtype !== "F32") throw new CheckpointError(dir, `${name}: tensor ${JSON.stringify(k)} is ${t.dtype}; expected F32`);
    tensors[k] = t.data as Float32Array;
    shapes[k] = t.shape;
  }
  return { tensors, shapes, metadata: st.metadata };
}

/** Load and validate every file; an error names the checkpoint, the file and what is wrong. */
export async function loadCheckpoint(dir: string): Promise<Checkpoint> {
  await recover(dir);
  const present = await fs.readdir(dir).catch((e) => {
    throw new CheckpointError(dir, `cannot open the checkpoint directory (${errno(e)})`, { cause: e });
  });
  const missing = REQUIRED.filter((f) => !present.includes(f));
  if (missing.length) throw new CheckpointError(dir, `missing file${missing.length > 1 ? "s" : ""} ${missing.join(", ")}; expected ${REQUIRED.join(", ")}`);

  const config = parseJson(dir, CONFIG, (await readFile(dir, CONFIG)).toString("utf8"));
  const m = await readTensors(dir, MODEL);
  const model = Object.fromEntries(Object.entries(m.tensors).map(([k, a]) => [k, new Tensor(a, m.shapes[k])]));
  const o = await readTensors(dir, OPTIM);
  if (o.metadata.meta === undefined) throw new CheckpointError(dir, `${OPTIM}: metadata has no "meta" entry; expected the optimizer's JSON scalars`);
  const meta = parseJson(dir, `${OPTIM} metadata "meta"`, o.metadata.meta);
  if (typeof meta !== "object" || meta === null || Array.isArray(meta)) throw new CheckpointError(dir, `${OPTIM}: metadata "meta" is not a JSON object`);
  const parsed = stateSchema.safeParse(parseJson(dir, STATE, (await readFile(dir, STATE)).toString("utf8")));
  if (!parsed.success) {
    const msgs = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new CheckpointError(dir, `${STATE} is invalid: ${msgs.join("; ")}`);
  }
  const extraFiles: Record<string, unknown> = {};
  for (const f of present.filter((n) => n.endsWith(".json") && !REQUIRED.includes(n)).sort()) {
    extraFiles[f] = parseJson(dir, f, (await readFile(dir, f)).toString("utf8"));
  }
  return { config, model, optimizer: { tensors: o.tensors, meta: meta as Record<string, unknown> }, trainerState: parsed.data, extraFiles };
}
