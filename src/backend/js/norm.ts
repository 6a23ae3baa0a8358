// Reference LayerNorm (Ba et al. 2016) and RMSNorm (Zhang & Sennrich 2019), forward and backward.

import type { FloatArray } from "../backend.js";

export function layerNorm(x: FloatArray, w: FloatArray | null, b: FloatArray | null, rows: number, cols: number, eps: number, y: FloatArray, mean: FloatArray, rstd: FloatArray): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let mu = 0;
    for (let j = 0; j < cols; j++) mu += x[o + j];
    mu /= cols;
    let v = 0;
    for (let j = 0; j < cols; j++) { const d = x[o + j] - mu; v += d * d; }
    const rs = 1 / Math.sqrt(v / cols + eps);
    mean[r] = mu;
    rstd[r] = rs;
    for (let j = 0; j < cols; j++) {
      const h = (x[o + j] - mu) * rs;
      y[o + j] = (w ? h * w[j] : h) + (b ? b[j] : 0);
    }
  }
}

// With h = (x - mu) * rstd and g = gy * w: gx = rstd * (g - mean(g) - h * mean(g * h)).
export function layerNormBackward(x: FloatArray, w: FloatArray | null, mean: FloatArray, rstd: FloatArray, gy: FloatArray, rows: number, cols: number, gx: FloatArray, gw: FloatArray | null, gb: FloatArray | null): void {
  if (gw) gw.fill(0);
  if (gb) gb.fill(0);
  for (let r = 0; r < rows; r++) {
    const o = r * cols, mu = mean[r], rs = rstd[r];
    let mg = 0, mgh = 0;
    for (let j = 0; j < cols; j++) {
      const h = (x[o + j] - mu) * rs;
      const g = w ? gy[o + j] * w[j] : gy[o + j];
      mg += g;
      mgh += g * h;
      if (gw) gw[j] += gy[o + j] * h;
      if (gb) gb[j] += gy[o + j];
    }
    mg /= cols;
    mgh /= cols;
    for (let j = 0; j < cols; j++) {
      const h = (x[o + j] - mu) * rs;
      const g = w ? gy[o + j] * w[j] : gy[o + j];
      gx[o + j] = rs * (g - mg - h * mgh);
    }
  }
}

export function rmsNorm(x: FloatArray, w: FloatArray | null, rows: number, cols: number, eps: number, y: FloatArray, rstd: FloatArray): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let ss = 0;
    for (let j = 0; j < cols; j++) ss += x[o + j] * x[o + j];
    const rs = 1 / Math.sqrt(ss / cols + eps);
    rstd[r] = rs;
    for (let j = 0; j < cols; j++) y[o + j] = w ? x[o + j] * rs * w[j] : x[o + j] * rs;
  }
}

// With h = x * rstd and g = gy * w: gx = rstd * (g - h * mean(g * h)).
export function rmsNormBackward(x: FloatArray, w: FloatArray | null, rstd: FloatArray, gy: FloatArray, rows: number, cols: number, gx: FloatArray, gw: FloatArray | null): void {
  if (gw) gw.fill(0);
  for (let r = 0; r < rows; r++) {
    const o = r * cols, rs = rstd[r];
    let mgh = 0;
    for (let j = 0; j < cols; j++) {
      const h = x[o + j] * rs;
      mgh += (w ? gy[o + j] * w[j] : gy[o + j]) * h;
      if (gw) gw[j] += gy[o + j] * h;
    }
    mgh /= cols;
    for (let j = 0; j < cols; j++) {
      const g = w ? gy[o + j] * w[j] : gy[o + j];
      gx[o + j] = rs * (g - x[o + j] * rs * mgh);
    }
  }
}
