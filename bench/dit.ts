// The SD3-style DiT on MNIST (issue 20). Two parts:
//
// npm run bench -- dit [--rounds=5] [--batch=64]
//   Throughput of one training step (forward, backward, AdamW) of the MNIST DiT config (the "dit" method's
//   defaults) at batch B: ours vs bench/torch/dit.py (the same architecture in torch, float32, 2 threads),
//   alternating rounds; images/s median (min-max) and the ratio.
//
// npm run bench -- dit train [--minutes=M] [--n=N] [--steps=S] [--sampler=euler|heun] [--guidance=W] [--batch=B] [--lr=LR] [--load=FILE | --resume=FILE]
//   Trains the "dit" method for M minutes (default 32) with AdamW (no weight decay; LR 5e-4 after 100 warmup
//   steps, above DiT's 1e-4 because a CPU run gets only about a thousand steps; gradient norm clipped at 1)
//   and an EMA of the weights (decay 0.995: DiT's 0.9999 averages over far more steps than this run has).
//   Weights (raw and EMA) go to /tmp/dit-mnist.safetensors; --load=FILE skips training, --resume=FILE trains M more minutes from saved weights. Then N samples
//   (default 1000, classes i mod 10) from the EMA weights with S Euler (or Heun) steps (default 25) and classifier-free
//   guidance W (default 2), their FID-MNIST (ours: the Fréchet distance of the 784-256-256-10 classifier's
//   features, src/generative/mnist-classifier.ts; NOT Inception FID) against the 10k test images, beside the
//   real-vs-real floor at the same N (N train images vs the test set, 5 draws) and the unguided (W = 1) FID.
//   Grid: bench/dit-samples.png (8 x 8, row r = class r for r < 8). Run with TSFORMER_THREADS=1 when shared.

import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as T from "../src/index.js";
import { loadMnist, MnistBatcher } from "../src/data/mnist.js";
import { DIT_DEFAULTS, ditImageModel, resolveDitConfig } from "../src/generative/dit-method.js";
import type { ImageModel, ImageSampleOptions } from "../src/generative/image-method.js";
import { fidMnist, trainMnistClassifier } from "../src/generative/mnist-classifier.js";
import { writeImageGrid } from "../src/io/png.js";
import { decodeSafetensors, encodeSafetensors, type SafeTensor } from "../src/io/safetensors.js";
import { AdamW, defaultParamGroups } from "../src/train/optim.js";
import { flag, emaUpdate, fidFloor, imageStep } from "./image-common.js";
import { fmt, jsonLine, printTable, stats, TorchPeer } from "./common.js";

const ROOT = new URL("..", import.meta.url).pathname;
const WEIGHTS = "/tmp/dit-mnist.safetensors";
const EMA_DECAY = 0.995, WARMUP = 100, CLIP = 1, FLOOR_DRAWS = 5, SAMPLE_BATCH = 100;
const now = () => performance.now() / 1000;


const images = (x: T.Tensor) => x.reshape(x.shape[0], 1, 28, 28);

interface Trained { ema: Map<string, Float32Array>; steps: number; seconds: number }

/**
 * Train for `minutes`, continuing `from` (a resumed run: its EMA, step count and time; the optimizer state
 * restarts with its warmup, the data order and noise with fresh seeds). Progress on stderr.
 */
function train(model: ImageModel, minutes: number, batch: number, lr: number, from?: Trained): Trained {
  const data = loadMnist("train", { normalize: "[-1,1]" }), first = from?.steps ?? 0;
  const batches = new MnistBatcher(data, batch, 1 + first), gen = new T.RandomGenerator(2 + first);
  const params = [...model.module.namedParameters()];
  const ema = from?.ema ?? new Map(params.map(([n, p]) => [n, Float32Array.from(p.data as Float32Array)]));
  const opt = new AdamW(defaultParamGroups(model.module, 0), { lr });
  const t0 = now(), end = t0 + minutes * 60;
  let step = 0, acc = 0, k = 0;
  while (now() < end) {
    const { x, y } = batches.next();
    acc += imageStep(model, opt, images(x), y.data as Int32Array, gen, step, { lr, warmup: WARMUP, clip: CLIP });
    k++;
    emaUpdate(ema, params, EMA_DECAY);
    step++;
    if (step % 25 === 0) {
      const el = now() - t0;
      console.error(`train step ${first + step}  loss ${(acc / k).toFixed(4)}  ${((step * batch) / el).toFixed(1)} img/s  elapsed ${(el / 60).toFixed(1)} min  left ${((end - now()) / 60).toFixed(1)} min`);
      acc = 0; k = 0;
    }
  }
  return { ema, steps: first + step, seconds: (from?.seconds ?? 0) + now() - t0 };
}

