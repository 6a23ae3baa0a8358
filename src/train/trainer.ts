// The training loop (nanoGPT's train.py structure) for any model and objective (objectives.ts; default:
// the next-token loss of a CausalLM): scheduled lr, gradient accumulation, global-norm clipping,
// AdamW/SGD step, periodic loss estimates on train/val, metrics.jsonl (with the objective's auxiliary
// terms) + loss.svg, atomic checkpoints (checkpoint-<step>, `last` and `best` links: run-dir.ts; a
// wrapper's extra modules in files of their own: CheckpointParts) and exact resume.

import * as path from "node:path";
import type { Module } from "../nn/module.js";
import type { CausalLM } from "../models/causal-lm.js";
import { noGrad } from "../tensor/autograd.js";
import { tidy } from "../tensor/scope.js";
import type { RandomGenerator } from "../tensor/rng.js";
import type { Tensor } from "../tensor/tensor.js";
import { BatchSampler, type Sampler, type TokenDataset } from "../data/batches.js";
import { DocumentBatcher, type Batching, type DocumentDataset } from "../data/documents.js";
import { loadCheckpoint, loadCheckpointPart, saveCheckpoint } from "../io/checkpoint.js";
import { clipGradNorm } from "./clip.js";
import { appendMetrics, readMetrics, repairMetrics, writeLossPlot, type LossPoint, type MetricsRecord } from "./metrics.js";
import { AdamW, SGD, defaultParamGroups, type Optimizer } from "./optim.js";
import { createProgress, type Progress } from "./progress.js";
import { makeSchedule, type ScheduleConfig } from "./schedule.js";
import { lmObjective, type Objective } from "./objectives.js";
import { GradScaler, type GradScalerOptions } from "./grad-scaler.js";
import { autocast, parsePrecision, type Precision } from "../ops/autocast.js";
import { BEST, LAST, checkpointName, claimRunDir, linkCheckpoint, linkedStep, pruneCheckpoints, resolveCheckpointDir } from "./run-dir.js";

/** A trainable model; its dropoutGenerator (if any) is saved in checkpoints. */
export type TrainableModel = Module & { dropoutGenerator?: RandomGenerator };

export type OptimConfig =
  | { kind: "adamw"; weightDecay?: number; beta1?: number; beta2?: number; eps?: number }
  | { kind: "sgd"; weightDecay?: number; momentum?: number; nesterov?: boolean };

/**
 * gradNorm: global norm before clipping (null when clipping is off); aux: the objective's terms;
 * lossScale (fp16): the scale the step used, skipped: its gradients overflowed and no update was made.
 */
export interface StepInfo { step: number; loss: number; lr: number; gradNorm: number | null; aux?: Record<string, number>; lossScale?: number; skipped?: boolean }

