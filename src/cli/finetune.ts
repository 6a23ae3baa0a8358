// `tsformer finetune`: parameter-efficient fine-tuning of a trained model on a text file. The base is
// frozen (no weight-gradient GEMMs, no optimizer state for it); the method's parameters train with the
// same trainer as `train` (progress, evaluation, checkpoints, exact resume). Each checkpoint holds the
// trainable parameters and their optimizer state, plus the adapter as PEFT files, so
// `--adapter RUN/best` works for generate / eval / chat and `merge`.

import * as path from "node:path";
import {
  CharTokenizer, TokenDataset, applyPeft, formatTrainable, generate, loadModel, peftFiles, readJsonFile,
  resolveCheckpointDir, train, trainableParameters, PEFT_METHODS, type ModelConfig, type PeftSpec, type Precision, type TrainSummary,
} from "../index.js";
import { bundled } from "./train.js";
import { readTextInput } from "./text-input.js";
import { cliSchedule, type LrSchedule } from "./args.js";

export interface FinetuneCliOptions {
  model?: string; data?: string; out?: string; method?: string; r?: number; alpha?: number; dropout?: number;
  target?: string; rslora?: boolean; bias?: string; modulesToSave?: string; bottleneck?: number; virtualTokens?: number;
  prefixHidden?: number; heads?: number; steps?: number; lr?: number; batch?: number; block?: number; warmup?: number; lrSchedule?: LrSchedule; cooldown?: number;
  evalInterval?: number; evalIters?: number; ckptInterval?: number; seed?: number; sampleTokens?: number;
  resume?: string; overwrite?: boolean; checkpointing?: ModelConfig["checkpointing"]; precision?: Precision;
}

export const FINETUNE_DEFAULTS = {
  method: "lora", r: 8, alpha: 16, dropout: 0, steps: 300, lr: 1e-3, batch: 8, warmup: 20, evalInterval: 100,
  evalIters: 10, ckptInterval: 0, seed: 1337, sampleTokens: 100, out: "runs/finetune",
};

type Args = typeof FINETUNE_DEFAULTS & Omit<FinetuneCliOptions, "resume" | "overwrite"> & { model: string; data: string; block: number };
const ARGS_FILE = "training_args.json";

/** The method's spec from the flags (defaults: LoRA r 8, alpha 16 on the attention's query and value projections). */
function spec(a: Args): PeftSpec {
  const method = a.method;
  if (!(PEFT_METHODS as readonly string[]).includes(method)) throw new Error(`--method ${JSON.stringify(method)}: expected one of ${PEFT_METHODS.join(", ")}`);
  const list = (s: string | undefined) => s?.split(",").map((t) => t.trim()).filter(Boolean);
  return {
    method: method as PeftSpec["method"], r: a.r, alpha: a.alpha, dropout: a.dropout, targetModules: list(a.target), rslora: a.rslora,
    bias: a.bias as PeftSpec["bias"], modulesToSave: list(a.modulesToSave), bottleneck: a.bottleneck, virtualTokens: a.virtualTokens, prefixHidden: a.prefixHidden,
    heads: a.heads,
  };
}

export async function runFinetune(o: FinetuneCliOptions, log = console.log): Promise<{ summary: TrainSummary; sample: string; runDir: string }> {
  const { resume: _r, overwrite: _w, ...flags } = o;
  const given = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined)) as Partial<Args>;
  let args: Args, ck: string | undefined;
  if (o.resume) {
    ck = await resolveCheckpointDir(o.resume);
    const saved = readJsonFile(path.join(ck, ARGS_FILE)) as Args;
    for (const k of ["model", "method", "r", "alpha", "target", "bottleneck", "virtualTokens", "prefixHidden", "heads", "rslora", "bias", "modulesToSave"] as const) {
      if (given[k] !== undefined && JSON.stringify(given[k]) !== JSON.stringify(saved[k])) throw new Error(`--${k} ${given[k]} conflicts with ${ck}'s ${saved[k] ?? "(unset)"}: a resumed fine-tune keeps its base and method`);
    }
    args = { ...saved, ...given, out: path.relative(".", path.dirname(ck)) || "." };
  } else {
    if (!given.model) throw new Error("--model is required: the base model to fine-tune");
    if (!given.data) throw new Error("--data is required: the text to fine-tune on");
    args = { ...FINETUNE_DEFAULTS, ...given, block: 0 } as Args;
  }
  const loaded = await loadModel(args.model);
  const { model, tokenizer } = loaded;
  if (!tokenizer) throw new Error(`--model ${args.model} has no tokenizer; fine-tuning needs the base's tokenizer`);
  // a training setting, not a shape: set on the loaded base, which no one else holds
  if (args.checkpointing !== undefined) model.config.checkpointing = args.checkpointing;
  const peft = applyPeft(model, spec(args));
  const ctx = peft.model.config.maxSeqLen;  // prefix / prompt tuning take their virtual tokens from the context
  args.block = given.block ?? (args.block || Math.min(128, ctx));
  if (args.block > ctx) throw new Error(`--block ${args.block} exceeds the model's context ${ctx}${ctx < model.config.maxSeqLen ? ` (${model.config.maxSeqLen} less the virtual tokens)` : ""}`);
  const { text, file } = readTextInput(bundled(args.data), "--data");
  if (tokenizer instanceof CharTokenizer) {
    const unknown = [...new Set(text)].filter((ch) => !tokenizer.vocab.includes(ch));
    if (unknown.length) throw new Error(`--data ${file} has characters the base's tokenizer lacks (${unknown.slice(0, 8).map((c) => JSON.stringify(c)).join(" ")})`);
  }
  const ids = Int32Array.from(tokenizer.encode(text));
  const { train: trainSet, val } = new TokenDataset(ids, file).split(0.1);
  log(`${args.method} on ${args.model}: ${formatTrainable(trainableParameters(peft.model, model))}`);
  log(`data: ${file}: ${trainSet.length} train / ${val.length} val tokens; run dir ${args.out}`);
  const saved = { ...args, model: path.resolve(args.model), data: path.resolve(file) };
  const summary = await train({
    model: peft.model, objective: peft.objective, modelConfig: model.config, train: trainSet, val, runDir: args.out, overwrite: o.overwrite,
    batchSize: args.batch, blockSize: args.block, maxSteps: args.steps,
    schedule: cliSchedule({ kind: args.lrSchedule, lr: args.lr, minLr: args.lr / 10, warmup: args.warmup, steps: args.steps, cooldown: args.cooldown }),
    optim: { kind: "adamw", weightDecay: 0 }, evalInterval: args.evalInterval, evalIters: args.evalIters, ckptInterval: args.ckptInterval,
    seed: args.seed, precision: args.precision, resume: ck, checkpointTrainableOnly: args.method !== "full",
    extraFiles: () => ({ ...peftFiles(model, peft, { baseModel: saved.model }), [ARGS_FILE]: saved }),
  });
  const bos = (tokenizer as { bosId?: number }).bosId;
  const prompt = bos !== undefined ? [bos] : tokenizer.encode("\n");
  const sample = tokenizer.decode(generate(peft.model, prompt, { maxNewTokens: args.sampleTokens, temperature: 0.8, topK: 40, seed: args.seed }).ids);
  return { summary, sample, runDir: args.out };
}