/** n samples in batches, as [n, 784] values in [0, 1]; progress on stderr. */
function sampleAll(model: ImageModel, n: number, seed: number, o: ImageSampleOptions, label: string): { images: Float32Array; seconds: number } {
  const gen = new T.RandomGenerator(seed), out = new Float32Array(n * 784), t0 = now();
  for (let i = 0; i < n; i += SAMPLE_BATCH) {
    const m = Math.min(SAMPLE_BATCH, n - i), labels = Int32Array.from({ length: m }, (_, j) => (i + j) % 10);
    const v = T.tidy(() => model.sample(m, gen, { ...o, labels }).toTypedArray() as Float32Array);
    for (let j = 0; j < v.length; j++) out[i * 784 + j] = (v[j] + 1) / 2;
    const el = now() - t0;
    console.error(`${label}: ${i + m}/${n} samples  ${el.toFixed(0)} s  ETA ${((el / (i + m)) * (n - i - m)).toFixed(0)} s`);
  }
  return { images: out, seconds: now() - t0 };
}

/** The 8 x 8 grid: row r holds class r (r < 8), the i-th sample of class c is image 10 i + c. */
function classGrid(imgs: Float32Array): Float32Array {
  const g = new Float32Array(64 * 784);
  for (let r = 0; r < 8; r++) for (let c = 0; c < 8; c++) g.set(imgs.subarray((10 * c + r) * 784, (10 * c + r + 1) * 784), (8 * r + c) * 784);
  return g;
}

function trainPart(argv: string[]): void {
  const minutes = flag(argv, "minutes", 32), N = Math.round(flag(argv, "n", 1000)), steps = Math.round(flag(argv, "steps", 25));
  const sampler = argv.find((s) => s.startsWith("--sampler="))?.slice(10) ?? "euler";
  const guidance = flag(argv, "guidance", 2), batch = Math.round(flag(argv, "batch", 64)), lr = flag(argv, "lr", 5e-4);
  if (N < 80) throw new RangeError(`--n must be at least 80 (the 8 x 8 class grid), got ${N}`);
  const load = argv.find((s) => s.startsWith("--load="))?.slice(7), resume = argv.find((s) => s.startsWith("--resume="))?.slice(9);
  const model = ditImageModel(resolveDitConfig({}), 0);
  const params = new Map(model.module.namedParameters());
  console.error(`dit: ${model.module.numParameters()} parameters, config ${JSON.stringify(model.config)}`);
  let ema: Map<string, Float32Array>, info = { steps: 0, seconds: 0 };
  const saved = (file: string): Trained & { raw: Map<string, Float32Array> } => {
    const f = decodeSafetensors(readFileSync(file), file), get = (prefix: string) => new Map([...params.keys()].map((n) => [n, f.tensors[prefix + n].data as Float32Array]));
    return { ema: get("ema."), raw: get("raw."), steps: Number(f.metadata.steps), seconds: Number(f.metadata.seconds) };
  };
  if (load) {
    const f = saved(load);
    ema = f.ema; info = { steps: f.steps, seconds: f.seconds };
  } else {
    const from = resume ? saved(resume) : undefined;
    if (from) for (const [n, p] of params) (p.data as Float32Array).set(from.raw.get(n)!);
    const r = train(model, minutes, batch, lr, from);
    ema = r.ema; info = { steps: r.steps, seconds: r.seconds };
    const safe = (prefix: string, get: (n: string, p: T.Tensor) => Float32Array): Record<string, SafeTensor> =>
      Object.fromEntries([...params].map(([n, p]) => [prefix + n, { dtype: "F32", shape: [...p.shape], data: get(n, p) }]));
    writeFileSync(WEIGHTS, encodeSafetensors({ ...safe("raw.", (_, p) => p.data as Float32Array), ...safe("ema.", (n) => ema.get(n)!) },
      { steps: String(info.steps), seconds: info.seconds.toFixed(0), batch: String(batch), lr: String(lr), config: JSON.stringify(model.config) }));
    console.error(`saved ${WEIGHTS}`);
  }
  for (const [n, p] of params) (p.data as Float32Array).set(ema.get(n)!);

  const t0 = now();
  const clf = trainMnistClassifier(loadMnist("train"), { seed: 0 });
  console.error(`classifier trained in ${(now() - t0).toFixed(0)} s`);
  const train01 = loadMnist("train"), test = loadMnist("test");
  const fl = fidFloor(clf, train01, test.images, N, FLOOR_DRAWS), floor = fl.mean;

  const rows: (string | number)[][] = [];
  for (const w of [guidance, 1]) {
    const label = `${sampler} ${steps}, guidance ${w}`;
    const s = sampleAll(model, N, 7, { sampler, steps, guidance: w }, label);
    const fid = fidMnist(clf, s.images, test.images);
    if (w === guidance) writeImageGrid(join(ROOT, "bench", "dit-samples.png"), classGrid(s.images), 64, 8);
    jsonLine({ bench: "dit", sampler, steps, guidance: w, n: N, fid_mnist: fid, floor_mean: floor, floor_min: fl.min, floor_max: fl.max,
      sample_seconds: s.seconds, train_steps: info.steps, train_seconds: info.seconds, batch });
    rows.push([label, N, fmt(fid, 2), fmt(s.seconds, 0)]);
    if (w === 1) break;
  }
  rows.push([`real train vs test (floor, ${FLOOR_DRAWS} draws)`, N, `${fmt(floor, 2)} (${fmt(fl.min, 2)}-${fmt(fl.max, 2)})`, "-"]);
  console.log(`\nDiT on MNIST: ${info.steps} training steps of batch ${batch} in ${fmt(info.seconds / 60, 1)} min (EMA weights); FID-MNIST (ours) vs the 10k test images`);
  printTable(["sampler", "N", "FID-MNIST", "sample s"], rows);
}

