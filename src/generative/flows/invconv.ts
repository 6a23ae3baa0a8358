// Invertible 1x1 convolution (Kingma & Dhariwal 2018, "Glow", sec. 3.2), in its LU form (eq. 10):
// W = P L (U + diag(s)), P a fixed permutation, L unit lower triangular, U strictly upper triangular, so that
// log|det W| = Σ log|s| and the layer's log|det| = H W Σ log|s| costs O(C) instead of slogdet's O(C³).
// Init as Glow: a random rotation, LU-decomposed; sign(s) is fixed and log|s| is learned (openai/glow,
// model.py invertible_1x1_conv, LU_decomposed). The inverse convolves with W⁻¹ computed in float64.

import { Module } from "../../nn/module.js";
import * as ops from "../../ops/index.js";
import { defaultGenerator } from "../../tensor/rng.js";
import type { Tensor } from "../../tensor/tensor.js";
import { checkImage, positiveInt, type FlowLayer, type FlowOptions, type FlowOutput } from "./flow.js";
import { invert, luDecompose, randomRotation } from "./linalg.js";

export class InvConv1x1 extends Module implements FlowLayer {
  readonly lower: Tensor;
  readonly upper: Tensor;
  readonly logS: Tensor;
  private readonly perm: Tensor;
  private readonly signS: Tensor;

  constructor(readonly channels: number, o: FlowOptions = {}) {
    super();
    const C = positiveInt("InvConv1x1", "channels", channels), dtype = o.dtype ?? "float32";
    const { p, l, u } = luDecompose(randomRotation(C, o.generator ?? defaultGenerator), C);
    const diag = Array.from({ length: C }, (_, i) => u[i * C + i]);
    for (let i = 0; i < C; i++) { u[i * C + i] = 0; l[i * C + i] = 0; }
    const t = (v: ArrayLike<number>, shape: number[]) => ops.tensor(Array.from(v), { dtype, shape });
    this.perm = this.buffer("perm", t(p, [C, C]));
    this.signS = this.buffer("sign_s", t(diag.map(Math.sign), [C]));
    this.lower = this.param("lower", t(l, [C, C]));
    this.upper = this.param("upper", t(u, [C, C]));
    this.logS = this.param("log_s", t(diag.map((d) => Math.log(Math.abs(d))), [C]));
  }

  /** W = P (L ⊙ strict-lower mask + I) (U ⊙ strict-upper mask + diag(sign(s) exp(log|s|))), [C, C]. */
  weight(): Tensor {
    const C = this.channels, dtype = this.lower.dtype;
    const eye = ops.tensor(Array.from({ length: C * C }, (_, k) => (k % (C + 1) === 0 ? 1 : 0)), { dtype, shape: [C, C] });
    const L = ops.add(ops.tril(this.lower, -1), eye);
    const U = ops.add(ops.triu(this.upper, 1), ops.mul(eye, ops.mul(this.signS, ops.exp(this.logS)).reshape(1, C)));
    return ops.matmul(this.perm, ops.matmul(L, U));
  }

  forward(x: Tensor): FlowOutput {
    checkImage("InvConv1x1", x, this.channels);
    const C = this.channels, y = ops.conv2d(x, this.weight().reshape(C, C, 1, 1));
    const logdet = ops.mul(ops.sum(this.logS), x.shape[2] * x.shape[3]);
    return { y, logdet: ops.expand(logdet.reshape(1), [x.shape[0]]) };
  }

  inverse(y: Tensor): Tensor {
    checkImage("InvConv1x1.inverse", y, this.channels);
    const C = this.channels, w = this.weight();
    const inv = ops.tensor(Array.from(invert(w.contiguous().toTypedArray(), C)), { dtype: w.dtype, shape: [C, C, 1, 1] });
    return ops.conv2d(y, inv);
  }
}
