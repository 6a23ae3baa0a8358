// The file kinds tsformer reads, each with its seed, its mutator and the commands run on a mutant.
// A workspace holds copies of the seeds (never the originals); the mutant replaces one file in it.
// New readers (PEFT adapters, ...) are one more entry here when they land.

import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { mutateJson, mutateJsonLines, mutateLlama2cModel, mutateLlama2cTokenizer, mutateSafetensors, mutateBytes, type Mutant, type Rng } from "./mutators.js";
import { chatTemplateMutator, mutateShardIndex } from "./mutators-hf.js";

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
  /** Relative to a workspace: the first weight shard of the sharded HF seed (SHARDED). */
  shard: string;
}

/** The HF seed directories (seeds.ts makes them with hf-seeds.mjs): one model.safetensors, and bf16 shards. */
export const HF = "hf", SHARDED = "hf-sharded";

export interface Target {
  name: string;
  /** node arguments, run with cwd = the workspace. */
  args: (s: Seeds) => string[];
  viaDriver: boolean;
  /** Read-only commands must leave the workspace exactly as it was. */
  readOnly: boolean;
  /** The command writes a checkpoint whose weights must stay finite. */
  writesCheckpoint?: boolean;
  /** Written to the command's stdin (else stdin is closed). */
  stdin?: string;
  /** The directory the command writes (relative to the workspace): nothing else may change, and a failed run leaves nothing. */
  output?: string;
  /** Run after a success: what the command wrote must load (its outcome must be success too). */
  verify?: Target;
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

// Hugging Face directories. generate is given --max-new-tokens: it follows generation_config.json's
// max_new_tokens otherwise, and a mutant asking for 10^8 tokens would stream them for hours.
const hfGenerate = (dir: string) => cli("generate", true, () => ["generate", "--model", dir, "--max-new-tokens", "4", "--prompt", "Once", "--seed", "1"]);
const hfEval = cli("eval", true, () => ["eval", "--model", HF, "--text", "text.txt"]);
const hfChat: Target = { ...cli("chat", true, () => ["chat", "--model", HF, "--max-new-tokens", "2", "--seed", "1", "--system", "Tell stories."]), stdin: "Hi there\nTell me about a cat\n" };
// convert writes a fresh directory, which must then load; to hf where config.json and
// generation_config.json are written back (their unmapped fields kept), else to tsformer.
const hfConvert = (dir: string, to: "tsformer" | "hf" = "tsformer"): Target => ({
  ...cli(`convert-${to}`, false, () => ["convert", "--from", dir, "--to", to, `converted-${to}`]),
  output: `converted-${to}`, verify: driver("loadModel", () => [`converted-${to}`]),
});
const hfLoad = (dir: string) => driver("loadModel", () => [dir]);

/** Fragments of real chat templates (the fixtures), spliced into the seed's template by its mutator. */
const TEMPLATES = fileURLToPath(new URL("../../test/fixtures/chat-templates/", import.meta.url));
const templateFragments = readdirSync(TEMPLATES, { withFileTypes: true }).filter((e) => e.isDirectory())
  .flatMap((e) => (JSON.parse(readFileSync(join(TEMPLATES, e.name, "tokenizer_config.json"), "utf8")) as { chat_template: string }).chat_template.match(/\{[{%][\s\S]*?[%}]\}/g) ?? []);

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
  { name: "hf-config.json", file: () => join(HF, "config.json"), mutate: mutateJson, targets: [hfGenerate(HF), hfEval, hfLoad(HF), hfChat, hfConvert(HF), hfConvert(HF, "hf")] },
  { name: "generation_config.json", file: () => join(HF, "generation_config.json"), mutate: mutateJson, targets: [hfGenerate(HF), hfChat, hfConvert(HF, "hf")] },
  { name: "model.safetensors.index.json", file: () => join(SHARDED, "model.safetensors.index.json"), mutate: mutateShardIndex, targets: [hfLoad(SHARDED), hfGenerate(SHARDED), hfConvert(SHARDED)] },
  { name: "hf-shard", file: (s) => s.shard, mutate: mutateSafetensors, targets: [hfLoad(SHARDED), hfGenerate(SHARDED), hfConvert(SHARDED)] },
  { name: "hf-tokenizer.json", file: () => join(HF, "tokenizer.json"), mutate: mutateJson, targets: [hfGenerate(HF), hfEval, driver("hfTokenizer", () => [join(HF, "tokenizer.json"), "text.txt"]), hfChat, hfConvert(HF)] },
  { name: "tokenizer_config.json", file: () => join(HF, "tokenizer_config.json"), mutate: chatTemplateMutator(templateFragments), targets: [driver("chatTemplate", () => [join(HF, "tokenizer_config.json")]), hfChat, hfGenerate(HF), hfConvert(HF)] },
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
