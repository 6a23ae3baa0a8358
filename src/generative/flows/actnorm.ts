// ActNorm (Kingma & Dhariwal 2018, "Glow", sec. 3.1, table 1): a per-channel affine y = s ⊙ (x + b) with
// log|det| = H W Σ log|s|. Data-dependent init: on the first forward, b and log s are set so that the
// post-actnorm activations of that batch have zero mean and unit variance per channel (openai/glow, tfops.py
// actnorm: b = -mean, s = 1 / (std + 1e-6)). The init flag is a buffer, so a loaded model does not re-init.

import { Module } from "../../nn/module.js";
import * as ops from "../../ops/index.js";
import { noGrad } from "../../tensor/autograd.js";
import type { Tensor } from "../../tensor/tensor.js";
import { checkImage, positiveInt, type FlowLayer, type FlowOptions, type FlowOutput } from "./flow.js";

export class ActNorm extends Module implements FlowLayer {
  readonly bias: Tensor;
  readonly logScale: Tensor;
  private readonly initialized: Tensor;

  constructor(readonly channels: number, o: FlowOptions = {}) {
    super();
    positiveInt("ActNorm", "channels", channels);
    const dtype = o.dtype ?? "float32";
    this.bias = this.param("bias", ops.zeros([1, channels, 1, 1], { dtype }));
    this.logScale = this.param("log_scale", ops.zeros([1, channels, 1, 1], { dtype }));
    this.initialized = this.buffer("initialized", ops.zeros([1], { dtype }));
  }

  get isInitialized(): boolean { return this.initialized.item() !== 0; }

  /** Data-dependent init from a batch (Glow sec. 3.1). */
  initFrom(x: Tensor): void {
    noGrad(() => {
      const [B, C, H, W] = x.shape, n = B * H * W, v = x.contiguous().toTypedArray();
      const b = this.bias.data, ls = this.logScale.data;
      for (let c = 0; c < C; c++) {
        let s = 0, s2 = 0;
        for (let i = 0; i < B; i++) for (let k = 0; k < H * W; k++) { const t = v[(i * C + c) * H * W + k]; s += t; s2 += t * t; }
        const mean = s / n, std = Math.sqrt(Math.max(s2 / n - mean * mean, 0));
        b[this.bias.offset + c] = -mean;
        ls[this.logScale.offset + c] = -Math.log(std + 1e-6);
      }
      this.initialized.data[this.initialized.offset] = 1;
    });
  }

  forward(x: Tensor): FlowOutput {
    checkImage("ActNorm", x, this.channels);
    if (!this.isInitialized) this.initFrom(x);
    const y = ops.mul(ops.add(x, this.bias), ops.exp(this.logScale));
    const hw = x.shape[2] * x.shape[3];
    const logdet = ops.mul(ops.sum(this.logScale), hw);
    return { y, logdet: ops.expand(logdet.reshape(1), [x.shape[0]]) };
  }

  inverse(y: Tensor): Tensor {
    checkImage("ActNorm.inverse", y, this.channels);
    return ops.sub(ops.mul(y, ops.exp(ops.neg(this.logScale))), this.bias);
  }
}
