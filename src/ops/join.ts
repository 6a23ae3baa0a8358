// Joining and splitting along an axis: cat, stack, split, chunk (split pieces are narrow views).

import { backend } from "../backend/registry.js";
import { record } from "../tensor/autograd.js";
import { contiguousStrides, fmtShape, normAxis, type Shape } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";
import { empty, output } from "./util.js";
import { narrow, unsqueeze } from "./views.js";

/** Copy `src` into a strided window of `dst` starting at `start` along `axis`. */
function copyInto(dst: Tensor, src: Tensor, axis: number, start: number): void {
  const strides = contiguousStrides(dst.shape);
  backend().stridedCopy(src.data, src.offset, src.strides, dst.data, start * strides[axis], strides, src.shape);
}

/** Zeros of `shape` with `g` placed at [start, start + g.shape[axis]) along axis: narrow's backward. */
export function padNarrow(g: Tensor, shape: Shape, axis: number, start: number): Tensor {
  const out = empty(shape, g.dtype);
  copyInto(out, g, axis, start);
  return out;
}

export function cat(xs: Tensor[], dim = 0): Tensor {
  if (xs.length === 0) throw new RangeError("cat: needs at least one tensor");
  const axis = normAxis(dim, xs[0].ndim);
  const shape = [...xs[0].shape];
  shape[axis] = 0;
  for (const x of xs) {
    if (x.ndim !== shape.length || x.dtype !== xs[0].dtype || x.shape.some((d, i) => i !== axis && d !== shape[i])) {
      throw new RangeError(`cat: ${fmtShape(x.shape)} ${x.dtype} does not match ${fmtShape(xs[0].shape)} ${xs[0].dtype} outside axis ${dim}`);
    }
    shape[axis] += x.shape[axis];
  }
  const out = output(shape, xs[0].dtype);
  const starts: number[] = [];
  let at = 0;
  for (const x of xs) {
    starts.push(at);
    copyInto(out, x, axis, at);
    at += x.shape[axis];
  }
  return record(out, "cat", xs, (g) => xs.map((x, i) => narrow(g, axis, starts[i], x.shape[axis])));
}

export function stack(xs: Tensor[], dim = 0): Tensor {
  if (xs.length === 0) throw new RangeError("stack: needs at least one tensor");
  const axis = normAxis(dim, xs[0].ndim + 1);
  return cat(xs.map((x) => unsqueeze(x, axis)), axis);
}

/** Split into pieces of `size` (last may be smaller) or of the listed sizes, like torch.split. */
export function split(x: Tensor, sizes: number | number[], dim = 0): Tensor[] {
  const axis = normAxis(dim, x.ndim);
  const n = x.shape[axis];
  let list: number[];
  if (typeof sizes === "number") {
    if (!(sizes > 0)) throw new RangeError(`split: size must be positive, got ${sizes}`);
    list = [];
    for (let s = 0; s < n; s += sizes) list.push(Math.min(sizes, n - s));
  } else {
    list = sizes;
    if (list.reduce((a, b) => a + b, 0) !== n) throw new RangeError(`split: sizes [${list.join(", ")}] do not sum to ${n} along axis ${dim}`);
  }
  let at = 0;
  return list.map((len) => {
    const piece = narrow(x, axis, at, len);
    at += len;
    return piece;
  });
}

/** `chunks` pieces of ceil(n / chunks) (torch.chunk semantics). */
export function chunk(x: Tensor, chunks: number, dim = 0): Tensor[] {
  const axis = normAxis(dim, x.ndim);
  return split(x, Math.ceil(x.shape[axis] / chunks), axis);
}
