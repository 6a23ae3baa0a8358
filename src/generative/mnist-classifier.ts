// The MNIST classifier behind "FID-MNIST": a 784-256-256-10 ReLU MLP trained by tsformer with AdamW on
// images in [0, 1]. FID-MNIST is ours: the Fréchet distance (metrics.ts) between Gaussians fitted to the
// 256 penultimate activations of real and generated images. It is NOT the Inception FID of Heusel et al.
// 2017 and its values are not comparable with published FIDs; it compares our models with each other and
// with the same metric on real test images.

import type { MnistData } from "../data/mnist.js";
import { MnistBatcher } from "../data/mnist.js";
import * as ops from "../ops/index.js";
import { noGrad } from "../tensor/autograd.js";
import { RandomGenerator } from "../tensor/rng.js";
import { tidy } from "../tensor/scope.js";
import { Tensor } from "../tensor/tensor.js";
import { fit } from "./fit.js";
import { ReluMLP } from "./mlp.js";
import { frechetFeatureDistance } from "./metrics.js";

/** 784-256-256-10; its features are the 256 activations after the second ReLU. */
export class MnistMLP extends ReluMLP {
  constructor(generator?: RandomGenerator) {
    super(784, 10, { hidden: 256, layers: 2, generator });
  }
  override features(x: Tensor): Tensor {
    if (x.ndim !== 2 || x.shape[1] !== 784) throw new RangeError(`MnistMLP: images must be [B, 784] (28x28, one channel, in [0, 1]), got [${x.shape.join(", ")}]`);
    return super.features(x);
  }
}

export interface ClassifierTrainOptions { epochs?: number; batchSize?: number; lr?: number; seed?: number; onStep?: (step: number, loss: number) => void }

/** Train on data (images in [0, 1]); defaults: 5 epochs of batch 128, AdamW lr 1e-3, no weight decay. */
export function trainMnistClassifier(data: MnistData, o: ClassifierTrainOptions = {}): MnistMLP {
  const { epochs = 5, batchSize = 128, lr = 1e-3, seed = 0 } = o;
  const model = new MnistMLP(new RandomGenerator(seed));
  const batches = new MnistBatcher(data, batchSize, seed + 1);
  fit(model, () => { const { x, y } = batches.next(); return ops.crossEntropy(model.forward(x), y); },
    { steps: Math.floor((epochs * data.n) / batchSize), lr, onStep: o.onStep });
  return model;
}

/** Rows of `images` [n, 784] through fn in chunks, concatenated (no gradient). */
function mapRows(images: Float32Array, fn: (x: Tensor) => Tensor, chunk = 1000): Float32Array[] {
  const n = images.length / 784, out: Float32Array[] = [];
  noGrad(() => {
    for (let i = 0; i < n; i += chunk) {
      const m = Math.min(chunk, n - i);
      out.push(tidy(() => fn(new Tensor(images.slice(i * 784, (i + m) * 784), [m, 784])).toTypedArray() as Float32Array));
    }
  });
  return out;
}

export function classifierAccuracy(model: MnistMLP, data: MnistData): number {
  let right = 0, k = 0;
  for (const logits of mapRows(data.images, (x) => model.forward(x))) {
    for (let r = 0; r < logits.length / 10; r++, k++) {
      let best = 0;
      for (let c = 1; c < 10; c++) if (logits[r * 10 + c] > logits[r * 10 + best]) best = c;
      if (best === data.labels[k]) right++;
    }
  }
  return right / data.n;
}

/** The classifier's penultimate features of images [n, 784] in [0, 1], as [n, 256]. */
export function mnistFeatures(model: MnistMLP, images: Float32Array): Tensor {
  const parts = mapRows(images, (x) => model.features(x));
  const all = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let off = 0;
  for (const p of parts) { all.set(p, off); off += p.length; }
  return new Tensor(all, [all.length / 256, 256]);
}

/** FID-MNIST (ours, see above) between two image sets [n, 784] in [0, 1]. */
export function fidMnist(model: MnistMLP, a: Float32Array, b: Float32Array): number {
  return frechetFeatureDistance(mnistFeatures(model, a), mnistFeatures(model, b));
}
