// Latent diffusion on MNIST (issue 20; Rombach et al. 2022): the "ldm" ImageMethod driven through its seam
// alone (create / loss / sample). Stage 1 trains the KL autoencoder for --ae-steps optimizer steps, stage 2
// the class-conditional latent denoiser for --minutes of wall clock (same AdamW, the autoencoder frozen by
// the method). Reports the autoencoder's reconstruction error on test images, then for each guidance scale
// w (classifier-free guidance, Ho & Salimans 2022) N class-conditional samples (labels i mod 10) by DDIM
// --steps: FID-MNIST against the 10k test set, the real-vs-real floor at the same N (N train images vs the
// test set, 5 draws; FID is biased upwards at small N) and the class accuracy of the samples by the same
// classifier (does the conditioning work? w = 0 is the unconditional model: ~10% expected).
// Usage: npm run bench -- ldm [--minutes=25] [--ae-steps=500] [--n=500] [--guidance=0,1,2,4] [--steps=50]
//   [--batch=64] [--lr=5e-4] [--ae-lr=1e-3] [--load=FILE]
// EMA (decay 0.998) of the denoiser's weights from the stage switch on; samples use the EMA weights.
// Weights: /tmp/ldm-mnist.safetensors (--load=FILE skips training). bench/ldm-samples.png: 8 x 10 samples at
// w = 2 (one column per class); bench/ldm-recon.png: test images (odd rows) and their reconstructions.
// On a shared machine TSFORMER_THREADS=1 is fastest.

import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadMnist, MnistBatcher } from "../src/data/mnist.js";
import type { ImageModel } from "../src/generative/image-method.js";
import type { LatentDiffusion } from "../src/generative/ldm-method.js";
import { classifierAccuracy, fidMnist, trainMnistClassifier, type MnistMLP } from "../src/generative/mnist-classifier.js";
import { imageMethod } from "../src/generative/registry.js";
import { decodeSafetensors, encodeSafetensors } from "../src/io/safetensors.js";
import { writeImageGrid } from "../src/io/png.js";
import * as ops from "../src/ops/index.js";
import { noGrad } from "../src/tensor/autograd.js";
import { RandomGenerator } from "../src/tensor/rng.js";
import { tidy } from "../src/tensor/scope.js";
import { Tensor } from "../src/tensor/tensor.js";
import { clipGradNorm } from "../src/train/clip.js";
import { AdamW, defaultParamGroups } from "../src/train/optim.js";
import { flag, emaUpdate, fidFloor } from "./image-common.js";
import { fmt, jsonLine, printTable } from "./common.js";

const ROOT = new URL("..", import.meta.url).pathname;
const WEIGHTS = "/tmp/ldm-mnist.safetensors";
const EMA_DECAY = 0.998, WARMUP = 200, CLIP = 1, FLOOR_DRAWS = 5, LOG_EVERY = 30;
const now = () => performance.now() / 1000;


