// The driver behind `tsformer diffuse`: trains any registered image method (registry.ts) on MNIST and
// samples from a saved run. A run directory holds
//   checkpoint/     io/checkpoint.ts's atomic checkpoint: config.json = { method, config }, the module's
//                   state dict (buffers included, e.g. ActNorm's init flag), AdamW's state, trainer_state.json
//   metrics.jsonl   one line per step: { step, loss, lr }
// Exact resume: the model is rebuilt from its config and loaded, the optimizer restored, the loss's
// generator (noise, timesteps, dequantization) restored from trainer_state's dataRng, and the batch order
// replayed: MnistBatcher draws its epochs from a seed, so skipping `step` batches puts it where it was.
// So N steps in one go and K steps, stop, resume to N give bit-identical weights and losses.

import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { loadMnist, MnistBatcher, type MnistData } from "../data/mnist.js";
import { CheckpointError, loadCheckpoint, loadModelFiles, saveCheckpoint, type TrainerState } from "../io/checkpoint.js";
import { writeImageGrid } from "../io/png.js";
import type { Tensor } from "../tensor/tensor.js";
import { noGrad } from "../tensor/autograd.js";
import { RandomGenerator } from "../tensor/rng.js";
import { tidy } from "../tensor/scope.js";
import { clipGradNorm } from "../train/clip.js";
import { AdamW, defaultParamGroups } from "../train/optim.js";
import { makeSchedule } from "../train/schedule.js";
import { checkImageBatch, type ImageModel, type ImageSampleOptions } from "./image-method.js";
import { imageMethod } from "./registry.js";

/** The settings a run keeps for its whole life (a resume that changes one is refused). */
export interface ImageTrainSettings {
  /** Images per step. */
  batch: number;
  /** Peak learning rate of AdamW. */
  lr: number;
  /** Linear warmup steps (train/schedule.ts's formula). */
  warmup: number;
  /** Cosine decay to lr / 10 ending at this step (nanoGPT's schedule); 0 = constant after the warmup. */
  decaySteps: number;
  weightDecay: number;
  /** Global gradient-norm clip; 0 = off. */
  clip: number;
  /** Model init (seed), batch order (seed + 1), the loss's noise (seed + 2). */
  seed: number;
}

export const IMAGE_TRAIN_DEFAULTS: ImageTrainSettings = { batch: 64, lr: 1e-3, warmup: 0, decaySteps: 0, weightDecay: 0, clip: 1, seed: 0 };
const DEFAULT_STEPS = 2000;

export interface ImageTrainProgress {
  method: string;
  /** Steps completed, in all. */
  step: number;
  total: number;
  /** The step this session started from (0, or the resumed checkpoint's). */
  startStep: number;
  loss: number;
  lr: number;
  /** Seconds of this session so far. */
  seconds: number;
  imagesPerSec: number;
}

export interface TrainImagesOptions extends Partial<ImageTrainSettings> {
  /** Run directory (see the header). */
  out: string;
  /** A method name from registry.ts; with resume, it must be the run's own (or absent). */
  method?: string;
  /** Partial method config (defaults from the method); not with resume. */
  config?: Record<string, unknown>;
  /** Total steps of the run (a resumed run may raise it; default: the run's own, else 2000). */
  steps?: number;
  /** Continue the run in `out`; every setting comes from its checkpoint. */
  resume?: boolean;
  /** Save every n steps (0 = only at the end or when stopped). */
  saveEvery?: number;
  /** Train on the first `limit` MNIST training images (default: all 60000; a resumed run: its own). */
  limit?: number;
  onStep?: (p: ImageTrainProgress) => void;
  /** Polled after each step: true saves a checkpoint and ends the session (e.g. on Ctrl-C). */
  shouldStop?: () => boolean;
}

