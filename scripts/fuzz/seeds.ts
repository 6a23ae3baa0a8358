// The fuzz run's inputs: a build of the current sources (plain node children start in a third of the
// time tsx needs) and the seed files — a tiny checkpoint trained for 2 steps by the CLI, copies of the
// bundled llama2.c model and tokenizer, a short text, and two HF directories (hf-seeds.mjs).

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { HF, SHARDED, snapshot, type Seeds } from "./kinds.js";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const DRIVER = fileURLToPath(new URL("./driver.mjs", import.meta.url));
const HF_SEEDS = fileURLToPath(new URL("./hf-seeds.mjs", import.meta.url));

/** Compiles src/ into `dir` (inside the package, so the native addon and data are found from it). */
export function buildSources(dir: string): void {
  const tsc = join(ROOT, "node_modules/typescript/bin/tsc");
  const r = spawnSync(process.execPath, [tsc, "-p", join(ROOT, "tsconfig.json"), "--outDir", dir, "--declaration", "false", "--sourceMap", "false"], { encoding: "utf8" });
  if (!existsSync(join(dir, "cli/main.js"))) throw new Error(`fuzz: building src/ failed:\n${r.stdout}${r.stderr}`);
  // tsc emits despite type errors; other sessions' edits in progress may cause some.
  if (r.status !== 0) console.error(`fuzz: tsc reported type errors; fuzzing the emitted JavaScript (${r.stdout.split("\n").length} lines of tsc output)`);
}

/** The newest checkpoint of a run directory: its `last` link, else the directory holding model.safetensors. */
function findCheckpoint(run: string): string {
  if (existsSync(join(run, "last"))) return join(run, readlinkSync(join(run, "last")));
  const found = [...snapshot(run).keys()].filter((p) => p.endsWith("model.safetensors")).sort();
  if (!found.length) throw new Error(`fuzz: the seed run ${run} wrote no checkpoint`);
  return join(run, found[found.length - 1]!, "..");
}

/** Makes the seed files in dir; the tiny checkpoint comes from `tsformer train` (2 steps). */
export function makeSeeds(dir: string, build: string): Seeds {
  mkdirSync(dir, { recursive: true });
  const shakespeare = readFileSync(join(ROOT, "data/tinyshakespeare.txt"), "utf8");
  writeFileSync(join(dir, "data.txt"), shakespeare.slice(0, 20_000));
  writeFileSync(join(dir, "text.txt"), shakespeare.slice(0, 1500));
  copyFileSync(join(ROOT, "data/stories260K.bin"), join(dir, "model.bin"));
  copyFileSync(join(ROOT, "data/tok512.bin"), join(dir, "tok512.bin"));
  const cli = [join(build, "cli/main.js")];
  const run = join(dir, "run");
  const r = spawnSync(process.execPath, [...cli, "train", "--data", join(dir, "data.txt"), "--out", run, "--steps", "2", "--d-model", "16", "--n-layers", "1",
    "--n-heads", "2", "--block", "16", "--batch", "2", "--eval-interval", "1", "--eval-iters", "1", "--sample-tokens", "1", "--seed", "7"],
  { cwd: dir, encoding: "utf8", env: { ...process.env, TSFORMER_THREADS: "1" } });
  if (r.status !== 0) throw new Error(`fuzz: training the seed checkpoint failed (exit ${r.status}):\n${r.stderr}`);
  const h = spawnSync(process.execPath, [HF_SEEDS, join(build, "index.js"), dir, ROOT], { encoding: "utf8", env: { ...process.env, TSFORMER_THREADS: "1" } });
  const shard = existsSync(join(dir, SHARDED)) ? readdirSync(join(dir, SHARDED)).find((f) => /^model-00001-of-\d+\.safetensors$/.test(f)) : undefined;
  if (h.status !== 0 || !existsSync(join(dir, HF)) || !shard) throw new Error(`fuzz: making the HF seeds failed (exit ${h.status}):\n${h.stderr}`);
  return { dir, ck: relative(dir, findCheckpoint(run)), data: join(dir, "data.txt"), cli, driver: [DRIVER, join(build, "index.js")], shard: join(SHARDED, shard) };
}

/** The same commands on the sources under tsx, for a failure's cmd.txt (the build is removed after the run). */
export function sourceCommands(seeds: Seeds): Seeds {
  const tsx = ["--import", import.meta.resolve("tsx")];
  return { ...seeds, cli: [...tsx, join(ROOT, "src/cli/main.ts")], driver: [...tsx, DRIVER, join(ROOT, "src/index.ts")] };
}

/** sha256 of every file under dir: the seeds must come out of a fuzz run unchanged. */
export function hashTree(dir: string): string {
  const h = createHash("sha256");
  for (const [p, v] of [...snapshot(dir)].sort()) {
    h.update(`${p}\0${v === "dir" || v === "link" ? v : readFileSync(join(dir, p)).toString("base64")}\0`);
  }
  return h.digest("hex");
}
