// Reference gather / scatter-add along the middle axis of [outer, dim, inner], and the AdamW step.

import type { AdamWArgs, FloatArray } from "../backend.js";

function checkIndex(v: number, dimIn: number, j: number): void {
  if (!(v >= 0 && v < dimIn)) throw new RangeError(`index ${v} at position ${j} is out of range [0, ${dimIn})`);
}

export function indexSelect(x: FloatArray, outer: number, dimIn: number, inner: number, idx: Int32Array, nIdx: number, out: FloatArray): void {
  for (let j = 0; j < nIdx; j++) checkIndex(idx[j], dimIn, j);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < nIdx; j++) {
      const src = (o * dimIn + idx[j]) * inner, dst = (o * nIdx + j) * inner;
      for (let i = 0; i < inner; i++) out[dst + i] = x[src + i];
    }
  }
}

export function indexAdd(gOut: FloatArray, outer: number, dimIn: number, inner: number, idx: Int32Array, nIdx: number, gx: FloatArray): void {
  for (let j = 0; j < nIdx; j++) checkIndex(idx[j], dimIn, j);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < nIdx; j++) {
      const dst = (o * dimIn + idx[j]) * inner, src = (o * nIdx + j) * inner;
      for (let i = 0; i < inner; i++) gx[dst + i] += gOut[src + i];
    }
  }
}

// AdamW (Loshchilov & Hutter 2019, Alg. 2): decay is applied to the parameter, not folded into the gradient.
export function adamw(g: AdamWArgs, n: number): void {
  const { param, grad, m, v, lr, beta1, beta2, eps, weightDecay, bc1, bc2 } = g;
  // step = lr / bc1 and denominator sqrt(v) / sqrt(bc2) + eps, as PyTorch arranges it
  const decay = 1 - lr * weightDecay, step = lr / bc1, rs2 = 1 / Math.sqrt(bc2);
  for (let i = 0; i < n; i++) {
    const gi = grad[i];
    m[i] = beta1 * m[i] + (1 - beta1) * gi;
    v[i] = beta2 * v[i] + (1 - beta2) * gi * gi;
    param[i] = param[i] * decay - step * m[i] / (Math.sqrt(v[i]) * rs2 + eps);
  }
}
