// DDPM on MNIST (issue 20). Usage: npm run bench -- ddpm [--minutes=M] [--n=N] [--batch=B] [--lr=LR] [--load=FILE]
//   [--weights=raw|ema] [--sample-minutes=S]
// Trains the "ddpm" ImageMethod (a small U-Net, src/generative/unet.ts; linear β, T = 1000) for M minutes
// (default 22) with AdamW (no weight decay, i.e. Adam as Ho et al. 2020 sec. 4 use; LR 5e-4, above their
// 2e-4 because a shared-CPU run gets only hundreds to thousands of steps; 200 warmup steps, then constant; gradient norm
// clipped as their code does) and an EMA of the weights (decay 0.998). Weights (raw and EMA) go to
// /tmp/ddpm-unet.safetensors; --load=FILE skips training and samples from saved weights; --weights=raw|ema
// picks which (default raw: after only a few hundred steps the EMA still holds 0.998^steps of the init, whose
// zeroed output conv shrinks ε̂, and its samples stay noise).
// Then it samples in rounds of ROUND images: each round draws the same x_T (one seed per
// round) through DDPM-1000 with σ² = β and with σ² = β̃ and DDIM-50 (η 0, 0.5, 1; uniform and quad steps), until N images
// (default 500) or the sampling budget (--sample-minutes, default 60) runs out, so every set has the same
// n. It reports FID-MNIST (ours: the Fréchet distance of the 784-256-256-10 classifier's features,
// src/generative/mnist-classifier.ts; NOT Inception FID) of each against the 10k test images, beside the
// real-vs-real floor at the same n (n train images vs the test set, 5 draws: FID is biased upwards at small
// n). Grids (the first 64): bench/ddpm-samples.png, bench/ddim50-samples.png (uniform, η 0),
// bench/ddim50-quad-eta0.5-samples.png. Run it with
// TSFORMER_THREADS=1 on a shared machine.

import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadMnist, MnistBatcher } from "../src/data/mnist.js";
import { DdpmModel, ddpmMethod } from "../src/generative/ddpm-method.js";
import type { ImageSampleOptions } from "../src/generative/image-method.js";
import { fidMnist, trainMnistClassifier } from "../src/generative/mnist-classifier.js";
import { writeImageGrid } from "../src/io/png.js";
import { decodeSafetensors, encodeSafetensors, type SafeTensor } from "../src/io/safetensors.js";
import { noGrad } from "../src/tensor/autograd.js";
import { RandomGenerator } from "../src/tensor/rng.js";
import { tidy } from "../src/tensor/scope.js";
import { AdamW, defaultParamGroups } from "../src/train/optim.js";
import { flag, emaUpdate, fidFloor, imageStep } from "./image-common.js";
import { fmt, jsonLine, printTable } from "./common.js";

const ROOT = new URL("..", import.meta.url).pathname;
const WEIGHTS = "/tmp/ddpm-unet.safetensors";
// ddpmLoss sums over the 784 pixels; Ho et al. clip at 1 on the per-pixel mean, i.e. 784 on our sum.
const EMA_DECAY = 0.998, WARMUP = 200, CLIP = 784, FLOOR_DRAWS = 5, ROUND = 25;
const now = () => performance.now() / 1000;


/** Train for `minutes`; returns the EMA weights (name -> values) and the step count. */
function train(model: DdpmModel, minutes: number, batch: number, lr: number): { ema: Map<string, Float32Array>; steps: number; seconds: number } {
  const data = loadMnist("train", { normalize: "[-1,1]" });
  const batches = new MnistBatcher(data, batch, 1), gen = new RandomGenerator(2);
  const params = [...model.module.namedParameters()];
  const ema = new Map(params.map(([n, p]) => [n, Float32Array.from(p.data as Float32Array)]));
  const opt = new AdamW(defaultParamGroups(model.module, 0), { lr });
  const t0 = now(), end = t0 + minutes * 60;
  let step = 0, acc = 0, k = 0;
  while (now() < end) {
    const { x, y } = batches.next();
    acc += imageStep(model, opt, x, y.data as Int32Array, gen, step, { lr, warmup: WARMUP, clip: CLIP });
    k++;
    emaUpdate(ema, params, EMA_DECAY);
    step++;
    if (step % 100 === 0) {
      const el = now() - t0;
      console.error(`train step ${step}  loss/pixel ${(acc / k / 784).toFixed(4)}  ${(step / el).toFixed(2)} steps/s  elapsed ${(el / 60).toFixed(1)} min  left ${((end - now()) / 60).toFixed(1)} min`);
      acc = 0; k = 0;
    }
  }
  return { ema, steps: step, seconds: now() - t0 };
}

