// Joining and splitting along an axis: cat, stack, split, chunk (split pieces are narrow views).

import { backend } from "../backend/registry.js";
import { recordComposite } from "../tensor/autograd.js";
import { contiguousStrides, fmtShape, normAxis, type Shape } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import { narrow, unsqueeze } from "./views.js";
import { copyInto } from "./raw.js";

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
  const out = Tensor.empty(shape, xs[0].dtype);
  const starts: number[] = [];
  let at = 0;
  for (const x of xs) {
    starts.push(at);
    copyInto(out, x, axis, at);
    at += x.shape[axis];
  }
  return recordComposite(out, "cat", xs, (g, { needsInputGrad }) => xs.map((x, i) => (needsInputGrad[i] ? narrow(g, axis, starts[i], x.shape[axis]) : null)));
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
