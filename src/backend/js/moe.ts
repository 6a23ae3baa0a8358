// moeFfn's reference twin: the gathered rows, the experts' products as grouped GEMMs, the activation
// (gated: times the W3 product) and the gate-weighted scatter-add, one step after another.

import type { FloatArray, MoeFfnArgs } from "../backend.js";
import { unary } from "./elementwise.js";
import { gemmGrouped } from "./gemm.js";

export function moeFfn(a: MoeFfnArgs): void {
  const { x, y, d, f, tokens, offsets, gates } = a;
  const S = offsets[offsets.length - 1];
  const make = (n: number): FloatArray => (x instanceof Float64Array ? new Float64Array(n) : new Float32Array(n));
  const xs = make(S * d), h = make(S * f), ys = make(S * d);
  for (let s = 0; s < S; s++) xs.set(x.subarray(tokens[s] * d, tokens[s] * d + d), s * d);
  const rows = (bs: FloatArray[], c: FloatArray, n: number, k: number, from: FloatArray) =>
    gemmGrouped({ mode: "rows", offsets, m: 0, n, k, a: from, lda: k, bs, ldb: k, transB: true, c, ldc: n });
  rows(a.w1, h, f, d, xs);
  unary(a.act, h, h, S * f, {});
  if (a.w3) {
    const g = make(S * f);
    rows(a.w3, g, f, d, xs);
    for (let i = 0; i < S * f; i++) h[i] *= g[i];
  }
  rows(a.w2, ys, d, f, h);
  for (let s = 0; s < S; s++) {
    const o = tokens[s] * d;
    for (let i = 0; i < d; i++) y[o + i] += gates[s] * ys[s * d + i];
  }
}