async function throughputPart(argv: string[]): Promise<void> {
  const rounds = Math.round(flag(argv, "rounds", 5)), B = Math.round(flag(argv, "batch", 64));
  const REPS = 2, WARMUP_STEPS = 1;
  const cfg = resolveDitConfig({});
  const model = ditImageModel(cfg, 0);
  const opt = new AdamW(defaultParamGroups(model.module, 0), { lr: 1e-4 });
  const gen = new T.RandomGenerator(1), x = T.rand([B, 1, 28, 28], { generator: gen }).mul(2).sub(1);
  const labels = Int32Array.from({ length: B }, (_, i) => i % 10);
  const step = () => T.tidy(() => {
    opt.zeroGrad();
    model.loss(x, labels, gen, 0).backward();
    opt.step();
  });
  const ours = (): number[] => {
    for (let i = 0; i < WARMUP_STEPS; i++) step();
    return Array.from({ length: REPS }, () => { const t0 = now(); step(); return B / (now() - t0); });
  };
  const peer = await TorchPeer.start(new URL("./torch/dit.py", import.meta.url).pathname);
  if (typeof peer === "string") console.error(`torch peer skipped: ${peer}`);
  const mine: number[] = [], theirs: number[] = [];
  for (let r = 0; r < rounds; r++) {
    mine.push(...ours());
    if (typeof peer !== "string") theirs.push(...((await peer.ask({ config: cfg, batch: B, warmup: WARMUP_STEPS, reps: REPS })).images_per_s as number[]));
    console.error(`round ${r + 1}/${rounds}: ours ${fmt(mine[mine.length - 1], 1)} img/s, torch ${fmt(theirs[theirs.length - 1] ?? NaN, 1)} img/s`);
  }
  if (typeof peer !== "string") peer.close();
  const s = stats(mine), t = stats(theirs), ratio = s.median / t.median;
  jsonLine({ bench: "dit", part: "throughput", batch: B, rounds, threads: process.env.TSFORMER_THREADS ?? "default", backend: T.backend().name, images_per_s: s, torch_images_per_s: t, ratio });
  const { patch, dim, depth, heads } = DIT_DEFAULTS;
  printTable(["config", "tsformer img/s", "torch img/s", "ratio"],
    [[`DiT p=${patch} d=${dim} L=${depth} H=${heads} B=${B}`, `${fmt(s.median)} (${fmt(s.min)}-${fmt(s.max)})`, `${fmt(t.median)} (${fmt(t.min)}-${fmt(t.max)})`, fmt(ratio, 2)]]);
}

export async function main(argv: string[] = []): Promise<void> {
  if (argv[0] === "train") trainPart(argv.slice(1));
  else await throughputPart(argv);
}
