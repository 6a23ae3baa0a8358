// `tsformer train`: train a TransformerLM on a text file with a character-level tokenizer (or the BPE
// tokenizer.json given by --tokenizer, e.g. from `tsformer tokenizer train`), writing
// checkpoint-<step>/ (with `last` and `best` links), metrics.jsonl and loss.svg to the run directory.
// A new run (the flags, a --config file or a --preset), a continued one (--resume: model, tokenizer,
// data and run directory from the checkpoint), or a new run from trained weights (--init-from).
// --mtp D trains D multi-token prediction modules with the model (DeepSeek-V3 §2.2, models/mtp.ts):
// each checkpoint's model.safetensors stays the plain model, the modules are its mtp.safetensors.

import { existsSync, realpathSync } from "node:fs";
import * as path from "node:path";
import {
  BATCHINGS, CharTokenizer, DocumentDataset, HFTokenizer, MTP_DEFAULT_WEIGHT, MTPLM, RandomGenerator, TokenDataset, TransformerLM, dataPath, generate, lmObjective, loadModel, loadTokenizer,
  mtpCheckpointParts, mtpObjective, parseModelConfig, readJsonFile, resolveCheckpointDir, train, type Batching, type ModelConfig, type Precision, type Tokenizer, type TrainOptions, type TrainSummary,
} from "../index.js";
import { InvalidArgumentError } from "commander";
import { cliSchedule, type LrSchedule } from "./args.js";
import { configFromObject, presetConfig, DEFAULT_PRESET } from "./presets.js";
import { readTextInput } from "./text-input.js";

/** Every flag is optional: what is not given comes from the checkpoint (--resume), else TRAIN_DEFAULTS. */
export interface TrainCliOptions {
  data?: string; out?: string; config?: string; preset?: string;
  dModel?: number; nLayers?: number; nHeads?: number; block?: number; dropout?: number;
  batch?: number; steps?: number; lr?: number; minLr?: number; warmup?: number; lrSchedule?: LrSchedule; cooldown?: number;
  accum?: number; evalInterval?: number; evalIters?: number; ckptInterval?: number; saveTotalLimit?: number;
  seed?: number; sampleTokens?: number; tokenizer?: string;
  resume?: string; initFrom?: string; overwrite?: boolean;
  /** Train on the text's documents (split at TinyStories' <|endoftext|>) instead of random stream windows. */
  batching?: Batching; packLen?: number;
  /** Gradient checkpointing (not a model shape: it overrides the config's, resumed runs included). */
  checkpointing?: ModelConfig["checkpointing"];
  precision?: Precision;
  /** Multi-token prediction: D modules trained with the model, their loss weighted by mtpWeight (lambda). */
  mtp?: number; mtpWeight?: number;
}

/** --batching padded | packed | unpadded. */
export function batchingArg(v: string): Batching {
  if (!(BATCHINGS as readonly string[]).includes(v)) throw new InvalidArgumentError(`--batching expects ${BATCHINGS.join(", ")}, got '${v}'`);
  return v as Batching;
}

/** --checkpointing none | block | N (runs of N blocks). */
export function checkpointingArg(v: string): NonNullable<ModelConfig["checkpointing"]> {
  if (v === "none" || v === "block") return v;
  const n = Number(v);
  if (v.trim() === "" || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`--checkpointing expects none, block or an integer >= 1 (blocks recomputed together), got '${v}'`);
  return { every: n };
}

// The embedded defaults (what `npm start` trains): the least-compute config that reached validation
// loss <= 1.70 in the PyTorch search of scripts/golden/train_ref.md (d 96, 3 layers, 3200 steps).
export const TRAIN_DEFAULTS = {
  data: "data/tinyshakespeare.txt", out: "runs/shakespeare-char",
  dModel: 96, nLayers: 3, nHeads: 4, block: 64, batch: 16, steps: 3200, lr: 4e-3, warmup: 100,
  accum: 1, evalInterval: 800, evalIters: 40, ckptInterval: 800, saveTotalLimit: 0, seed: 1337, dropout: 0, sampleTokens: 300,
};

