// The file kinds tsformer reads, each with its seed, its mutator and the commands run on a mutant.
// A workspace holds copies of the seeds (never the originals); the mutant replaces one file in it.
// New readers (HF config / weights, PEFT adapters) are one more entry here when they land.

import { cpSync, mkdirSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { mutateJson, mutateJsonLines, mutateLlama2cModel, mutateLlama2cTokenizer, mutateSafetensors, mutateBytes, type Mutant, type Rng } from "./mutators.js";

/** The seed files (made once per fuzz run) and the paths the harness runs. */
export interface Seeds {
  dir: string;
  /** Relative to a workspace: the checkpoint directory inside the copied run directory. */
  ck: string;
  /** Absolute: the training text of the seed run (resume reads it again). */
  data: string;
  /** node arguments starting the CLI / the loader driver on the tsformer under test. */
  cli: string[];
  driver: string[];
}

export interface Target {
  name: string;
  /** node arguments, run with cwd = the workspace. */
  args: (s: Seeds) => string[];
  viaDriver: boolean;
  /** Read-only commands must leave the workspace exactly as it was. */
  readOnly: boolean;
  /** The command writes a checkpoint whose weights must stay finite. */
  writesCheckpoint?: boolean;
}

export interface Kind {
  name: string;
  /** The mutated file, relative to a workspace. */
  file: (s: Seeds) => string;
  mutate: (bytes: Uint8Array, r: Rng) => Mutant;
  /** Read-only targets first: a later target may change the workspace. */
  targets: Target[];
}

const cli = (name: string, readOnly: boolean, args: (s: Seeds) => string[], writesCheckpoint = false): Target =>
  ({ name, viaDriver: false, readOnly, writesCheckpoint, args: (s) => [...s.cli, ...args(s)] });
const driver = (action: string, args: (s: Seeds) => string[]): Target =>
  ({ name: action, viaDriver: true, readOnly: true, args: (s) => [...s.driver, action, ...args(s)] });

const ckGenerate = cli("generate", true, (s) => ["generate", "--model", s.ck, "--max-new-tokens", "2", "--prompt", "e", "--seed", "1"]);
const ckEval = cli("eval", true, (s) => ["eval", "--model", s.ck, "--text", "text.txt"]);
const resume = cli("resume", false, (s) => ["train", "--resume", s.ck, "--steps", "3", "--out", "run", "--data", s.data, "--eval-iters", "1", "--sample-tokens", "1"], true);
const binGenerate = cli("generate", true, () => ["generate", "--model", "model.bin", "--tokenizer", "tok512.bin", "--max-new-tokens", "2", "--prompt", "Once", "--seed", "1"]);
const binEval = cli("eval", true, () => ["eval", "--model", "model.bin", "--tokenizer", "tok512.bin", "--text", "text.txt"]);
const trainData = cli("train-data", false, () => ["train", "--data", "text.txt", "--out", "newrun", "--steps", "1", "--d-model", "8", "--n-layers", "1", "--n-heads", "2",
  "--block", "8", "--batch", "1", "--eval-interval", "1", "--eval-iters", "1", "--sample-tokens", "1"], true);

const inCk = (f: string) => (s: Seeds) => join(s.ck, f);

export const KINDS: Kind[] = [
  { name: "safetensors", file: inCk("model.safetensors"), mutate: mutateSafetensors, targets: [ckGenerate, driver("readSafetensors", (s) => [join(s.ck, "model.safetensors")]), resume] },
  { name: "optimizer", file: inCk("optimizer.safetensors"), mutate: mutateSafetensors, targets: [driver("loadCheckpoint", (s) => [s.ck]), resume] },
  { name: "config.json", file: inCk("config.json"), mutate: mutateJson, targets: [ckGenerate, driver("loadModel", (s) => [s.ck]), resume] },
  { name: "trainer_state.json", file: inCk("trainer_state.json"), mutate: mutateJson, targets: [driver("loadCheckpoint", (s) => [s.ck]), resume] },
  { name: "tokenizer.json", file: inCk("tokenizer.json"), mutate: mutateJson, targets: [ckGenerate, ckEval, driver("charTokenizer", (s) => [join(s.ck, "tokenizer.json")])] },
  { name: "metrics.jsonl", file: () => "run/metrics.jsonl", mutate: mutateJsonLines, targets: [resume] },
  { name: "llama2c-model", file: () => "model.bin", mutate: mutateLlama2cModel, targets: [binGenerate, driver("readLlama2c", () => ["model.bin"]), binEval] },
  { name: "llama2c-tokenizer", file: () => "tok512.bin", mutate: mutateLlama2cTokenizer, targets: [binGenerate, driver("llama2cTokenizer", () => ["tok512.bin", "512"])] },
  { name: "text", file: () => "text.txt", mutate: mutateBytes, targets: [ckEval, trainData] },
];

/** A fresh workspace: every seed copied in (the run directory with its relative links kept), then the mutant written over `file`. */
export function makeWorkspace(ws: string, seeds: Seeds, file: string, mutant: Mutant): void {
  mkdirSync(ws, { recursive: true });
  for (const f of readdirSync(seeds.dir)) {
    if (f === "data.txt") continue; // read in place (resume needs the seed run's own path)
    cpSync(join(seeds.dir, f), join(ws, f), { recursive: true, verbatimSymlinks: true });
  }
  // A stale temp and backup directory of a process that is not running (pids above Linux's pid_max),
  // holding a user's file: read-only commands must leave them alone.
  for (const suffix of [".tmp-4194400", ".old-4194401"]) {
    mkdirSync(join(ws, `${seeds.ck}${suffix}`), { recursive: true });
    writeFileSync(join(ws, `${seeds.ck}${suffix}`, "notes.txt"), "user data\n");
  }
  const target = join(ws, file);
  mkdirSync(dirname(target), { recursive: true });
  rmSync(target, { force: true });
  if ("link" in mutant) symlinkSync(mutant.link, target);
  else writeFileSync(target, mutant.bytes);
}

/** name -> size:mtime of every entry under dir (symlinks not followed): what a read-only command must not change. */
export function snapshot(dir: string, rel = "", out = new Map<string, string>()): Map<string, string> {
  for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
    const p = join(rel, e.name);
    if (e.isSymbolicLink()) { out.set(p, "link"); continue; }
    const st = statSync(join(dir, p));
    out.set(p, e.isDirectory() ? "dir" : `${st.size}:${st.mtimeMs}`);
    if (e.isDirectory()) snapshot(dir, p, out);
  }
  return out;
}