export interface TrainOptions<M extends TrainableModel = CausalLM> {
  model: M;
  /** Loss (+ logged auxiliary terms) of one batch; default lmObjective (needs a CausalLM). */
  objective?: Objective<M>;
  /** Written to each checkpoint's config.json. */
  modelConfig: unknown;
  /** A token stream, sampled in random windows of blockSize (nanoGPT); or else `documents`. */
  train?: TokenDataset;
  val?: TokenDataset;
  /** Documents (data/documents.ts) batched batchSize at a time as padded rows, packed rows of packLen
   * or one unpadded row; the loss is the mean over real targets and tokens/s counts those. */
  documents?: DocumentTrainData;
  /** metrics.jsonl, loss.svg, checkpoint-<step>/ and the `last` / `best` links go here (run-dir.ts). */
  runDir: string;
  /** Replace the run already in runDir (its run files are deleted first); without it such a runDir is refused. */
  overwrite?: boolean;
  /** Keep at most this many checkpoint-<step> directories, deleting the oldest (never `best`); 0 = all. */
  saveTotalLimit?: number;
  /** Windows per batch, or documents per batch with `documents`. */
  batchSize: number;
  /** The stream windows' length (unused with `documents`). */
  blockSize?: number;
  maxSteps: number;
  accumSteps?: number;
  schedule: ScheduleConfig;
  /** Default AdamW with weightDecay 0.1 and AdamW's own betas and eps. */
  optim?: OptimConfig;
  /** Mixed precision (ops/autocast.ts): products of linear / matmul in bf16 or fp16; default fp32. */
  precision?: Precision;
  /** fp16's dynamic loss scaling (GradScaler's defaults: 2^16, x2 after 2000 clean steps, x0.5 on overflow). */
  gradScaler?: GradScalerOptions;
  /** Max global grad norm; 0 turns clipping off. Default 1. */
  gradClip?: number;
  /** Estimate losses every evalInterval steps and at the end (default: only at the end). */
  evalInterval?: number;
  evalIters?: number;
  /** Checkpoint every ckptInterval steps (0: only at the end). */
  ckptInterval?: number;
  /** Seed of the training batch sampler. */
  seed?: number;
  /** Dropout generator saved in checkpoints; defaults to model.dropoutGenerator when the model has one. */
  dropoutGenerator?: RandomGenerator;
  /** Checkpoint directory (or a run directory: its `last` checkpoint) to continue from; the run
   * continues in runDir, metrics.jsonl included. */
  resume?: string;
  /** Extra files written into every checkpoint (e.g. { "tokenizer.json": ... }); a function is called at each save. */
  extraFiles?: Record<string, unknown> | (() => Record<string, unknown>);
  /** Checkpoints hold only the parameters that train (an adapter's), not the frozen base. */
  checkpointTrainableOnly?: boolean;
  /** model.safetensors holds this part of the model and extra files the rest (default: all of `model` in model.safetensors). */
  checkpointParts?: CheckpointParts;
  /** The loss estimated on train / val at evaluations (default: objective's), e.g. the main LM loss of an objective with extra terms. */
  evalObjective?: Objective<M>;
  onStep?: (info: StepInfo) => void | Promise<void>;
  /** Called after each evaluation, with the model in eval mode (e.g. to print a sample). */
  onSample?: (step: number, model: M) => void | Promise<void>;
  /** Progress on stderr (default true); every: plain-line interval when stderr is not a TTY. */
  progress?: boolean;
  progressEvery?: number;
}

/**
 * How a checkpoint splits the trained model's state: `model`'s state is model.safetensors (under its own
 * names, so the checkpoint loads as that module alone: the base of a wrapper trained with extra modules,
 * models/mtp.ts MTPLM), and each of `files` is another module's state in an extra .safetensors file of
 * the checkpoint, with string metadata. Together they must hold the whole state of the trained model.
 */
export interface CheckpointParts {
  model: Module;
  files: Record<string, { module: Module; metadata?: Record<string, string> }>;
}

/** Refuses parts that leave some of the trained model's parameters or buffers out of every file. */
function checkParts(model: Module, parts: CheckpointParts): void {
  const held = new Set([parts.model, ...Object.values(parts.files).map((f) => f.module)].flatMap((m) => Object.values(m.stateDict())));
  const left = Object.entries(model.stateDict()).filter(([, t]) => !held.has(t)).map(([n]) => n);
  if (left.length) throw new RangeError(`train: checkpointParts leave out ${left.slice(0, 5).join(", ")}${left.length > 5 ? ` and ${left.length - 5} more` : ""}; every parameter and buffer must go to model.safetensors or a part file`);
}

export interface DocumentTrainData {
  train: DocumentDataset;
  val?: DocumentDataset;
  batching: Batching;
  /** packed: input positions per row (required); padded: a fixed row length (default: each batch's longest). */
  packLen?: number;
}