/** The arguments of a run as saved in each checkpoint (training_args.json), so that --resume can continue it. */
type RunArgs = typeof TRAIN_DEFAULTS & { minLr?: number; lrSchedule?: LrSchedule; cooldown?: number; initFrom?: string; tokenizer?: string; batching?: Batching; packLen?: number; precision?: Precision; mtp?: number; mtpWeight?: number };
const ARGS_FILE = "training_args.json";
/** Flags that shape the model: a resumed run or --init-from takes them from the checkpoint. */
const MODEL_FLAGS = { dModel: "--d-model", nLayers: "--n-layers", nHeads: "--n-heads", dropout: "--dropout" } as const;
const flagName = (k: string) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** A path as given, or else the bundled file it names ("data/tinyshakespeare.txt"). */
export function bundled(file: string): string {
  return existsSync(file) || !file.startsWith("data/") ? file : dataPath(file.slice("data/".length));
}

/** A JSON file of the run (bounded, regular files only, one-line errors). */
function readJson(file: string, what: string): unknown {
  if (!existsSync(file)) throw new Error(`${what} ${file} does not exist`);
  try { return readJsonFile(file); } catch (e) { throw new Error(`${what}: ${(e as Error).message}`); }
}

/** A model taken from a checkpoint keeps its shape: a model flag that disagrees is refused. */
function refuseModelChanges(o: TrainCliOptions, cfg: ModelConfig, from: string, hint: string): void {
  if (o.config || o.preset) throw new Error(`${o.config ? "--config" : "--preset"} cannot change the model of ${from}; ${hint}`);
  for (const [k, flag] of Object.entries(MODEL_FLAGS) as [keyof typeof MODEL_FLAGS, string][]) {
    if (o[k] !== undefined && o[k] !== cfg[k]) throw new Error(`${flag} ${o[k]} conflicts with ${from}'s ${k} ${cfg[k]}: the model comes from ${from}; ${hint}`);
  }
}

/** A tokenizer a run can train with and save into its checkpoints. */
type RunTokenizer = CharTokenizer | HFTokenizer;

function runTokenizer(tok: Tokenizer, source: string): RunTokenizer {
  if (tok instanceof CharTokenizer || tok instanceof HFTokenizer) return tok;
  throw new Error(`${source}: training needs a character tokenizer or an HF tokenizer.json; got a ${tok.constructor.name}`);
}

/** The tokenizer files each checkpoint holds. */
function tokenizerFiles(tok: RunTokenizer): Record<string, unknown> {
  if (tok instanceof CharTokenizer) return { "tokenizer.json": tok.toJSON() };
  return { "tokenizer.json": tok.toJSON(), ...(tok.config ? { "tokenizer_config.json": tok.config } : {}) };
}

/** Text of the data file, encoded by the tokenizer; an unknown character says which tokenizer it is not in. */
function encodeData(tok: RunTokenizer, text: string, dataFile: string, tokSource: string): Int32Array {
  if (!(tok instanceof CharTokenizer)) return Int32Array.from(tok.encode(text));
  const unknown = [...new Set(text)].filter((ch) => !tok.vocab.includes(ch));
  if (unknown.length) {
    const shown = unknown.slice(0, 8).map((c) => JSON.stringify(c)).join(" ");
    throw new Error(`--data ${dataFile} has ${unknown.length} character${unknown.length > 1 ? "s" : ""} not in ${tokSource}'s tokenizer (${shown}${unknown.length > 8 ? " ..." : ""}): a different character set than the model was trained on`);
  }
  return Int32Array.from(tok.encode(text));
}

interface Plan { args: RunArgs; cfg: ModelConfig; tok: RunTokenizer; text: string; dataFile: string; weights?: TransformerLM; resume?: string }

