// The contract every normalizing-flow layer keeps (Dinh et al. 2017, "Density estimation using Real NVP",
// eq. 3: log p_X(x) = log p_Z(f(x)) + log|det ∂f/∂x|): forward(x) -> { y, logdet [B] } and inverse(y) -> x,
// on [B, C, H, W] images. A sequence composes them: the log-determinants of a chain add (the chain rule).

import { Module } from "../../nn/module.js";
import * as ops from "../../ops/index.js";
import { fmtShape } from "../../tensor/shape.js";
import type { RandomGenerator } from "../../tensor/rng.js";
import type { Tensor } from "../../tensor/tensor.js";

export interface FlowOutput {
  y: Tensor;
  /** log|det ∂y/∂x| per example, [B]. */
  logdet: Tensor;
}

export interface FlowLayer {
  forward(x: Tensor): FlowOutput;
  inverse(y: Tensor): Tensor;
}

export interface FlowOptions {
  /** Parameter dtype (default float32; float64 for the brute-force Jacobian checks). */
  dtype?: "float32" | "float64";
  generator?: RandomGenerator;
}

/** x must be [B, C, H, W] (with C = channels when given); one clear error naming the layer otherwise. */
export function checkImage(layer: string, x: Tensor, channels?: number): void {
  if (x.ndim !== 4) throw new RangeError(`${layer}: input must be [B, C, H, W], got ${fmtShape(x.shape)}`);
  if (channels !== undefined && x.shape[1] !== channels) throw new RangeError(`${layer}: input has ${x.shape[1]} channels, expected ${channels}`);
}

/** A positive integer config value, or an error naming the layer and the field. */
export function positiveInt(layer: string, field: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${layer}: ${field} must be a positive integer, got ${v}`);
  return v;
}

/** Sum over every dim but the batch: [B, ...] -> [B]. */
export const perExample = (t: Tensor): Tensor => ops.sum(t.reshape(t.shape[0], -1), 1);

/** Layers applied in order; the inverse runs them backwards. */
export class FlowSequence extends Module implements FlowLayer {
  readonly layers: (Module & FlowLayer)[];
  constructor(layers: (Module & FlowLayer)[]) {
    super();
    this.layers = this.childList("layers", layers);
  }

  forward(x: Tensor): FlowOutput {
    let logdet: Tensor | null = null;
    for (const l of this.layers) {
      const o = l.forward(x);
      x = o.y;
      logdet = logdet ? ops.add(logdet, o.logdet) : o.logdet;
    }
    return { y: x, logdet: logdet ?? ops.zeros([x.shape[0]], { dtype: x.dtype }) };
  }

  inverse(y: Tensor): Tensor {
    for (let i = this.layers.length - 1; i >= 0; i--) y = this.layers[i].inverse(y);
    return y;
  }
}
