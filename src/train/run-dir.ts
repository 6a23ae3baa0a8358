// A run directory belongs to one run:
//   metrics.jsonl, loss.svg     the run's records and plot
//   checkpoint-<step>/          checkpoints (io/checkpoint.ts), the oldest pruned beyond saveTotalLimit
//   last -> checkpoint-<step>   symlink to the newest checkpoint (what `--resume DIR` and README commands use)
//   best -> checkpoint-<step>   symlink to the checkpoint with the lowest validation loss
// The links are relative symlinks (the run directory can be moved), replaced atomically (a new link
// renamed over the old); on Windows they are directory junctions, which need no privilege.

import { promises as fs } from "node:fs";
import * as path from "node:path";

export const LAST = "last", BEST = "best";
export const checkpointName = (step: number) => `checkpoint-${step}`;
const CKPT = /^checkpoint-(\d+)$/;
/** What a run writes (and --overwrite removes); leftovers of an interrupted save or link included. */
const RUN_FILE = /^(metrics\.jsonl|loss\.svg|best|last|checkpoint(-\d+)?)(\.(tmp|old)-.*)?$/;

const exists = (p: string) => fs.lstat(p).then(() => true, () => false);

/** Refuse a directory that holds another run, unless `overwrite` (then its run files are removed;
 * other files are left alone). */
export async function claimRunDir(runDir: string, overwrite: boolean): Promise<string[]> {
  const names = (await fs.readdir(runDir).catch(() => [] as string[])).filter((n) => RUN_FILE.test(n)).sort();
  if (names.length === 0) return [];
  if (!overwrite) {
    throw new Error(`train: ${runDir} holds another run (${names.slice(0, 4).join(", ")}${names.length > 4 ? ", ..." : ""}); `
      + `use --overwrite to replace it (train option overwrite), --resume ${runDir} to continue it, or another directory`);
  }
  for (const n of names) await fs.rm(path.join(runDir, n), { recursive: true, force: true });
  return names;
}

/** A checkpoint directory as given, or a run directory's `last` checkpoint; without the link (a crash
 * between saving and linking) its highest checkpoint-<step>. */
export async function resolveCheckpointDir(dir: string): Promise<string> {
  if (await exists(path.join(dir, "trainer_state.json"))) return dir;
  if (await fs.stat(path.join(dir, LAST)).then(() => true, () => false)) return path.join(dir, LAST);
  const steps = (await fs.readdir(dir).catch(() => [] as string[])).map((n) => n.match(CKPT)).filter((m) => m !== null).map((m) => Number(m[1]));
  return steps.length ? path.join(dir, checkpointName(Math.max(...steps))) : dir;
}

/** Point `runDir/name` at `target` (a name inside runDir), atomically. */
export async function linkCheckpoint(runDir: string, name: string, target: string): Promise<void> {
  const p = path.join(runDir, name), tmp = `${p}.tmp-${process.pid}`;
  await fs.rm(tmp, { force: true });
  if (process.platform === "win32") await fs.symlink(path.resolve(runDir, target), tmp, "junction");
  else await fs.symlink(target, tmp, "dir");
  await fs.rename(tmp, p);
}

/** Step of the checkpoint `runDir/name` points at, or null. */
export async function linkedStep(runDir: string, name: string): Promise<number | null> {
  const target = await fs.readlink(path.join(runDir, name)).catch(() => null);
  const m = target === null ? null : path.basename(target).match(CKPT);
  return m ? Number(m[1]) : null;
}

/** Delete the oldest checkpoint-<step> directories beyond `limit` (0 = keep all), never one in `keep`. */
export async function pruneCheckpoints(runDir: string, limit: number, keep: (number | null)[]): Promise<string[]> {
  if (limit <= 0) return [];
  const steps = (await fs.readdir(runDir)).map((n) => n.match(CKPT)).filter((m) => m !== null).map((m) => Number(m[1])).sort((a, b) => a - b);
  const removed: string[] = [];
  for (const s of steps) {
    if (steps.length - removed.length <= limit) break;
    if (keep.includes(s)) continue;
    await fs.rm(path.join(runDir, checkpointName(s)), { recursive: true, force: true });
    removed.push(checkpointName(s));
  }
  return removed;
}