/** Stage 1 for aeSteps steps, stage 2 for `minutes`; the EMA of the denoiser's weights is returned. */
function train(m: ImageModel, aeSteps: number, minutes: number, batch: number, lr: number, aeLr: number) {
  const ldm = m.module as LatentDiffusion;
  const data = loadMnist("train", { normalize: "[-1,1]" });
  const batches = new MnistBatcher(data, batch, 1), gen = new RandomGenerator(2);
  const opt = new AdamW(defaultParamGroups(m.module, 0), { lr: aeLr });
  const dn = [...ldm.denoiser.namedParameters()];
  let ema: Map<string, Float32Array> | null = null;
  const t0 = now();
  let step = 0, acc = 0, k = 0, last = t0, t1 = t0, end = Infinity;
  for (;;) {
    const stage2 = step >= aeSteps;
    if (stage2 && !ema) {
      ema = new Map(dn.map(([n, p]) => [n, Float32Array.from(p.data as Float32Array)]));
      t1 = now(); end = t1 + minutes * 60;
      console.error(`stage 2 (latent diffusion) from step ${step}, ${fmt(t1 - t0, 0)} s`);
    }
    if (now() >= end) break;
    // the optimizer's bias correction counts stage-1 steps too: the warmup after the switch keeps the
    // denoiser's first updates small
    opt.setLr(stage2 ? lr * Math.min(1, (step - aeSteps + 1) / WARMUP) : aeLr * Math.min(1, (step + 1) / 50));
    const { x, y } = batches.next();
    acc += tidy(() => {
      opt.zeroGrad();
      const l = m.loss(x.reshape(batch, 1, 28, 28), y.data as Int32Array, gen, step);
      l.backward();
      if (stage2) clipGradNorm(ldm.denoiser.parameters(), CLIP);
      opt.step();
      return l.item();
    });
    k++;
    step++;
    if (ema) emaUpdate(ema, dn, EMA_DECAY);
    if (now() - last > LOG_EVERY) {
      const rate = k / (now() - last), eta = stage2 ? end - now() : (aeSteps - step) / rate;
      console.error(`  step ${step} (${stage2 ? "diffusion" : "autoencoder"})  loss ${fmt(acc / k, 4)}  ${fmt(rate, 2)} steps/s  ${fmt(now() - t0, 0)} s  stage ETA ${fmt(eta, 0)} s  scale ${fmt(ldm.latentScale.data[0] as number, 4)}`);
      acc = 0; k = 0; last = now();
    }
  }
  return { ema: ema!, aeSeconds: t1 - t0, seconds: now() - t1, steps: step };
}

/** Mean squared and absolute error per pixel on [0, 1] of decode(μ) for the first n test images. */
function reconError(ldm: LatentDiffusion, n: number): { mse: number; mae: number; images: Float32Array } {
  const test = loadMnist("test", { normalize: "[-1,1]", limit: n });
  const rec = noGrad(() => tidy(() => ldm.decodeChunked(ldm.ae.encode(new Tensor(test.images, [n, 1, 28, 28])).mean).toTypedArray() as Float32Array));
  let se = 0, ae = 0;
  for (let i = 0; i < rec.length; i++) { const d = (Math.max(-1, Math.min(1, rec[i])) - test.images[i]) / 2; se += d * d; ae += Math.abs(d); }
  const images = new Float32Array(64 * 784);
  for (let r = 0; r < 4; r++) for (let c = 0; c < 8; c++) {
    const i = r * 8 + c, src = (x: Float32Array) => x.subarray(i * 784, (i + 1) * 784);
    images.set(src(test.images).map((v) => (v + 1) / 2), (r * 16 + c) * 784);
    images.set(src(rec).map((v) => (Math.max(-1, Math.min(1, v)) + 1) / 2), (r * 16 + 8 + c) * 784);
  }
  return { mse: se / rec.length, mae: ae / rec.length, images };
}

function accuracy(clf: MnistMLP, images: Float32Array, labels: Int32Array): number {
  return classifierAccuracy(clf, { images, labels, n: labels.length, rows: 28, cols: 28 });
}