export interface TrainSummary {
  /** Steps run by this call, and the step reached. */
  steps: number;
  finalStep: number;
  trainLoss: number;
  valLoss: number | null;
  tokensPerSec: number;
  seconds: number;
  /** Lowest validation loss of the run (all evaluations, earlier sessions included). */
  bestValLoss: number | null;
  /** Newest checkpoint and the checkpoint with the lowest validation loss (null if none). */
  checkpoint: string | null;
  bestCheckpoint: string | null;
}

function positiveInt(name: string, v: number, min = 1): number {
  if (!Number.isSafeInteger(v) || v < min) throw new RangeError(`train: ${name} must be an integer >= ${min}, got ${v}`);
  return v;
}

function buildOptimizer(model: Module, cfg: OptimConfig): Optimizer {
  const groups = defaultParamGroups(model, cfg.weightDecay ?? 0.1);
  if (cfg.kind === "sgd") return new SGD(groups, { momentum: cfg.momentum, nesterov: cfg.nesterov });
  // Unset betas/eps defer to AdamW's own defaults (torch's 0.9 / 0.999 / 1e-8): one default in one place.
  // The CLI passes beta2 0.99 explicitly (nanoGPT's shakespeare-char preset).
  if (cfg.kind === "adamw") return new AdamW(groups, { beta1: cfg.beta1, beta2: cfg.beta2, eps: cfg.eps });
  throw new RangeError(`train: optim.kind must be "adamw" or "sgd", got ${JSON.stringify((cfg as { kind: unknown }).kind)}`);
}

/** Running mean of the objective's auxiliary terms over the micro-batches of one step. */
function addAux(sum: Record<string, number>, aux: Record<string, Tensor | number> | undefined, weight: number): void {
  for (const [k, v] of Object.entries(aux ?? {})) sum[k] = (sum[k] ?? 0) + (typeof v === "number" ? v : v.item()) * weight;
}

/** Loss-plot points of an earlier session up to `step`: a "resume" record drops what the interrupted
 * session did after its checkpoint. */
function replayPoints(records: MetricsRecord[], step: number): LossPoint[] {
  let points: LossPoint[] = [];
  for (const r of records) {
    const s = r.step as number;
    if (r.type === "resume") points = points.filter((p) => p.step <= s);
    else if (r.type === "train") points.push({ step: s, train: r.loss as number });
    else if (r.type === "eval") points.push({ step: s, val: (r.valLoss as number | null) ?? undefined });
  }
  return points.filter((p) => p.step <= step);
}

/** Mean loss over `iters` batches drawn from a fixed stream (same batches every evaluation). */
function estimateLoss<M extends TrainableModel>(model: M, objective: Objective<M>, sampler: Sampler, iters: number): number {
  sampler.setState({ seed: sampler.getState().seed, counter: 0 });
  return noGrad(() => {
    let sum = 0;
    for (let i = 0; i < iters; i++) {
      sum += tidy(() => {
        return objective(model, sampler.next()).loss.item();
      });
    }
    return sum / iters;
  });
}

/** The training sampler and the two fixed evaluation streams (train, val) of stream windows or documents. */
function makeSamplers(o: Pick<TrainOptions, "train" | "val" | "documents" | "batchSize" | "blockSize">, seed: number): { sampler: Sampler; evalTrain: Sampler; evalVal: Sampler | null } {
  const d = o.documents;
  if (d) {
    if (o.train || o.val) throw new RangeError("train: give either train / val (a token stream) or documents, not both");
    positiveInt("batchSize", o.batchSize);
    const mk = (data: DocumentDataset, s: number) => new DocumentBatcher(data, { batching: d.batching, docsPerBatch: o.batchSize, packLen: d.packLen, seed: s });
    return { sampler: mk(d.train, seed), evalTrain: mk(d.train, seed + 1), evalVal: d.val ? mk(d.val, seed + 2) : null };
  }
  if (!o.train) throw new RangeError("train: no data: give train (a TokenDataset) or documents");
  const T = positiveInt("blockSize", o.blockSize as number);
  return { sampler: new BatchSampler(o.train, o.batchSize, T, seed), evalTrain: new BatchSampler(o.train, o.batchSize, T, seed + 1), evalVal: o.val ? new BatchSampler(o.val, o.batchSize, T, seed + 2) : null };
}

