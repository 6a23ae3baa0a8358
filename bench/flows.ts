// Normalizing flows on MNIST (issue 20): trains a multi-scale Glow or RealNVP (src/generative/flows) by maximum
// likelihood on dequantized MNIST for a wall-clock budget and reports test NLL in bits/dim (the papers' metric:
// RealNVP / Glow report about 1.05-1.06 on MNIST at their scale, days of GPU time), then writes sample grids.
// Usage: npm run bench -- flows [--minutes=2] [--variant=glow|realnvp] [--levels=2] [--steps=4] [--hidden=64]
//   [--batch=64] [--lr=1e-3] [--eval=2000] [--seed=0]
// --eval: the first N test images (10000 = the whole test set), dequantized once with a fixed seed.
// The learning rate warms up linearly over 100 steps, then follows a cosine over the elapsed fraction of the
// time budget (the step count is not known in advance). Gradients are clipped to norm 50.
// On a shared machine TSFORMER_THREADS=1 is fastest.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import * as T from "../src/index.js";
import { grayPng, imageGrid } from "../src/io/png.js";
import { MnistBatcher, loadMnist, type MnistData } from "../src/data/mnist.js";
import { MultiScaleFlow, type FlowVariant } from "../src/generative/flows/multiscale.js";
import { bitsPerDim, dequantize } from "../src/generative/flows/preprocess.js";
import { clipGradNorm } from "../src/train/clip.js";
import { AdamW, defaultParamGroups } from "../src/train/optim.js";
import { flag } from "./image-common.js";
import { fmt, printTable } from "./common.js";

const ROOT = new URL("..", import.meta.url).pathname;
const now = () => performance.now() / 1000;

function batchOf(data: MnistData, idx: ArrayLike<number>, gen: T.RandomGenerator): T.Tensor {
  const v = new Float32Array(idx.length * 784);
  for (let i = 0; i < idx.length; i++) v.set(data.images.subarray(idx[i] * 784, (idx[i] + 1) * 784), i * 784);
  return dequantize(v, [idx.length, 1, 28, 28], gen);
}


export function main(argv: string[]): void {
  const minutes = flag(argv, "minutes", 2), levels = flag(argv, "levels", 2), steps = flag(argv, "steps", 4), hidden = flag(argv, "hidden", 64);
  const batch = flag(argv, "batch", 64), lr = flag(argv, "lr", 1e-3), nEval = Math.min(flag(argv, "eval", 2000), 10000), seed = flag(argv, "seed", 1) - 1;
  const variant = (argv.find((s) => s.startsWith("--variant="))?.slice(10) ?? "glow") as FlowVariant;
  const gen = new T.RandomGenerator(seed);
  const train = loadMnist("train"), test = loadMnist("test", { limit: nEval });
  const model = new MultiScaleFlow({ imageShape: [1, 28, 28], variant, levels, steps, hidden, generator: gen });
  const D = model.dims;
  // ActNorm's data-dependent init (Glow sec. 3.1) on 512 training images
  T.tidy(() => T.noGrad(() => model.forward(batchOf(train, Array.from({ length: 512 }, (_, i) => i), gen))));
  console.log(`flows: ${variant}, ${levels} levels x ${steps} steps, hidden ${hidden}, ${model.numParameters()} parameters; batch ${batch}, AdamW lr ${lr}, budget ${minutes} min, backend ${T.backend().name}, threads ${T.getNativeThreads()}`);

  const opt = new AdamW(defaultParamGroups(model, 0), { lr });
  const batcher = new MnistBatcher(train, batch, seed), t0 = now(), budget = minutes * 60;
  let step = 0, recent: number[] = [], lastLog = t0;
  while (now() - t0 < budget) {
    const frac = (now() - t0) / budget;
    opt.setLr(lr * Math.min(1, (step + 1) / 100) * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, frac))));
    const bpd = T.tidy(() => {
      opt.zeroGrad();
      const x = batchOf(train, batcher.next().index, gen);
      // the loss in bits/dim: mean NLL / (D ln 2) plus the constant 8 (log 256 / ln 2) of bitsPerDim
      const loss = T.div(T.mean(model.nll(x)), D * Math.LN2);
      loss.backward();
      clipGradNorm(model.parameters(), 50);
      opt.step();
      return loss.item() + 8;
    });
    if (!Number.isFinite(bpd)) throw new Error(`flows: the loss is ${bpd} at step ${step}; lower --lr`);
    step++;
    recent.push(bpd);
    if (now() - lastLog > 30) {
      const m = recent.reduce((a, b) => a + b, 0) / recent.length;
      console.log(`  step ${step}  ${fmt(now() - t0, 0)} s  train ${fmt(m, 3)} bits/dim (mean of the last ${recent.length} steps)`);
      recent = [];
      lastLog = now();
    }
  }
  const trainTime = now() - t0;

  const te = now(), evalGen = new T.RandomGenerator(12345);
  let nllSum = 0;
  for (let i = 0; i < test.n; i += 100) {
    const idx = Array.from({ length: Math.min(100, test.n - i) }, (_, k) => i + k);
    nllSum += T.tidy(() => T.noGrad(() => T.sum(model.nll(batchOf(test, idx, evalGen))).item()));
  }
  const testBpd = bitsPerDim(nllSum / test.n, D), evalTime = now() - te;

  const files: string[] = [];
  for (const temp of [1, 0.7]) {
    const s = T.tidy(() => model.sample(64, new T.RandomGenerator(7), temp).toTypedArray() as Float32Array);
    const g = imageGrid(s, 64, 8), file = `bench/flows-${variant}-t${temp.toFixed(1)}.png`;
    writeFileSync(join(ROOT, file), grayPng(g.pix, g.w, g.h));
    files.push(file);
  }
  printTable(["model", "params", "train steps", "images seen", "train time (s)", `test bits/dim (first ${test.n})`, "eval time (s)"],
    [[`${variant} L=${levels} K=${steps} h=${hidden}`, model.numParameters(), step, step * batch, fmt(trainTime, 0), fmt(testBpd, 3), fmt(evalTime, 0)]]);
  console.log(`samples (temperature 1.0 and 0.7): ${files.join(", ")}`);
}
