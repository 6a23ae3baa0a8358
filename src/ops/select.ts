// Selection along an axis: argmax, topk, gather / scatterAdd (each the other's backward, so both
// differentiate twice), and clone. Indices are int32, as everywhere in tsformer (torch uses int64).

import { recordComposite } from "../tensor/autograd.js";
import { contiguousStrides, fmtShape, normAxis, sameShape } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import { around, contiguousData } from "./util.js";

/** NaN counts as the largest value, as in torch's max / argmax / topk. */
const greater = (a: number, b: number) => a > b || (a !== a && b === b);

/** Offsets into a contiguous tensor of xShape for every element of index, read along axis (torch.gather's addressing). */
function offsets(op: string, xShape: readonly number[], axis: number, index: Tensor): Int32Array {
  if (index.dtype !== "int32") throw new TypeError(`${op}: index must be int32, got ${index.dtype}`);
  if (index.ndim !== xShape.length) throw new RangeError(`${op}: index ${fmtShape(index.shape)} must have as many dimensions as the input ${fmtShape(xShape)}`);
  index.shape.forEach((n, d) => {
    if (d !== axis && n > xShape[d]) throw new RangeError(`${op}: index ${fmtShape(index.shape)} is larger than the input ${fmtShape(xShape)} in dimension ${d}`);
  });
  const idx = contiguousData(index) as Int32Array, strides = contiguousStrides(xShape), size = xShape[axis];
  const out = new Int32Array(idx.length), at = new Array<number>(index.ndim).fill(0);
  for (let p = 0; p < idx.length; p++) {
    const j = idx[p];
    if (!(j >= 0 && j < size)) throw new RangeError(`${op}: index ${j} is out of range for dimension ${axis} of size ${size}`);
    let o = 0;
    for (let d = 0; d < at.length; d++) o += (d === axis ? j : at[d]) * strides[d];
    out[p] = o;
    for (let d = at.length - 1; d >= 0 && ++at[d] === index.shape[d]; d--) at[d] = 0;
  }
  return out;
}

/** out[..., i, ...] = x[..., index[..., i, ...], ...] along dim (torch.gather); differentiable in x. */
export function gather(x: Tensor, dim: number, index: Tensor): Tensor {
  const axis = normAxis(dim, x.ndim);
  const off = offsets("gather", x.shape, axis, index);
  const xd = contiguousData(x), out = Tensor.empty(index.shape, x.dtype), od = out.data;
  for (let p = 0; p < off.length; p++) od[p] = xd[off[p]];
  return recordComposite(out, "gather", [x], (g, { saved: [ix] }) => [scatterAdd(Tensor.zeros(x.shape, g.dtype), dim, ix, g)], [index]);
}

/** x with src added at the positions index names along dim (torch.scatter_add, src shaped as index); differentiable in x and src. */
export function scatterAdd(x: Tensor, dim: number, index: Tensor, src: Tensor): Tensor {
  const axis = normAxis(dim, x.ndim);
  if (x.dtype === "bfloat16" || x.dtype === "float16") throw new TypeError(`scatterAdd: expected a float32, float64 or int32 input, got ${x.dtype}`);
  if (src.dtype !== x.dtype) throw new TypeError(`scatterAdd: src is ${src.dtype}, the input ${x.dtype}`);
  if (!sameShape(src.shape, index.shape)) throw new RangeError(`scatterAdd: src ${fmtShape(src.shape)} must have the index's shape ${fmtShape(index.shape)}`);
  const off = offsets("scatterAdd", x.shape, axis, index);
  const sd = contiguousData(src), out = Tensor.empty(x.shape, x.dtype), od = out.data;
  od.set(contiguousData(x));
  for (let p = 0; p < off.length; p++) od[off[p]] += sd[p];
  return recordComposite(out, "scatter_add", [x, src], (g, { needsInputGrad: [, nsrc], saved: [ix] }) => [g, nsrc ? gather(g, dim, ix) : null], [index]);
}

/** The position of the largest value along dim (the first one on ties; NaN is the largest), int32; over all elements without dim. */
export function argmax(x: Tensor, dim?: number, keepdim = false): Tensor {
  const flat = dim === undefined;
  const shape = flat ? [x.numel] : x.shape;
  const axis = flat ? 0 : normAxis(dim, x.ndim);
  const [outer, n, inner] = x.ndim === 0 ? [1, 1, 1] : around(shape, axis);
  if (n === 0) throw new RangeError(`argmax: dimension ${flat ? "(all)" : dim} of ${fmtShape(x.shape)} is empty; expected at least one element`);
  const outShape = flat ? (keepdim ? x.shape.map(() => 1) : []) : x.shape.flatMap((s, d) => (d !== axis ? [s] : keepdim ? [1] : []));
  const xd = contiguousData(x), out = Tensor.empty(outShape, "int32"), od = out.data;
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      let best = 0;
      for (let j = 1; j < n; j++) if (greater(xd[base + j * inner], xd[base + best * inner])) best = j;
      od[o * inner + i] = best;
    }
  }
  return out;
}

export interface TopkOptions {
  /** The k largest (default) or the k smallest. */
  largest?: boolean;
  /** Values in order (default); false keeps the chosen elements in their input order. */
  sorted?: boolean;
}

/**
 * The k largest (or smallest) values along dim and their int32 positions (torch.topk). Equal values
 * keep their input order; NaN counts as the largest. values is differentiable (a gather of x).
 */
export function topk(x: Tensor, k: number, dim = -1, o: TopkOptions = {}): { values: Tensor; indices: Tensor } {
  const { largest = true, sorted = true } = o;
  const axis = normAxis(dim, x.ndim);
  const [outer, n, inner] = x.ndim === 0 ? [1, 1, 1] : around(x.shape, axis);
  if (!Number.isInteger(k) || k < 0 || k > n) throw new RangeError(`topk: k must be an integer in [0, ${n}] (the size of dimension ${dim} of ${fmtShape(x.shape)}), got ${k}`);
  const xd = contiguousData(x);
  const outShape = x.ndim === 0 ? [] : x.shape.map((s, d) => (d === axis ? k : s));
  const indices = Tensor.empty(outShape, "int32"), id = indices.data;
  const order = Array.from({ length: n }, (_, j) => j);
  for (let b = 0; b < outer; b++) {
    for (let i = 0; i < inner; i++) {
      const at = (j: number) => xd[b * n * inner + j * inner + i];
      const first = largest ? greater : (u: number, v: number) => greater(v, u);
      order.sort((p, q) => (first(at(p), at(q)) ? -1 : first(at(q), at(p)) ? 1 : p - q));
      const chosen = sorted ? order.slice(0, k) : order.slice(0, k).sort((p, q) => p - q);
      chosen.forEach((j, r) => { id[b * k * inner + r * inner + i] = j; });
      for (let j = 0; j < n; j++) order[j] = j;
    }
  }
  return { values: x.ndim === 0 ? clone(x) : gather(x, axis, indices), indices };
}

/** A copy with its own storage (torch.clone); gradients flow through unchanged. */
export function clone(x: Tensor): Tensor {
  const out = Tensor.empty(x.shape, x.dtype);
  out.data.set(contiguousData(x));
  return recordComposite(out, "clone", [x], (g) => [g]);
}
