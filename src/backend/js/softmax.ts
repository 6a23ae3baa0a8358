// Reference row softmax / log-softmax and the fused softmax + cross-entropy.

import type { FloatArray } from "../backend.js";

export function softmax(x: FloatArray, y: FloatArray, rows: number, cols: number, log: boolean): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let mx = -Infinity;
    for (let j = 0; j < cols; j++) if (x[o + j] > mx) mx = x[o + j];
    let s = 0;
    for (let j = 0; j < cols; j++) s += Math.exp(x[o + j] - mx);
    if (log) {
      const lse = mx + Math.log(s);
      for (let j = 0; j < cols; j++) y[o + j] = x[o + j] - lse;
    } else {
      const inv = 1 / s;
      for (let j = 0; j < cols; j++) y[o + j] = Math.exp(x[o + j] - mx) * inv;
    }
  }
}

export function softmaxBackward(y: FloatArray, gy: FloatArray, gx: FloatArray, rows: number, cols: number, log: boolean): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    if (log) {
      // d/dx log_softmax: gx = gy - softmax * sum(gy)
      let s = 0;
      for (let j = 0; j < cols; j++) s += gy[o + j];
      for (let j = 0; j < cols; j++) gx[o + j] = gy[o + j] - Math.exp(y[o + j]) * s;
    } else {
      // d/dx softmax: gx = y * (gy - sum(gy * y))
      let s = 0;
      for (let j = 0; j < cols; j++) s += gy[o + j] * y[o + j];
      for (let j = 0; j < cols; j++) gx[o + j] = y[o + j] * (gy[o + j] - s);
    }
  }
}

function checkTarget(t: number, cols: number, r: number): void {
  if (!(t >= 0 && t < cols)) throw new RangeError(`cross_entropy: target ${t} at row ${r} is out of range [0, ${cols})`);
}

// Label smoothing (Szegedy et al. 2016, sec. 7): q = (1 - eps) * onehot(t) + eps / C, so
// loss = lse - (1 - eps) * x_t - eps * mean(x).
export function crossEntropy(logits: FloatArray, targets: Int32Array, rows: number, cols: number, ignoreIndex: number, smoothing: number, loss: FloatArray, lse: FloatArray): void {
  for (let r = 0; r < rows; r++) {
    const t = targets[r];
    const o = r * cols;
    let mx = -Infinity;
    for (let j = 0; j < cols; j++) if (logits[o + j] > mx) mx = logits[o + j];
    let s = 0, sum = 0;
    for (let j = 0; j < cols; j++) { s += Math.exp(logits[o + j] - mx); sum += logits[o + j]; }
    const l = mx + Math.log(s);
    lse[r] = l;
    if (t === ignoreIndex) { loss[r] = 0; continue; }
    checkTarget(t, cols, r);
    loss[r] = l - (1 - smoothing) * logits[o + t] - (smoothing * sum) / cols;
  }
}

export function crossEntropyBackward(logits: FloatArray, targets: Int32Array, lse: FloatArray, gLoss: FloatArray, rows: number, cols: number, ignoreIndex: number, smoothing: number, gLogits: FloatArray): void {
  const u = smoothing / cols;
  for (let r = 0; r < rows; r++) {
    const t = targets[r];
    const o = r * cols;
    if (t === ignoreIndex) { for (let j = 0; j < cols; j++) gLogits[o + j] = 0; continue; }
    const g = gLoss[r], l = lse[r];
    for (let j = 0; j < cols; j++) gLogits[o + j] = g * (Math.exp(logits[o + j] - l) - u);
    gLogits[o + t] -= g * (1 - smoothing);
  }
}
