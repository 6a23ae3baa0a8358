// Tensor-level kernel calls that record no graph: the broadcasting binary kernel, reductions that keep
// their axes, and the two reductions that undo broadcasting / narrowing in backward passes. The
// differentiable ops (binary, reduce, views, join) are built on these, so none of them needs another.

import type { BinaryOp, ReduceOp } from "../backend/backend.js";
import { backend } from "../backend/registry.js";
import { broadcastShapes, broadcastStrides, contiguousStrides, sameShape, type Shape } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import { around, commonFloat, floatData, wrap } from "./util.js";

/** Raw broadcasting kernel call, no graph. */
export function binaryRaw(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  const dtype = commonFloat(op, a, b);
  const shape = broadcastShapes(a.shape, b.shape);
  const out = Tensor.empty(shape, dtype);
  backend().binary(op, a.data as Float64Array, a.offset, broadcastStrides(a.shape, a.strides, shape),
    b.data as Float64Array, b.offset, broadcastStrides(b.shape, b.strides, shape), out.data as Float64Array, shape);
  return out;
}

export /** Reduce `axes` (sorted, unique) keeping them as size-1 dims; runs of adjacent axes reduce in one pass. */
function reduceKeep(op: ReduceOp, x: Tensor, axes: number[]): Tensor {
  const dtype = commonFloat(op, x);
  let data = floatData(x, op);
  const shape = [...x.shape];
  for (let i = axes.length - 1; i >= 0;) {
    let j = i;
    while (j > 0 && axes[j - 1] === axes[j] - 1) j--;
    const first = axes[j], last = axes[i];
    let dim = 1;
    for (let a = first; a <= last; a++) dim *= shape[a];
    const [outer] = around(shape, first);
    const [, , inner] = around(shape, last);
    const out = Tensor.zeros([outer * inner], dtype).data as typeof data;
    backend().reduce(op, data, outer, dim, inner, out);
    data = out;
    for (let a = first; a <= last; a++) shape[a] = 1;
    i = j - 1;
  }
  return wrap(data, shape, dtype);
}

/** Sum a broadcast gradient back down to `shape` (no graph: used inside backward passes). */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.ndim - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.ndim; i++) if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  const kept = reduceKeep("sum", g, axes);
  return new Tensor(kept.data, shape, { dtype: kept.dtype });
}

/** Copy `src` into a strided window of `dst` starting at `start` along `axis`. */
export function copyInto(dst: Tensor, src: Tensor, axis: number, start: number): void {
  const strides = contiguousStrides(dst.shape);
  backend().stridedCopy(src.data, src.offset, src.strides, dst.data, start * strides[axis], strides, src.shape);
}

/** Zeros of `shape` with `g` placed at [start, start + g.shape[axis]) along axis: narrow's backward. */
export function padNarrow(g: Tensor, shape: Shape, axis: number, start: number): Tensor {
  const out = Tensor.zeros(shape, g.dtype);
  copyInto(out, g, axis, start);
  return out;
}
