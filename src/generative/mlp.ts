// A ReLU MLP: in -> (Linear + ReLU) x layers -> Linear -> out. The WGAN-GP generator and critic (the
// reference toy script's networks) and the FID-MNIST classifier are this network.

import { Linear } from "../nn/layers.js";
import { Module } from "../nn/module.js";
import * as ops from "../ops/index.js";
import type { RandomGenerator } from "../tensor/rng.js";
import type { Tensor } from "../tensor/tensor.js";

export class ReluMLP extends Module {
  private readonly net: Linear[];
  constructor(readonly inFeatures: number, readonly outFeatures: number, o: { hidden?: number; layers?: number; generator?: RandomGenerator } = {}) {
    super();
    const { hidden = 128, layers = 3, generator } = o;
    if (!Number.isSafeInteger(layers) || layers < 1) throw new RangeError(`ReluMLP: layers must be a positive integer, got ${layers}`);
    const dims = [inFeatures, ...new Array<number>(layers).fill(hidden), outFeatures];
    this.net = this.childList("net", dims.slice(1).map((d, i) => new Linear(dims[i], d, true, { generator })));
  }
  /** The last hidden layer's activations (after its ReLU). */
  features(x: Tensor): Tensor {
    let h = x;
    for (const l of this.net.slice(0, -1)) h = ops.relu(l.forward(h));
    return h;
  }
  forward(x: Tensor): Tensor {
    return this.net[this.net.length - 1].forward(this.features(x));
  }
}
