// Squeeze (Dinh et al. 2017, sec. 3.6, fig. 3): each 2x2 spatial block becomes 4 channels,
// [B, C, H, W] -> [B, 4C, H/2, W/2], trading space for channels; a permutation, so log|det| = 0.
// Channel order c * f² + i * f + j for the block offset (i, j), as Glow's squeeze2d (openai/glow, tfops.py).

import { Module } from "../../nn/module.js";
import * as ops from "../../ops/index.js";
import type { Tensor } from "../../tensor/tensor.js";
import { checkImage, positiveInt, type FlowLayer, type FlowOutput } from "./flow.js";

export class Squeeze extends Module implements FlowLayer {
  constructor(readonly factor = 2) {
    super();
    positiveInt("Squeeze", "factor", factor);
  }

  forward(x: Tensor): FlowOutput {
    checkImage("Squeeze", x);
    const [B, C, H, W] = x.shape, f = this.factor;
    if (H % f || W % f) throw new RangeError(`Squeeze: image size ${H}x${W} is not divisible by the squeeze factor ${f}`);
    const y = x.reshape(B, C, H / f, f, W / f, f).permute(0, 1, 3, 5, 2, 4).reshape(B, C * f * f, H / f, W / f);
    return { y, logdet: ops.zeros([B], { dtype: x.dtype }) };
  }

  inverse(y: Tensor): Tensor {
    checkImage("Squeeze.inverse", y);
    const [B, C, H, W] = y.shape, f = this.factor;
    if (C % (f * f)) throw new RangeError(`Squeeze.inverse: ${C} channels are not divisible by factor² = ${f * f}`);
    const c = C / (f * f);
    return y.reshape(B, c, f, f, H, W).permute(0, 1, 4, 2, 5, 3).reshape(B, c, H * f, W * f);
  }
}