export function main(argv: string[]): void {
  const minutes = flag(argv, "minutes", 25), aeSteps = Math.round(flag(argv, "ae-steps", 500)), N = Math.round(flag(argv, "n", 500));
  const batch = Math.round(flag(argv, "batch", 64)), lr = flag(argv, "lr", 5e-4), aeLr = flag(argv, "ae-lr", 1e-3), steps = Math.round(flag(argv, "steps", 50));
  const ws = (argv.find((s) => s.startsWith("--guidance="))?.slice(11) ?? "0,1,2,4").split(",").map(Number);
  if (ws.some((w) => !(w >= 0))) throw new RangeError(`--guidance must be a comma-separated list of numbers >= 0`);
  const load = argv.find((s) => s.startsWith("--load="))?.slice(7);
  const m = imageMethod("ldm").create({ aeSteps }, 0), ldm = m.module as LatentDiffusion;
  const params = new Map([...m.module.namedParameters()]);
  console.error(`ldm: ${ldm.ae.numParameters()} autoencoder + ${ldm.denoiser.numParameters()} denoiser parameters, config ${JSON.stringify(m.config)}`);
  let info = { steps: 0, aeSeconds: 0, seconds: 0 };
  if (load) {
    const f = decodeSafetensors(readFileSync(load), load);
    m.module.loadStateDict(Object.fromEntries(Object.entries(f.tensors).map(([n, t]) => [n, new Tensor(t.data as Float32Array, t.shape)])));
    info = JSON.parse(f.metadata.info);
  } else {
    const r = train(m, aeSteps, minutes, batch, lr, aeLr);
    for (const [n, e] of r.ema) (params.get(`unet.${n}`)!.data as Float32Array).set(e);
    info = { steps: r.steps, aeSeconds: r.aeSeconds, seconds: r.seconds };
    const sd = m.module.stateDict();
    writeFileSync(WEIGHTS, encodeSafetensors(Object.fromEntries(Object.entries(sd).map(([n, t]) => [n, { dtype: "F32", shape: [...t.shape], data: t.toTypedArray() as Float32Array }])), { info: JSON.stringify(info), config: JSON.stringify(m.config) }));
    console.error(`saved ${WEIGHTS} (denoiser: EMA weights)`);
  }

  // samples first, every guidance scale from the same seed and labels (i mod 10): drawn after the classifier
  // training and FIDs in the same process, sampling grew to 21 GB (killed); not root-caused yet
  const labels = Int32Array.from({ length: N }, (_, i) => i % 10), samples: { w: number; x: Float32Array; secs: number }[] = [];
  for (const w of ws) {
    const t = now();
    const x = tidy(() => ops.div(ops.add(m.sample(N, new RandomGenerator(7), { labels, guidance: w, steps, sampler: "ddim" }), 1), 2).toTypedArray() as Float32Array);
    samples.push({ w, x, secs: now() - t });
    console.error(`  guidance ${w}: ${N} samples in ${fmt(now() - t, 0)} s`);
  }

  const rec = reconError(ldm, 1000);
  writeImageGrid(join(ROOT, "bench/ldm-recon.png"), rec.images, 64, 8);
  jsonLine({ bench: "ldm", what: "autoencoder", test_images: 1000, mse: rec.mse, mae: rec.mae, ae_steps: aeSteps, ae_seconds: info.aeSeconds, latent_scale: ldm.latentScale.data[0] });

  const t = now();
  const clf = trainMnistClassifier(loadMnist("train"), { seed: 0, epochs: 3 });
  const train01 = loadMnist("train"), test = loadMnist("test");
  console.error(`classifier: ${fmt(now() - t, 0)} s, test accuracy ${fmt(100 * classifierAccuracy(clf, test), 2)}%`);
  const fl = fidFloor(clf, train01, test.images, N, FLOOR_DRAWS), floor = fl.mean;

  const rows: (string | number)[][] = [];
  for (const { w, x, secs } of samples) {
    const fid = fidMnist(clf, x, test.images), acc = accuracy(clf, x, labels);
    if (w === 2 || (w === ws[ws.length - 1] && !ws.includes(2))) writeImageGrid(join(ROOT, "bench/ldm-samples.png"), x, Math.min(80, N), 10);
    jsonLine({ bench: "ldm", guidance: w, n: N, ddim_steps: steps, fid_mnist: fid, class_accuracy: acc, floor_mean: floor, floor_min: fl.min, floor_max: fl.max, sample_seconds: secs });
    rows.push([`w = ${w}`, N, fmt(fid, 2), `${fmt(100 * acc, 1)}%`, fmt(secs, 0)]);
  }
  rows.push([`real train vs test (floor, ${FLOOR_DRAWS} draws)`, N, `${fmt(floor, 2)} (${fmt(fl.min, 2)}–${fmt(fl.max, 2)})`, "-", "-"]);
  printTable(["autoencoder", "AE steps", "AE time (s)", "test MSE / px ([0,1])", "test MAE / px", "latent scale"],
    [["KL-f4 4x7x7", aeSteps, fmt(info.aeSeconds, 0), rec.mse.toExponential(2), rec.mae.toExponential(2), fmt(ldm.latentScale.data[0] as number, 4)]]);
  console.log(`diffusion: ${info.steps - aeSteps} steps of batch ${batch} in ${fmt(info.seconds, 0)} s; DDIM ${steps} steps, EMA weights`);
  printTable(["samples (DDIM, CFG)", "N", "FID-MNIST vs test", "class accuracy", "sample time (s)"], rows);
}
