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
// round) through DDPM ancestral sampling (1000 steps) and DDIM η = 0 (50 uniform steps), until N images
// (default 500) or the sampling budget (--sample-minutes, default 60) runs out, so both sets have the same
// n. It reports FID-MNIST (ours: the Fréchet distance of the 784-256-256-10 classifier's features,
// src/generative/mnist-classifier.ts; NOT Inception FID) of each against the 10k test images, beside the
// real-vs-real floor at the same n (n train images vs the test set, 5 draws: FID is biased upwards at small
// n). Grids: bench/ddpm-samples.png, bench/ddim50-samples.png (the first 64 of each). Run it with
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

interface Sampled { images: Float32Array; seconds: number }

/** Rounds of ROUND images, the same x_T for both samplers, until N or `budget` seconds; values in [0, 1]. */
function sampleBoth(model: DdpmModel, N: number, budget: number): { n: number; ddpm: Sampled; ddim: Sampled } {
  const out = { ddpm: { images: new Float32Array(N * 784), seconds: 0 }, ddim: { images: new Float32Array(N * 784), seconds: 0 } };
  const opts: [Sampled, ImageSampleOptions][] = [[out.ddpm, { sampler: "ddpm" }], [out.ddim, { sampler: "ddim", steps: 50, eta: 0 }]];
  const t0 = now();
  let n = 0;
  for (let r = 0; n < N; r++) {
    const m = Math.min(ROUND, N - n), perRound = (now() - t0) / Math.max(r, 1);
    if (r > 0 && now() - t0 + perRound > budget) break;
    for (const [dst, o] of opts) {
      const t1 = now();
      const v = noGrad(() => tidy(() => model.sample(m, new RandomGenerator(1000 + r), o).toTypedArray() as Float32Array));
      for (let j = 0; j < v.length; j++) dst.images[n * 784 + j] = (v[j] + 1) / 2;
      dst.seconds += now() - t1;
    }
    n += m;
    console.error(`sampling: ${n}/${N} images per sampler  ${(now() - t0).toFixed(0)} s (DDPM ${out.ddpm.seconds.toFixed(0)} s, DDIM ${out.ddim.seconds.toFixed(0)} s)  budget ${budget.toFixed(0)} s`);
  }
  return { n, ddpm: { images: out.ddpm.images.slice(0, n * 784), seconds: out.ddpm.seconds }, ddim: { images: out.ddim.images.slice(0, n * 784), seconds: out.ddim.seconds } };
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
  const { n, ddpm, ddim } = sampleBoth(model, N, sampleMinutes * 60);
  const train01 = loadMnist("train"), test = loadMnist("test");
  const fl = fidFloor(clf, train01, test.images, n, FLOOR_DRAWS), floor = fl.mean, lo = fl.min, hi = fl.max;
  const rows: (string | number)[][] = [];
  const fids: number[] = [];
  for (const [label, s, steps, png] of [["DDPM-1000 ancestral", ddpm, 1000, "ddpm-samples.png"], ["DDIM-50 η = 0", ddim, 50, "ddim50-samples.png"]] as const) {
    const fid = fidMnist(clf, s.images, test.images);
    fids.push(fid);
    writeImageGrid(join(ROOT, "bench", png), s.images, Math.min(64, n), 8);
    jsonLine({ bench: "ddpm", sampler: label, n, fid_mnist: fid, floor_mean: floor, floor_min: lo, floor_max: hi, sample_seconds: s.seconds, train_steps: info.steps, train_seconds: info.seconds });
    rows.push([label, steps, n, fmt(fid, 2), fmt(s.seconds, 0), fmt((s.seconds * 1000) / (n * steps), 2)]);
  }
  rows.push([`real train vs test (floor, ${FLOOR_DRAWS} draws)`, "-", n, `${fmt(floor, 2)} (${fmt(lo, 2)}–${fmt(hi, 2)})`, "-", "-"]);
  console.log(`\nDDPM U-Net on MNIST: ${info.steps} training steps of batch ${batch} in ${fmt(info.seconds / 60, 1)} min (${which} weights); FID-MNIST (ours) vs the 10k test images`);
  printTable(["sampler", "steps", "n", "FID-MNIST", "sample s", "ms/img/step"], rows);
  console.log(`DDIM-50 / DDPM-1000 = ${fmt(fids[1] / fids[0], 3)} (within 10%: ${Math.abs(fids[1] / fids[0] - 1) <= 0.1 ? "yes" : "no"})`);
}
