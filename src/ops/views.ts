// View ops: new shape/strides over the same storage (a copy only when a reshape needs one), each with
// its backward. Also contiguous() and dtype casts.

import { recordComposite } from "../tensor/autograd.js";
import { isFloat, type DType } from "../tensor/dtype.js";
import { allocStorage } from "../tensor/recycle.js";
import { trackStorage } from "../tensor/memory.js";
import { contiguousStrides, fmtShape, normAxis, numel, sameShape, type Shape } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import { contiguousData, wrap } from "./util.js";
import { padNarrow, sumTo } from "./raw.js";

/** sumTo with a graph (a broadcast gradient summed back to `shape`): its own backward is expand. */
export function unbroadcast(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  return recordComposite(sumTo(g, shape), "sum_to", [g], (gg) => [expand(gg, g.shape)]);
}

/** padNarrow with a graph (narrow's backward): its own backward is narrow. */
function pad(g: Tensor, shape: Shape, axis: number, start: number): Tensor {
  return recordComposite(padNarrow(g, shape, axis, start), "pad", [g], (gg) => [narrow(gg, axis, start, g.shape[axis])]);
}

function view(x: Tensor, shape: Shape, strides: Shape, offset: number): Tensor {
  return new Tensor(x.data, shape, { dtype: x.dtype, strides, offset });
}

export function contiguous(x: Tensor): Tensor {
  if (x.isContiguous) return x;
  const out = wrap(contiguousData(x), x.shape, x.dtype);
  return recordComposite(out, "contiguous", [x], (g) => [g]);
}

/** Resolve one -1 and check the element count. */
function resolveShape(x: Tensor, shape: readonly number[]): number[] {
  const s = [...shape];
  const neg = s.indexOf(-1);
  if (neg >= 0) {
    const rest = numel(s.filter((_, i) => i !== neg));
    if (rest === 0 || x.numel % rest !== 0) throw new RangeError(`reshape: cannot infer -1 in ${fmtShape(shape)} for ${x.numel} elements`);
    s[neg] = x.numel / rest;
  }
  if (numel(s) !== x.numel || s.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new RangeError(`reshape: shape ${fmtShape(shape)} does not hold the ${x.numel} elements of ${fmtShape(x.shape)}`);
  }
  return s;
}

export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const s = resolveShape(x, shape);
  const src = x.isContiguous ? x : contiguous(x);
  const out = view(src, s, contiguousStrides(s), src.offset);
  return recordComposite(out, "reshape", [src], (g) => [reshape(g, src.shape)]);
}

export function permute(x: Tensor, dims: readonly number[]): Tensor {
  const d = dims.map((a) => normAxis(a, x.ndim));
  if (d.length !== x.ndim || new Set(d).size !== d.length) {
    throw new RangeError(`permute: dims [${dims.join(", ")}] are not a permutation of ${x.ndim} axes`);
  }
  const out = view(x, d.map((i) => x.shape[i]), d.map((i) => x.strides[i]), x.offset);
  const inv = new Array<number>(d.length);
  d.forEach((v, i) => (inv[v] = i));
  return recordComposite(out, "permute", [x], (g) => [permute(g, inv)]);
}

export function transpose(x: Tensor, d0: number, d1: number): Tensor {
  const dims = x.shape.map((_, i) => i);
  const a = normAxis(d0, x.ndim), b = normAxis(d1, x.ndim);
  [dims[a], dims[b]] = [dims[b], dims[a]];
  return permute(x, dims);
}

/** Elements start .. start+length-1 along dim (a view). */
export function narrow(x: Tensor, dim: number, start: number, length: number): Tensor {
  const a = normAxis(dim, x.ndim);
  if (!Number.isInteger(start) || !Number.isInteger(length) || start < 0 || length < 0 || start + length > x.shape[a]) {
    throw new RangeError(`narrow: [${start}, ${start + length}) is outside axis ${dim} of size ${x.shape[a]}`);
  }
  const shape = [...x.shape];
  shape[a] = length;
  const out = view(x, shape, x.strides, x.offset + start * x.strides[a]);
  return recordComposite(out, "narrow", [x], (g) => [pad(g, x.shape, a, start)]);
}

export function expand(x: Tensor, shape: readonly number[]): Tensor {
  const off = shape.length - x.ndim;
  if (off < 0) throw new RangeError(`expand: target ${fmtShape(shape)} has fewer axes than ${fmtShape(x.shape)}`);
  const s = shape.map((d, i) => (d === -1 && i >= off ? x.shape[i - off] : d));
  const strides = s.map((d, i) => {
    if (i < off) return 0;
    const xd = x.shape[i - off];
    if (xd === d) return x.strides[i - off];
    if (xd === 1) return 0;
    throw new RangeError(`expand: cannot expand ${fmtShape(x.shape)} to ${fmtShape(shape)}`);
  });
  const out = view(x, s, strides, x.offset);
  return recordComposite(out, "expand", [x], (g) => [unbroadcast(g, x.shape)]);
}

export function unsqueeze(x: Tensor, dim: number): Tensor {
  const a = normAxis(dim, x.ndim + 1);
  const s = [...x.shape];
  s.splice(a, 0, 1);
  return reshape(x, s);
}

export function squeeze(x: Tensor, dim?: number): Tensor {
  if (dim === undefined) return reshape(x, x.shape.filter((d) => d !== 1));
  const a = normAxis(dim, x.ndim);
  if (x.shape[a] !== 1) return x;
  return reshape(x, x.shape.filter((_, i) => i !== a));
}

export function flatten(x: Tensor, start = 0, end = -1): Tensor {
  if (x.ndim === 0) return reshape(x, [1]);
  const s = normAxis(start, x.ndim), e = normAxis(end, x.ndim);
  const shape = [...x.shape.slice(0, s), numel(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)];
  return reshape(x, shape);
}

/** Convert dtype (float32 <-> float64 differentiable; int32 <-> float for ids and masks). */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x;
  if (dtype === "bfloat16" || dtype === "float16" || x.dtype === "bfloat16" || x.dtype === "float16") {
    throw new TypeError(`cast: ${x.dtype} -> ${dtype} goes through the mixed-precision helpers, not .to()`);
  }
  const src = contiguousData(x);
  const data = allocStorage(dtype, x.numel);
  trackStorage(data);
  if (dtype === "int32") for (let i = 0; i < src.length; i++) data[i] = Math.trunc(src[i]);
  else data.set(src);
  const out = wrap(data, x.shape, dtype);
  if (!isFloat(dtype) || !isFloat(x.dtype)) return out;
  return recordComposite(out, "cast", [x], (g) => [cast(g, x.dtype)]);
}
