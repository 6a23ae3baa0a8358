// Data side of the image flows. Dequantization (Theis et al. 2016; Dinh et al. 2017 sec. 4.1): 8-bit pixels
// k ∈ {0..255} become y = (k + u) / 256 with u ~ U[0, 1), a density on [0, 1)^D whose log-likelihood
// bounds the discrete one. The logit transform (RealNVP sec. 4.1) maps (0, 1) to ℝ:
//   p = α + (1 - 2α) y,  z = logit(p) = log p - log(1 - p),
//   log|det ∂z/∂y| = Σ_d [log(1 - 2α) - log p_d - log(1 - p_d)]  (dp/dy = 1 - 2α, dz/dp = 1 / (p (1 - p))),
// with α = 0.05 (RealNVP's value). The paper prints α + (1 - α) y; the shrink here is symmetric, so p stays
// in [α, 1 - α] at both ends, as reimplementations do (chrischute/real-nvp: (2y - 1) 0.9 then back to (0, 1)).

import { Module } from "../../nn/module.js";
import * as ops from "../../ops/index.js";
import type { RandomGenerator } from "../../tensor/rng.js";
import type { Tensor } from "../../tensor/tensor.js";
import { perExample, type FlowLayer, type FlowOutput } from "./flow.js";

/**
 * Uniform dequantization of images stored as k / 255 (loadMnist's "[0,1]" range): (k + u) / 256, u ~ U[0, 1).
 * values: the flat pixels; shape: the image tensor's shape.
 */
export function dequantize(values: ArrayLike<number>, shape: number[], gen: RandomGenerator): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (values.length !== n) throw new RangeError(`dequantize: ${values.length} pixel values for the shape [${shape.join(", ")}] (${n})`);
  const out = new Float32Array(n);
  gen.uniform(out);
  for (let i = 0; i < n; i++) {
    const k = Math.round(values[i] * 255);
    if (k < 0 || k > 255 || Math.abs(values[i] * 255 - k) > 1e-3) throw new RangeError(`dequantize: pixel ${i} is ${values[i]}, expected k / 255 with k in 0..255`);
    out[i] = (k + out[i]) / 256;
  }
  return ops.tensor(out, { shape });
}

/**
 * Bits per dimension of the discrete data from the NLL (nats, summed over the D dimensions) of the
 * dequantized y ∈ [0, 1)^D. The pixel scale is 256 y = k + u ∈ [0, 256)^D, whose density is p_Y(y) / 256^D
 * (the Jacobian of y -> 256 y is 256^D), and -log P(k) <= E_u[-log p_{256Y}(k + u)] (Theis et al. 2016), so
 *   bits/dim = (nll + D log 256) / (D ln 2).
 */
export function bitsPerDim(nll: number, dims: number): number {
  if (!Number.isSafeInteger(dims) || dims < 1) throw new RangeError(`bitsPerDim: dims must be a positive integer, got ${dims}`);
  return (nll + dims * Math.log(256)) / (dims * Math.LN2);
}

export class LogitTransform extends Module implements FlowLayer {
  constructor(readonly alpha = 0.05) {
    super();
    if (!(alpha >= 0 && alpha < 0.5)) throw new RangeError(`LogitTransform: alpha must be in [0, 0.5), got ${alpha}`);
  }

  forward(y: Tensor): FlowOutput {
    const p = ops.add(ops.mul(y, 1 - 2 * this.alpha), this.alpha), logP = ops.log(p), log1mP = ops.log(ops.sub(1, p));
    const logdet = ops.add(ops.neg(perExample(ops.add(logP, log1mP))), (y.numel / y.shape[0]) * Math.log(1 - 2 * this.alpha));
    return { y: ops.sub(logP, log1mP), logdet };
  }

  inverse(z: Tensor): Tensor {
    return ops.div(ops.sub(ops.sigmoid(z), this.alpha), 1 - 2 * this.alpha);
  }
}
