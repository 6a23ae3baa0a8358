// Reference im2col / col2im (see Im2colArgs in backend.ts), the twin of native/conv/im2col.cc: the same
// loops in the same order, so that col2im's sums agree with the native kernel's.

import type { FloatArray, Im2colArgs } from "../backend.js";

/** First and one-past-last ox with 0 <= ox * s - p + off < w. */
function validRange(w: number, s: number, p: number, off: number, ow: number): [number, number] {
  const a = p - off, b = w + p - off;
  const lo = Math.min(a <= 0 ? 0 : Math.ceil(a / s), ow);
  return [lo, Math.max(lo, Math.min(b <= 0 ? 0 : Math.ceil(b / s), ow))];
}

/** One (image, channel) plane: im2col writes its kh*kw rows of col, the adjoint its x plane. */
function plane(g: Im2colArgs, nc: number, adjoint: boolean): void {
  const { x, col, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow } = g;
  const L = oh * ow, xoff = nc * h * w;
  const coff = nc * kh * kw * L;  // (img * c + ci) = nc
  if (adjoint) x.fill(0, xoff, xoff + h * w);
  for (let ki = 0; ki < kh; ki++) {
    for (let kj = 0; kj < kw; kj++) {
      const row = coff + (ki * kw + kj) * L;
      const [lo, hi] = validRange(w, sw, pw, kj * dw, ow);
      for (let oy = 0; oy < oh; oy++) {
        const iy = oy * sh - ph + ki * dh, at = row + oy * ow;
        if (iy < 0 || iy >= h) {
          if (!adjoint) col.fill(0, at, at + ow);
          continue;
        }
        const base = xoff + iy * w - pw + kj * dw;
        if (adjoint) {
          for (let ox = lo; ox < hi; ox++) x[base + ox * sw] += col[at + ox];
        } else {
          col.fill(0, at, at + lo);
          for (let ox = lo; ox < hi; ox++) col[at + ox] = x[base + ox * sw];
          col.fill(0, at + hi, at + ow);
        }
      }
    }
  }
}

export function im2col(g: Im2colArgs<FloatArray>): void {
  for (let p = 0; p < g.n * g.c; p++) plane(g, p, false);
}

export function col2im(g: Im2colArgs<FloatArray>): void {
  for (let p = 0; p < g.n * g.c; p++) plane(g, p, true);
}