async function plan(o: TrainCliOptions, log: (s: string) => void): Promise<Plan> {
  if (o.resume && o.initFrom) throw new Error("--resume and --init-from exclude each other: --resume continues a run, --init-from starts a new one from trained weights");
  const { resume: _r, overwrite: _w, ...flags } = o;
  const given = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined)) as Partial<RunArgs>;
  if (o.resume) {
    const ck = await resolveCheckpointDir(o.resume);
    const saved = readJson(path.join(ck, ARGS_FILE), `--resume: ${ARGS_FILE}`) as RunArgs;
    const cfg = parseModelConfig(readJson(path.join(ck, "config.json"), "--resume: config.json"), path.join(ck, "config.json"));
    if (!existsSync(path.join(ck, "tokenizer.json"))) throw new Error(`--resume: ${path.join(ck, "tokenizer.json")} does not exist`);
    const tok = runTokenizer(await loadTokenizer(path.join(ck, "tokenizer.json"), cfg.vocabSize), `--resume: ${ck}`);
    if (o.tokenizer) throw new Error(`--tokenizer cannot change the tokenizer of ${ck}: a resumed run keeps its own`);
    refuseModelChanges(o, cfg, ck, `use --init-from ${ck} to train a new run from its weights`);
    if (o.mtp !== undefined && o.mtp !== saved.mtp) {
      throw new Error(`--mtp ${o.mtp} conflicts with ${ck}, ${saved.mtp === undefined ? "a run without MTP modules" : `a run with --mtp ${saved.mtp}`}: a resumed run keeps its MTP modules; use --init-from ${ck} to train a new run from its weights`);
    }
    const runDir = path.dirname(realpathSync(ck)); // where the checkpoint is, even if the run was moved
    if (o.out !== undefined && path.resolve(o.out) !== runDir) throw new Error(`--out ${o.out} conflicts with --resume: the run continues in its own directory ${runDir}; use --init-from ${ck} to start a new run elsewhere`);
    const { out: _o, ...overrides } = given;
    for (const [k, v] of Object.entries(overrides)) if (JSON.stringify(v) !== JSON.stringify(saved[k as keyof RunArgs])) log(`resume: ${flagName(k)} ${v} overrides the checkpoint's ${saved[k as keyof RunArgs] ?? "(unset)"}`);
    const args = { ...saved, ...overrides, out: path.relative(".", runDir) || "." };
    log(`resume: model, tokenizer, data and run directory from ${ck}`);
    const { text, file } = readTextInput(bundled(args.data), "--data");
    return { args, cfg, tok, text, dataFile: file, resume: ck };
  }
  const args: RunArgs = { ...TRAIN_DEFAULTS, ...given } as RunArgs;
  if (o.initFrom) {
    const { model, tokenizer } = await loadModel(o.initFrom);
    if (!tokenizer) throw new Error(`--init-from ${o.initFrom}: the model has no tokenizer; expected a model directory with a tokenizer.json`);
    if (o.tokenizer) throw new Error(`--tokenizer cannot change the tokenizer of --init-from ${o.initFrom}: its weights belong to its own`);
    refuseModelChanges(o, model.config, o.initFrom, "train a fresh model without --init-from to change it");
    log(`init-from: weights, config and tokenizer from ${o.initFrom}; a fresh optimizer and schedule`);
    const { text, file } = readTextInput(bundled(args.data), "--data");
    return { args: { ...args, block: o.block ?? model.config.maxSeqLen }, cfg: model.config, tok: runTokenizer(tokenizer, `--init-from ${o.initFrom}`), text, dataFile: file, weights: model };
  }
  const { text, file } = readTextInput(bundled(args.data), "--data");
  const tok = o.tokenizer ? runTokenizer(await loadTokenizer(o.tokenizer), `--tokenizer ${o.tokenizer}`) : CharTokenizer.fromText(text);
  let cfg: ModelConfig;
  if (o.config) {
    if (o.preset) throw new Error(`--preset and --config exclude each other: put "preset": "${o.preset}" in ${o.config}`);
    cfg = configFromObject(readJson(o.config, "--config"), tok.vocabSize, o.config, log);
  } else {
    cfg = presetConfig(o.preset ?? DEFAULT_PRESET, { dModel: o.dModel, nLayers: o.nLayers, nHeads: o.nHeads, maxSeqLen: o.block, dropout: o.dropout }, tok.vocabSize,
      `the model (preset ${o.preset ?? DEFAULT_PRESET} with --d-model / --n-layers / --n-heads / --block / --dropout)`);
  }
  // The training context defaults to the model's.
  return { args: { ...args, block: o.block ?? cfg.maxSeqLen }, cfg, tok, text, dataFile: file };
}

