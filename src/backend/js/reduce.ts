// Reference reductions, prefix sums and strided copies.

import type { FloatArray, ReduceOp } from "../backend.js";

export function reduce(op: ReduceOp, x: FloatArray, outer: number, dim: number, inner: number, out: FloatArray): void {
  for (let o = 0; o < outer; o++) {
    const base = o * dim * inner;
    for (let i = 0; i < inner; i++) {
      let acc = op === "sum" ? 0 : x[base + i];
      for (let d = op === "sum" ? 0 : 1; d < dim; d++) {
        const v = x[base + d * inner + i];
        if (op === "sum") acc += v;
        else if (op === "max" ? v > acc || v !== v : v < acc || v !== v) acc = v;
      }
      out[o * inner + i] = acc;
    }
  }
}

export function cumsum(x: FloatArray, outer: number, dim: number, inner: number, out: FloatArray, reverse: boolean): void {
  for (let o = 0; o < outer; o++) {
    const base = o * dim * inner;
    for (let i = 0; i < inner; i++) {
      let acc = 0;
      for (let s = 0; s < dim; s++) {
        const d = reverse ? dim - 1 - s : s;
        const p = base + d * inner + i;
        acc += x[p];
        out[p] = acc;
      }
    }
  }
}

type Indexable = { [i: number]: number };

export function stridedCopy(src: Indexable, srcOff: number, srcStrides: number[], dst: Indexable, dstOff: number, dstStrides: number[], shape: number[]): void {
  const rank = shape.length;
  let n = 1;
  for (const d of shape) n *= d;
  if (n === 0) return;
  if (rank === 0) { dst[dstOff] = src[srcOff]; return; }
  const last = rank - 1;
  const inner = shape[last], ss = srcStrides[last], ds = dstStrides[last];
  const idx = new Array<number>(rank).fill(0);
  let ps = srcOff, pd = dstOff;
  for (let o = 0; o < n; o += inner) {
    for (let j = 0, a = ps, b = pd; j < inner; j++, a += ss, b += ds) dst[b] = src[a];
    for (let d = last - 1; d >= 0; d--) {
      idx[d]++;
      ps += srcStrides[d];
      pd += dstStrides[d];
      if (idx[d] < shape[d]) break;
      ps -= srcStrides[d] * shape[d];
      pd -= dstStrides[d] * shape[d];
      idx[d] = 0;
    }
  }
}