export interface ImageTrainResult {
  method: string;
  config: Record<string, unknown>;
  parameters: number;
  startStep: number;
  step: number;
  /** The losses of this session's steps. */
  losses: number[];
  seconds: number;
  checkpoint: string;
  /** True when shouldStop ended the session before `steps`. */
  stopped: boolean;
}

const CHECKPOINT = "checkpoint", METRICS = "metrics.jsonl";
const flag = (k: string) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

function checkSettings(s: ImageTrainSettings, steps: number, saveEvery: number): void {
  const bad = (k: string, v: unknown, expected: string) => new RangeError(`${flag(k)} is ${JSON.stringify(v)}; expected ${expected}`);
  for (const k of ["batch", "steps"] as const) {
    const v = k === "steps" ? steps : s[k];
    if (!Number.isSafeInteger(v) || v < 1) throw bad(k, v, "an integer >= 1");
  }
  for (const [k, v] of [["warmup", s.warmup], ["decaySteps", s.decaySteps], ["seed", s.seed], ["saveEvery", saveEvery]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw bad(k, v, "an integer >= 0");
  }
  if (s.decaySteps && s.decaySteps <= s.warmup) throw bad("decaySteps", s.decaySteps, `0 (no decay) or a step after the warmup (${s.warmup})`);
  if (!(s.lr > 0) || !Number.isFinite(s.lr)) throw bad("lr", s.lr, "a finite number > 0");
  for (const k of ["weightDecay", "clip"] as const) if (!(s[k] >= 0) || !Number.isFinite(s[k])) throw bad(k, s[k], "a finite number >= 0");
}

/** The checkpoint of a run directory (or the directory itself when it is one). */
export function runCheckpoint(dir: string): string {
  if (existsSync(path.join(dir, "config.json"))) return dir;
  const ck = path.join(dir, CHECKPOINT);
  if (!existsSync(ck)) throw new CheckpointError(dir, `holds no run: expected ${ck} (written by tsformer diffuse train) or a checkpoint directory`);
  return ck;
}

/** config.json of a run: the method and its resolved config. */
function runConfig(ck: string, config: unknown): { method: string; config: Record<string, unknown> } {
  const c = config as { method?: unknown; config?: unknown } | null;
  if (typeof c !== "object" || c === null || typeof c.method !== "string" || typeof c.config !== "object" || c.config === null || Array.isArray(c.config)) {
    throw new CheckpointError(ck, `config.json is not an image-method run's; expected {"method": "<name>", "config": {...}}`);
  }
  return { method: c.method, config: c.config as Record<string, unknown> };
}

/** Rebuild a run's model from its config and load its weights; errors name the checkpoint. */
function buildModel(ck: string, method: string, config: Record<string, unknown>, weights: Record<string, Tensor>, seed = 0): ImageModel {
  let model: ImageModel;
  try {
    model = imageMethod(method).create(config, seed);
  } catch (e) {
    throw new CheckpointError(ck, `config.json (method ${JSON.stringify(method)}) does not validate: ${(e as Error).message}`, { cause: e });
  }
  try {
    model.module.loadStateDict(weights);
  } catch (e) {
    throw new CheckpointError(ck, `model.safetensors does not fit the ${method} model of config.json: ${(e as Error).message}`, { cause: e });
  }
  return model;
}

/** Keep the metric lines up to `step` (those after a checkpoint belong to steps a resume redoes). */
function truncateMetrics(file: string, step: number): void {
  if (!existsSync(file)) return;
  const keep = readFileSync(file, "utf8").split("\n").filter((l) => l.trim() && (JSON.parse(l) as { step: number }).step <= step);
  writeFileSync(file, keep.map((l) => `${l}\n`).join(""));
}

export async function trainImages(o: TrainImagesOptions): Promise<ImageTrainResult> {
  const ckDir = path.join(o.out, CHECKPOINT), metrics = path.join(o.out, METRICS);
  const given = Object.fromEntries((Object.keys(IMAGE_TRAIN_DEFAULTS) as (keyof ImageTrainSettings)[]).filter((k) => o[k] !== undefined).map((k) => [k, o[k]]));
  const mnist = (limit?: number) => loadMnist("train", { normalize: "[-1,1]", limit });
  let data: MnistData;
  let method: string, model: ImageModel, settings: ImageTrainSettings, steps: number, startStep = 0, resumed: Awaited<ReturnType<typeof loadCheckpoint>> | null = null;
  if (o.resume) {
    if (o.config !== undefined) throw new Error(`--config cannot change the model of the run in ${o.out}: a resumed run keeps its own`);
    if (!existsSync(ckDir)) throw new Error(`--resume: ${o.out} holds no run to continue (${ckDir} is missing)`);
    resumed = await loadCheckpoint(ckDir);
    const run = runConfig(ckDir, resumed.config), ts = resumed.trainerState, saved = ts.trainConfig as unknown as ImageTrainSettings & { steps: number; images: number };
    for (const k of [...Object.keys(IMAGE_TRAIN_DEFAULTS), "steps", "images"]) {
      if (typeof ts.trainConfig[k] !== "number") throw new CheckpointError(ckDir, `trainer_state.json: trainConfig.${k} is ${JSON.stringify(ts.trainConfig[k])}; expected the number the run was trained with`);
    }
    if (o.method !== undefined && o.method !== run.method) throw new Error(`--method ${o.method} conflicts with the run in ${o.out}, which trains ${JSON.stringify(run.method)}`);
    for (const [k, v] of Object.entries(given)) {
      if (v !== saved[k as keyof ImageTrainSettings]) throw new Error(`${flag(k)} ${v} conflicts with the run's ${saved[k as keyof ImageTrainSettings]}: a resumed run keeps its settings (only --steps may change)`);
    }
    if (o.limit !== undefined && o.limit !== saved.images) throw new Error(`--limit ${o.limit} conflicts with the run's ${saved.images} training images: its batch order could not be replayed`);
    data = mnist(saved.images);
    ({ method } = run);
    settings = { ...IMAGE_TRAIN_DEFAULTS, ...saved };
    model = buildModel(ckDir, method, run.config, resumed.model, settings.seed);
    startStep = ts.step;
    steps = o.steps ?? saved.steps;
    checkSettings(settings, steps, o.saveEvery ?? 0);
    if (steps < startStep) throw new RangeError(`--steps ${steps} is below the run's step ${startStep}`);
  } else {
    if (existsSync(ckDir)) throw new Error(`${o.out} already holds a run (${ckDir}); pass --resume to continue it, or choose another --out`);
    if (o.method === undefined) throw new Error("--method is required for a new run");
    const m = imageMethod(o.method);
    method = m.name;
    settings = { ...IMAGE_TRAIN_DEFAULTS, ...m.trainDefaults, ...given };
    steps = o.steps ?? DEFAULT_STEPS;
    checkSettings(settings, steps, o.saveEvery ?? 0);
    data = mnist(o.limit);
    model = m.create(o.config ?? {}, settings.seed);
  }
  checkImageBatch(method, model.imageShape, [settings.batch, 1, data.rows, data.cols]);
  if (settings.batch > data.n) throw new RangeError(`--batch ${settings.batch} exceeds the ${data.n} training images`);
  mkdirSync(o.out, { recursive: true });

  const { batch, lr, warmup, decaySteps, weightDecay, clip, seed } = settings;
  // min = peak when there is no decay: the warmup, then a flat rate
  const lrAt = makeSchedule(decaySteps ? { kind: "cosine", lr, minLr: lr / 10, warmupSteps: warmup, decaySteps } : { kind: "cosine", lr, minLr: lr, warmupSteps: warmup, decaySteps: warmup + 1 });
  const opt = new AdamW(defaultParamGroups(model.module, weightDecay), { lr: lrAt(startStep) });
  const params = model.module.parameters(), batcher = new MnistBatcher(data, batch, seed + 1), gen = new RandomGenerator(seed + 2);
  if (resumed) {
    opt.loadStateDict(resumed.optimizer);
    gen.setState(resumed.trainerState.dataRng);
    batcher.skip(startStep);
    truncateMetrics(metrics, startStep);
  } else {
    truncateMetrics(metrics, 0);
  }

  const save = (step: number) => saveCheckpoint(ckDir, {
    config: { method, config: model.config }, model: model.module.stateDict(), optimizer: opt.stateDict(),
    trainerState: { step, dataRng: gen.getState(), dropoutRng: null, bestValLoss: null, trainConfig: { ...settings, steps, images: data.n } } satisfies TrainerState,
  });
  const losses: number[] = [], t0 = performance.now();
  let step = startStep, stopped = false;
  while (step < steps) {
    const rate = lrAt(step);
    opt.setLr(rate);
    const loss = tidy(() => {
      opt.zeroGrad();
      const { x, y } = batcher.next();
      const l = model.loss(x.reshape(batch, 1, data.rows, data.cols), y.toTypedArray() as Int32Array, gen, step);
      const v = l.item();
      if (!Number.isFinite(v)) throw new Error(`${method}: the loss is ${v} at step ${step}; lower --lr (the last checkpoint is unchanged)`);
      l.backward();
      if (clip > 0) clipGradNorm(params, clip);
      opt.step();
      return v;
    });
    step++;
    losses.push(loss);
    // let signal handlers (Ctrl-C -> shouldStop) and other events run between steps
    await new Promise<void>((r) => setImmediate(r));
    appendFileSync(metrics, `${JSON.stringify({ step, loss, lr: rate })}\n`);
    stopped = step < steps && (o.shouldStop?.() ?? false);
    if (step === steps || stopped || (o.saveEvery && step % o.saveEvery === 0)) await save(step);
    const seconds = (performance.now() - t0) / 1000;
    o.onStep?.({ method, step, total: steps, startStep, loss, lr: rate, seconds, imagesPerSec: ((step - startStep) * batch) / Math.max(seconds, 1e-9) });
    if (stopped) break;
  }
  return { method, config: model.config, parameters: model.module.numParameters(), startStep, step, losses, seconds: (performance.now() - t0) / 1000, checkpoint: ckDir, stopped };
}

/** A trained run's model (from `dir`: a run directory or its checkpoint) and its method's name. */
export async function loadImageRun(dir: string): Promise<{ method: string; model: ImageModel; checkpoint: string }> {
  const ck = runCheckpoint(dir);
  const files = await loadModelFiles(ck);
  const { method, config } = runConfig(ck, files.config);
  return { method, model: buildModel(ck, method, config, files.model), checkpoint: ck };
}

export interface ImageGridOptions extends ImageSampleOptions {
  /** Images to draw. */
  n: number;
  seed: number;
  /** Grid columns (default 8). */
  cols?: number;
}

/** Draw n samples and write them as a PNG grid to `file`; the samples [n, C, H, W] in [-1, 1] are returned. */
export function writeSampleGrid(model: ImageModel, file: string, o: ImageGridOptions): Float32Array {
  const [C, H, W] = model.imageShape;
  if (C !== 1 || H !== W) throw new RangeError(`PNG grids are of square grayscale images; the model makes [${C}, ${H}, ${W}]`);
  if (!Number.isSafeInteger(o.n) || o.n < 1) throw new RangeError(`--n is ${o.n}; expected an integer >= 1`);
  const { n, seed, cols = 8, ...opts } = o;
  const x = tidy(() => noGrad(() => model.sample(n, new RandomGenerator(seed), opts).contiguous().toTypedArray())) as Float32Array;
  if (x.length !== n * C * H * W) throw new Error(`the sampler returned ${x.length} values, expected [${n}, ${C}, ${H}, ${W}]`);
  writeImageGrid(file, x.map((v) => (v + 1) / 2), n, Math.min(cols, n), { size: H });
  return x;
}