const toSafe = (m: Map<string, Float32Array>, shapes: Map<string, number[]>, prefix: string): Record<string, SafeTensor> =>
  Object.fromEntries([...m].map(([n, v]) => [prefix + n, { dtype: "F32", shape: shapes.get(n)!, data: v }]));

interface Sampled { label: string; steps: number; png: string; o: ImageSampleOptions; images: Float32Array; seconds: number }

/**
 * The samplers compared. DDPM-1000 comes in both of Ho et al.'s variances (sec. 3.2: σ² = β and σ² = β̃ "had similar
 * results"); the β̃ one runs as DDIM with η = 1 over all 1000 steps, which eq. 16 makes the same process (the DDIM
 * paper's Table 1 row η = 1, S = 1000; its σ̂ row is σ² = β). DDIM-50 over η 0, 0.5, 1 and both of the DDIM
 * repository's step subsequences (uniform; quad, which it uses for CIFAR-10).
 */
const GRIDS: Record<string, string> = { "uniform 0": "ddim50-samples.png", "quad 0.5": "ddim50-quad-eta0.5-samples.png" };
const DDIM50 = (["uniform", "quad"] as const).flatMap((spacing) => [0, 0.5, 1].map((eta): [string, number, string, ImageSampleOptions] =>
  [`DDIM-50 ${spacing} η = ${eta}`, 50, GRIDS[`${spacing} ${eta}`] ?? "", { sampler: "ddim", steps: 50, eta, spacing }]));
const SAMPLERS: [string, number, string, ImageSampleOptions][] = [
  ["DDPM-1000 ancestral (σ² = β)", 1000, "ddpm-samples.png", { sampler: "ddpm" }],
  ["DDPM-1000 (σ² = β̃, DDIM η 1)", 1000, "", { sampler: "ddim", steps: 1000, eta: 1 }],
  ...DDIM50,
];

/** Rounds of ROUND images, the same x_T for every sampler, until N or `budget` seconds; values in [0, 1]. */
function sampleAll(model: DdpmModel, N: number, budget: number): { n: number; sets: Sampled[] } {
  const sets: Sampled[] = SAMPLERS.map(([label, steps, png, o]) => ({ label, steps, png, o, images: new Float32Array(N * 784), seconds: 0 }));
  const t0 = now();
  let n = 0;
  for (let r = 0; n < N; r++) {
    const m = Math.min(ROUND, N - n), perRound = (now() - t0) / Math.max(r, 1);
    if (r > 0 && now() - t0 + perRound > budget) break;
    for (const dst of sets) {
      const t1 = now();
      const v = noGrad(() => tidy(() => model.sample(m, new RandomGenerator(1000 + r), dst.o).toTypedArray() as Float32Array));
      for (let j = 0; j < v.length; j++) dst.images[n * 784 + j] = (v[j] + 1) / 2;
      dst.seconds += now() - t1;
    }
    n += m;
    console.error(`sampling: ${n}/${N} images per sampler  ${(now() - t0).toFixed(0)} s (${sets.map((d) => `${d.steps} steps ${d.seconds.toFixed(0)} s`).join(", ")})  budget ${budget.toFixed(0)} s`);
  }
  for (const d of sets) d.images = d.images.slice(0, n * 784);
  return { n, sets };
}