export async function train<M extends TrainableModel = CausalLM>(opts: TrainOptions<M>): Promise<TrainSummary> {
  const { model, runDir, batchSize, blockSize, maxSteps, schedule: schedCfg } = opts;
  const objective = opts.objective ?? (lmObjective as unknown as Objective<M>);
  const evalObjective = opts.evalObjective ?? objective;
  const parts = opts.checkpointParts;
  if (parts) checkParts(model, parts);
  const saved = parts?.model ?? model;
  const accum = positiveInt("accumSteps", opts.accumSteps ?? 1);
  positiveInt("maxSteps", maxSteps, 0);
  const evalInterval = positiveInt("evalInterval", opts.evalInterval ?? Math.max(maxSteps, 1));
  const evalIters = positiveInt("evalIters", opts.evalIters ?? 10);
  const ckptInterval = positiveInt("ckptInterval", opts.ckptInterval ?? 0, 0);
  const saveTotalLimit = positiveInt("saveTotalLimit", opts.saveTotalLimit ?? 0, 0);
  const gradClip = opts.gradClip ?? 1;
  if (!(gradClip >= 0)) throw new RangeError(`train: gradClip must be >= 0, got ${gradClip}`);
  const seed = opts.seed ?? 1337;
  const optimCfg = opts.optim ?? { kind: "adamw" };
  const precision = parsePrecision(opts.precision ?? "fp32", "train: precision");
  if (precision !== "fp32" && model.parameters().some((p) => p.dtype !== "float32")) {
    throw new RangeError(`train: precision ${precision} needs a float32 model (its fp32 master weights); this model has ${model.parameters().find((p) => p.dtype !== "float32")!.dtype} parameters`);
  }
  if (opts.gradScaler && precision !== "fp16") throw new RangeError(`train: gradScaler is for precision fp16, got precision ${precision}`);
  const scaler = precision === "fp16" ? new GradScaler(opts.gradScaler) : null;
  const docs = opts.documents;
  const trainConfig = { batchSize, blockSize, maxSteps, accumSteps: accum, schedule: schedCfg, optim: optimCfg, gradClip, evalInterval, evalIters, ckptInterval, seed,
    ...(precision !== "fp32" ? { precision } : {}),
    ...(docs ? { batching: docs.batching, packLen: docs.packLen ?? null } : {}) };

  const lrAt = makeSchedule(schedCfg);
  const optimizer = buildOptimizer(model, optimCfg);
  const { sampler, evalTrain, evalVal } = makeSamplers(opts, seed);
  const dropoutGen = opts.dropoutGenerator ?? model.dropoutGenerator ?? null;

  let startStep = 0;
  let bestValLoss: number | null = null;
  /** The checkpoint `best` points at and its validation loss. */
  let bestCkpt: { step: number; val: number } | null = null;
  let lastCkpt: number | null = null;
  let points: LossPoint[] = [];
  if (!opts.resume) await claimRunDir(runDir, opts.overwrite ?? false);
  else {
    const from = await resolveCheckpointDir(opts.resume);
    const ck = await loadCheckpoint(from);
    const ts = ck.trainerState;
    try {
      if (opts.checkpointTrainableOnly) {
        // every trainable parameter must come from the checkpoint; the frozen base is the caller's
        const { missing, unexpected } = saved.loadStateDict(ck.model, { strict: false });
        const trainable = new Set(Object.keys(saved.stateDict({ trainableOnly: true })));
        const lacking = missing.filter((k) => trainable.has(k));
        if (lacking.length || unexpected.length) throw new Error(`${lacking.length ? `missing ${lacking.slice(0, 5).join(", ")}` : ""}${lacking.length && unexpected.length ? "; " : ""}${unexpected.length ? `unexpected ${unexpected.slice(0, 5).join(", ")}` : ""} (the checkpoint's trainable parameters do not fit this model)`);
      } else {
        saved.loadStateDict(ck.model);
      }
      for (const [name, { module }] of Object.entries(parts?.files ?? {})) {
        try { module.loadStateDict((await loadCheckpointPart(from, name)).state); } catch (e) { throw new Error(`${name}: ${(e as Error).message}`, { cause: e }); }
      }
      optimizer.loadStateDict(ck.optimizer);
    } catch (e) {
      throw new Error(`resume from checkpoint ${from}: ${(e as Error).message}`, { cause: e });
    }
    sampler.setState(ts.dataRng);
    if (dropoutGen && ts.dropoutRng) dropoutGen.setState(ts.dropoutRng);
    if (scaler && ts.gradScaler) scaler.loadStateDict(ts.gradScaler);
    startStep = ts.step;
    bestValLoss = ts.bestValLoss;
    const changed = Object.keys(trainConfig).filter((k) => k !== "maxSteps" && JSON.stringify(ts.trainConfig[k]) !== JSON.stringify(trainConfig[k as keyof typeof trainConfig]));
    if (changed.length) process.emitWarning(`resuming ${from} with different ${changed.join(", ")}: the run will not replay the original exactly`);
    const torn = await repairMetrics(runDir);
    if (torn) process.emitWarning(`${path.join(runDir, "metrics.jsonl")}: removed a torn last line (${torn} bytes) left by an interrupted run`);
    // Earlier points of the plot; records after the checkpoint step belong to the interrupted run.
    points = replayPoints(await readMetrics(runDir), startStep);
    const bestStep = await linkedStep(runDir, BEST);
    const bestVal = points.filter((p) => p.step === bestStep && p.val !== undefined).pop()?.val;
    if (bestStep !== null && bestVal !== undefined) bestCkpt = { step: bestStep, val: bestVal };
    lastCkpt = await linkedStep(runDir, LAST);
    await appendMetrics(runDir, { type: "resume", step: startStep, from });
  }

  const progress: Progress | null = opts.progress === false ? null
    : createProgress({ total: maxSteps, start: startStep, every: opts.progressEvery });
  const t0 = performance.now();
  let trainMs = 0, tokens = 0;
  let last = { trainLoss: NaN, valLoss: null as number | null };
  let lastEval: number | null = null;
  const tokensPerSec = () => (trainMs > 0 ? tokens / (trainMs / 1000) : 0);

  const evaluate = async (step: number) => {
    const wasTraining = model.training;
    model.eval();
    try {
      last = { trainLoss: estimateLoss(model, evalObjective, evalTrain, evalIters), valLoss: evalVal ? estimateLoss(model, evalObjective, evalVal, evalIters) : null };
      if (last.valLoss !== null && (bestValLoss === null || last.valLoss < bestValLoss)) bestValLoss = last.valLoss;
      await appendMetrics(runDir, { type: "eval", step, ...last });
      progress?.log(`step ${step}: train loss ${last.trainLoss.toFixed(4)}${last.valLoss === null ? "" : ` | validation loss ${last.valLoss.toFixed(4)}`}`);
      lastEval = step;
      points.push({ step, val: last.valLoss ?? undefined });
      await writeLossPlot(runDir, points);
      await opts.onSample?.(step, model);
    } finally {
      model.train(wasTraining);
    }
  };

  const save = async (step: number) => {
    await saveCheckpoint(path.join(runDir, checkpointName(step)), {
      config: opts.modelConfig,
      model: saved.stateDict(opts.checkpointTrainableOnly ? { trainableOnly: true } : {}),
      optimizer: optimizer.stateDict(),
      trainerState: { step, dataRng: sampler.getState(), dropoutRng: dropoutGen?.getState() ?? null, bestValLoss, trainConfig, ...(scaler ? { gradScaler: scaler.stateDict() } : {}) },
      extraFiles: typeof opts.extraFiles === "function" ? opts.extraFiles() : opts.extraFiles,
      parts: Object.fromEntries(Object.entries(parts?.files ?? {}).map(([name, f]) => [name, { state: f.module.stateDict(), metadata: f.metadata }])),
    });
    lastCkpt = step;
    await linkCheckpoint(runDir, LAST, checkpointName(step));
    // A checkpoint's validation loss is the evaluation's at its step (the loop evaluates before saving).
    const val = lastEval === step ? last.valLoss : null;
    if (val !== null && (bestCkpt === null || val < bestCkpt.val)) {
      bestCkpt = { step, val };
      await linkCheckpoint(runDir, BEST, checkpointName(step));
    }
    await pruneCheckpoints(runDir, saveTotalLimit, [step, bestCkpt?.step ?? null]);
  };

  model.train();
  optimizer.zeroGrad();
  try {
    for (let step = startStep; step < maxSteps; step++) {
      const ts = performance.now();
      const lr = lrAt(step);
      optimizer.setLr(lr);
      // One memory scope per step: its activations and gradients are recycled for the next step.
      const lossScale = scaler?.scale;
      const { loss, gradNorm, aux, skipped } = tidy(() => {
        let loss = 0;
        const aux: Record<string, number> = {};
        autocast(precision, () => {
          for (let micro = 0; micro < accum; micro++) {
            const batch = sampler.next();
            tokens += batch.tokens ?? batch.x.numel;
            const r = objective(model, batch);
            loss += r.loss.item() / accum;
            addAux(aux, r.aux, 1 / accum);
            r.loss.div(accum / (lossScale ?? 1)).backward();
          }
        });
        // fp16: an overflow (in the loss or the gradients) skips the step and backs the scale off
        if (scaler) {
          const finite = scaler.unscale(model.parameters());
          scaler.update(finite);
          if (!finite) {
            optimizer.zeroGrad();
            return { loss, gradNorm: null, aux, skipped: true };
          }
        }
        if (!Number.isFinite(loss)) throw new Error(`train: loss is ${loss} at step ${step + 1}; lower the learning rate or check the data`);
        const gradNorm = gradClip > 0 ? clipGradNorm(model.parameters(), gradClip) : null;
        optimizer.step();
        optimizer.zeroGrad();
        return { loss, gradNorm, aux, skipped: false };
      });
      trainMs += performance.now() - ts;

      const done = step + 1;
      const info: StepInfo = { step: done, loss, lr, gradNorm, ...(Object.keys(aux).length ? { aux } : {}), ...(scaler ? { lossScale, skipped } : {}) };
      await appendMetrics(runDir, { type: "train", ...info, tokensPerSec: tokensPerSec() });
      points.push({ step: done, train: loss });
      progress?.update(done, { loss, tokensPerSec: tokensPerSec() });
      await opts.onStep?.(info);
      if (done % evalInterval === 0 || done === maxSteps) await evaluate(done);
      if ((ckptInterval > 0 && done % ckptInterval === 0) || done === maxSteps) await save(done);
    }
    if (startStep >= maxSteps) await evaluate(startStep);
  } finally {
    progress?.stop();
  }
  return {
    steps: Math.max(maxSteps - startStep, 0), finalStep: Math.max(maxSteps, startStep),
    trainLoss: last.trainLoss, valLoss: last.valLoss, tokensPerSec: tokensPerSec(), seconds: (performance.now() - t0) / 1000,
    bestValLoss,
    checkpoint: lastCkpt === null ? null : path.join(runDir, checkpointName(lastCkpt)),
    bestCheckpoint: bestCkpt === null ? null : path.join(runDir, checkpointName(bestCkpt.step)),
  };
}