/**
 * The run's data, 90% train / 10% validation: random windows of --block tokens from the text stream, or
 * with --batching its documents (TinyStories' <|endoftext|> separates them; BOS first when the
 * tokenizer has one, as llama2.c), --batch documents per batch; every document must fit the context.
 */
function trainData(args: RunArgs, tok: RunTokenizer, text: string, dataFile: string, tokSource: string): { options: Pick<TrainOptions, "train" | "val" | "blockSize" | "documents">; summary: string } {
  if (!args.batching) {
    if (args.packLen !== undefined) throw new Error("--pack-len needs --batching packed (or padded: a fixed row length)");
    const { train, val } = new TokenDataset(encodeData(tok, text, dataFile, tokSource), dataFile).split(0.1);
    return { options: { train, val, blockSize: args.block }, summary: `${train.length} train / ${val.length} val tokens` };
  }
  if (tok instanceof CharTokenizer) encodeData(tok, text, dataFile, tokSource);  // the unknown-character check
  const docs = DocumentDataset.fromText(text, tok, { name: `--data ${dataFile}` });
  const { min, median, max } = docs.lengthStats();
  if (max - 1 > args.block) throw new Error(`--data ${dataFile}: the longest document has ${max} tokens (${max - 1} input positions), above the context --block ${args.block}; raise --block (and the model's context) to at least ${max - 1}`);
  const packLen = args.batching === "packed" ? args.packLen ?? args.block : args.packLen;
  if (packLen !== undefined && packLen > args.block) throw new Error(`--pack-len ${packLen} exceeds the context --block ${args.block}`);
  if (packLen !== undefined && packLen < max - 1) throw new Error(`--pack-len ${packLen} is below the longest document of --data ${dataFile}: ${max} tokens, ${max - 1} input positions (its last token is only a target); use at least ${max - 1}`);
  const { train, val } = docs.split(0.1);
  return {
    options: { documents: { train, val, batching: args.batching, packLen } },
    summary: `${train.length} train / ${val.length} val documents (${min} / ${median} / ${max} tokens min / median / max), ${args.batching} batches${packLen ? ` of length ${packLen}` : ""}`,
  };
}

/**
 * --mtp D: the model wrapped with D MTP modules, trained on the main loss + lambda / D * the modules'
 * (mtpObjective), evaluated on the main loss alone, checkpointed as base + mtp.safetensors.
 */
function mtpTraining(model: TransformerLM, args: RunArgs, log: (s: string) => void): Required<Pick<TrainOptions<MTPLM>, "model" | "objective" | "evalObjective" | "checkpointParts">> | null {
  if (args.mtpWeight !== undefined && args.mtp === undefined) throw new Error("--mtp-weight needs --mtp D (the number of MTP modules)");
  if (args.mtp === undefined) return null;
  if (args.batching === "packed" || args.batching === "unpadded") throw new Error(`--mtp needs padded rows or stream windows: --batching ${args.batching} lays documents end to end, so a module's input and target would cross into the next document; use --batching padded`);
  const lm = new MTPLM(model, { depth: args.mtp, weight: args.mtpWeight ?? MTP_DEFAULT_WEIGHT, generator: new RandomGenerator(args.seed + 11) });
  log(`mtp: ${lm.mtp.depth} MTP modules, loss weight ${lm.weight}: ${(lm.mtp.numParameters() / 1e6).toFixed(3)}M parameters (saved as mtp.safetensors; validation loss is the main model's)`);
  return { model: lm, objective: mtpObjective, evalObjective: lmObjective, checkpointParts: mtpCheckpointParts(lm) };
}