export function main(argv: string[]): void {
  const minutes = flag(argv, "minutes", 22), N = Math.round(flag(argv, "n", 500)), batch = Math.round(flag(argv, "batch", 64)), lr = flag(argv, "lr", 5e-4);
  const sampleMinutes = flag(argv, "sample-minutes", 60);
  const which = argv.find((s) => s.startsWith("--weights="))?.slice(10) ?? "raw";
  if (which !== "raw" && which !== "ema") throw new RangeError(`--weights must be "raw" or "ema", got ${JSON.stringify(which)}`);
  const load = argv.find((s) => s.startsWith("--load="))?.slice(7);
  const model = ddpmMethod.create({}, 0) as DdpmModel;
  const params = new Map(model.module.namedParameters());
  const shapes = new Map([...params].map(([n, p]) => [n, [...p.shape]]));
  console.error(`ddpm: U-Net ${model.module.numParameters()} parameters, config ${JSON.stringify(model.config)}`);
  let chosen: Map<string, Float32Array>, info = { steps: 0, seconds: 0 };
  if (load) {
    const f = decodeSafetensors(readFileSync(load), load);
    const get = (p: string) => new Map([...params.keys()].map((n) => [n, f.tensors[p + n].data as Float32Array]));
    chosen = get(`${which}.`);
    info = { steps: Number(f.metadata.steps), seconds: Number(f.metadata.seconds) };
  } else {
    const r = train(model, minutes, batch, lr);
    info = { steps: r.steps, seconds: r.seconds };
    const raw = new Map([...params].map(([n, p]) => [n, Float32Array.from(p.data as Float32Array)]));
    chosen = which === "ema" ? r.ema : raw;
    writeFileSync(WEIGHTS, encodeSafetensors({ ...toSafe(raw, shapes, "raw."), ...toSafe(r.ema, shapes, "ema.") }, { steps: String(info.steps), seconds: info.seconds.toFixed(0), batch: String(batch), lr: String(lr) }));
    console.error(`saved ${WEIGHTS}`);
  }
  const use = (w: Map<string, Float32Array>) => { for (const [n, p] of params) (p.data as Float32Array).set(w.get(n)!); };

  use(chosen);
  const t0 = now();
  const clf = trainMnistClassifier(loadMnist("train"), { seed: 0 });
  console.error(`classifier trained in ${(now() - t0).toFixed(0)} s`);
  const { n, sets } = sampleAll(model, N, sampleMinutes * 60);
  const train01 = loadMnist("train"), test = loadMnist("test");
  const fl = fidFloor(clf, train01, test.images, n, FLOOR_DRAWS), floor = fl.mean, lo = fl.min, hi = fl.max;
  const rows: (string | number)[][] = [];
  const fids: number[] = [];
  for (const s of sets) {
    const fid = fidMnist(clf, s.images, test.images);
    fids.push(fid);
    if (s.png) writeImageGrid(join(ROOT, "bench", s.png), s.images, Math.min(64, n), 8);
    jsonLine({ bench: "ddpm", sampler: s.label, n, fid_mnist: fid, floor_mean: floor, floor_min: lo, floor_max: hi, sample_seconds: s.seconds, train_steps: info.steps, train_seconds: info.seconds });
    rows.push([s.label, s.steps, n, fmt(fid, 2), fmt(s.seconds, 0), fmt((s.seconds * 1000) / (n * s.steps), 2)]);
  }
  rows.push([`real train vs test (floor, ${FLOOR_DRAWS} draws)`, "-", n, `${fmt(floor, 2)} (${fmt(lo, 2)}–${fmt(hi, 2)})`, "-", "-"]);
  console.log(`\nDDPM U-Net on MNIST: ${info.steps} training steps of batch ${batch} in ${fmt(info.seconds / 60, 1)} min (${which} weights); FID-MNIST (ours) vs the 10k test images`);
  printTable(["sampler", "steps", "n", "FID-MNIST", "sample s", "ms/img/step"], rows);
  for (let i = 2; i < sets.length; i++) {
    const r = [fids[i] / fids[0], fids[i] / fids[1]];
    console.log(`${sets[i].label} / DDPM-1000 (σ² = β, β̃) = ${fmt(r[0], 3)}, ${fmt(r[1], 3)} (within 10%: ${r.map((x) => (Math.abs(x - 1) <= 0.1 ? "yes" : "no")).join(", ")})`);
  }
}
