// Sinusoidal absolute positions (Vaswani et al. 2017, §3.5): PE(pos, 2i) = sin(pos / 10000^(2i/D)),
// PE(pos, 2i+1) = cos(pos / 10000^(2i/D)), added to the token embeddings. A fixed function of the
// position, so it is defined past the training length (whether the model copes is another matter).

import * as ops from "../../ops/index.js";
import type { Tensor } from "../../tensor/tensor.js";

/** PE for positions start .. start + T - 1 ([T, D]) or explicit ones (length T -> [T, D], B * T -> [B, T, D]). */
export function sinusoidalPositions(positions: number | Int32Array, T: number, D: number, B = 1): Tensor {
  const pos = typeof positions === "number" ? Int32Array.from({ length: T }, (_, t) => positions + t) : positions;
  const out = new Float32Array(pos.length * D);
  for (let p = 0; p < pos.length; p++) {
    for (let i = 0; 2 * i < D; i++) {
      const a = pos[p] / Math.pow(10000, (2 * i) / D);
      out[p * D + 2 * i] = Math.sin(a);
      if (2 * i + 1 < D) out[p * D + 2 * i + 1] = Math.cos(a);
    }
  }
  return ops.tensor(out, { shape: pos.length === T ? [T, D] : [B, T, D] });
}