export async function runTrain(o: TrainCliOptions, log = console.log): Promise<{ summary: TrainSummary; sample: string; model: TransformerLM; runDir: string }> {
  const { checkpointing, ...rest } = o;
  const { args, cfg: planned, tok, text, dataFile, weights, resume } = await plan(rest, log);
  const cfg = checkpointing === undefined ? planned : { ...planned, checkpointing };
  if (args.block > cfg.maxSeqLen) throw new Error(`--block ${args.block} exceeds the model's maxSeqLen ${cfg.maxSeqLen}`);
  const model = new TransformerLM(cfg, { generator: new RandomGenerator(args.seed), dropoutGenerator: new RandomGenerator(args.seed + 7) });
  if (weights) model.loadStateDict(weights.stateDict());
  log(`model: ${cfg.nLayers} layers, d=${cfg.dModel}, ${cfg.nHeads} heads, context ${cfg.maxSeqLen}, vocab ${cfg.vocabSize}: ${(model.numParameters() / 1e6).toFixed(3)}M parameters`);
  const mtp = mtpTraining(model, args, log);
  const data = trainData(args, tok, text, dataFile, resume ?? o.initFrom ?? "the data");
  log(`data: ${dataFile}: ${data.summary}; run dir ${args.out}`);
  const saved: RunArgs = { ...args, data: path.resolve(dataFile), dModel: cfg.dModel, nLayers: cfg.nLayers, nHeads: cfg.nHeads, dropout: cfg.dropout,
    ...(mtp ? { mtpWeight: mtp.model.weight } : {}) };
  const run = {
    modelConfig: cfg, ...data.options, runDir: args.out, overwrite: o.overwrite, saveTotalLimit: args.saveTotalLimit,
    batchSize: args.batch, maxSteps: args.steps, accumSteps: args.accum,
    schedule: cliSchedule({ kind: args.lrSchedule, lr: args.lr, minLr: args.minLr ?? args.lr / 10, warmup: args.warmup, steps: args.steps, cooldown: args.cooldown }),
    // beta2 0.99 is explicit: nanoGPT's shakespeare-char preset (AdamW's own default is torch's 0.999).
    optim: { kind: "adamw" as const, weightDecay: 0.1, beta1: 0.9, beta2: 0.99 },
    evalInterval: args.evalInterval, evalIters: args.evalIters, ckptInterval: args.ckptInterval, seed: args.seed,
    precision: args.precision, resume, extraFiles: { ...tokenizerFiles(tok), [ARGS_FILE]: saved },
  };
  const summary = mtp ? await train({ ...run, ...mtp }) : await train({ ...run, model });
  const newline = tok.encode("\n");
  const prompt = tok instanceof CharTokenizer ? tok.encode(tok.vocab.includes("\n") ? "\n" : tok.vocab[0]!) : newline.length ? newline : [tok.bosId ?? 0];
  const sample = tok.decode(generate(model, prompt, { maxNewTokens: args.sampleTokens, temperature: 0.8, topK: 40, seed: args.seed }).ids);
  return { summary, sample, model, runDir: args.out };
}

/** The end-of-run table: steps, time, throughput, losses and where things were written. */
export function formatSummary(s: TrainSummary, runDir: string): string {
  const rel = (p: string | null) => (p === null ? "(none)" : p);
  const rows: [string, string][] = [
    ["steps", `${s.steps} this session, ${s.finalStep} in all`],
    ["time", `${s.seconds.toFixed(1)} s`],
    ["tokens/s", s.tokensPerSec.toFixed(0)],
    ["train loss", s.trainLoss.toFixed(4)],
    ["validation loss", s.valLoss === null ? "(no validation data)" : `${s.valLoss.toFixed(4)} (best ${s.bestValLoss?.toFixed(4)})`],
    ["checkpoint", rel(s.checkpoint)],
    ["best checkpoint", rel(s.bestCheckpoint)],
    ["links", `${path.join(runDir, "last")}, ${path.join(runDir, "best")}`],
    ["metrics", path.join(runDir, "metrics.jsonl")],
    ["loss plot", path.join(runDir, "loss.svg")],
  ];
  return rows.map(([k, v]) => `${k.padEnd(16)} ${v}`).join("\n");
}
