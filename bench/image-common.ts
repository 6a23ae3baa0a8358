// What the MNIST image benches (ddpm, dit, ldm, flows) share: numeric --name=value flags, the EMA of
// weights, and the real-vs-real FID-MNIST floor at a sample count. Not a bench itself (no main).

import type { MnistData } from "../src/data/mnist.js";
import type { ImageModel } from "../src/generative/image-method.js";
import { fidMnist, type MnistMLP } from "../src/generative/mnist-classifier.js";
import { RandomGenerator } from "../src/tensor/rng.js";
import { tidy } from "../src/tensor/scope.js";
import type { Tensor } from "../src/tensor/tensor.js";
import { clipGradNorm } from "../src/train/clip.js";
import type { AdamW } from "../src/train/optim.js";

/** A positive number from `--name=value` (def when absent); one clear error otherwise. */
export function flag(argv: string[], name: string, def: number): number {
  const a = argv.find((s) => s.startsWith(`--${name}=`));
  if (!a) return def;
  const v = Number(a.slice(name.length + 3));
  if (!Number.isFinite(v) || v <= 0) throw new RangeError(`--${name} must be a positive number, got ${JSON.stringify(a.slice(name.length + 3))}`);
  return v;
}

/** ema <- decay ema + (1 - decay) p for every named parameter. */
export function emaUpdate(ema: Map<string, Float32Array>, params: [string, Tensor][], decay: number): void {
  for (const [n, p] of params) {
    const e = ema.get(n)!, v = p.data as Float32Array;
    for (let i = 0; i < v.length; i++) e[i] = decay * e[i] + (1 - decay) * v[i];
  }
}

/**
 * FID-MNIST of n random training images (pixels in [0, 1]) against the test images, over `draws` draws
 * (seeds 100, 101, ...): the floor a generator's FID at the same n is read against (FID is biased up at small n).
 */
export function fidFloor(clf: MnistMLP, train: MnistData, test: Float32Array, n: number, draws = 5): { mean: number; min: number; max: number; draws: number } {
  const fids: number[] = [];
  for (let d = 0; d < draws; d++) {
    const g = new RandomGenerator(100 + d), u = new Float64Array(n), pick = new Float32Array(n * 784);
    g.uniform(u);
    u.forEach((v, i) => { const k = Math.floor(v * train.n); pick.set(train.images.subarray(k * 784, (k + 1) * 784), i * 784); });
    fids.push(fidMnist(clf, pick, test));
  }
  return { mean: fids.reduce((a, b) => a + b, 0) / draws, min: Math.min(...fids), max: Math.max(...fids), draws };
}

/** One AdamW step of an image method's loss (linear warmup to lr over `warmup` steps, gradient norm clipped); returns the loss. */
export function imageStep(model: ImageModel, opt: AdamW, x: Tensor, labels: Int32Array, gen: RandomGenerator, step: number, o: { lr: number; warmup: number; clip: number }): number {
  opt.setLr(o.lr * Math.min(1, (step + 1) / o.warmup));
  return tidy(() => {
    opt.zeroGrad();
    const l = model.loss(x, labels, gen, step);
    l.backward();
    clipGradNorm(model.module.parameters(), o.clip);
    opt.step();
    return l.item();
  });
}
