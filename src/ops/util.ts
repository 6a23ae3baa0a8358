// Shared plumbing for ops: raw contiguous data (no graph), allocation, scalar lifting, dtype checks.

import type { FloatArray } from "../backend/backend.js";
import { backend } from "../backend/registry.js";
import { isFloat, type DType, type Storage } from "../tensor/dtype.js";
import { contiguousStrides, fmtShape, type Shape } from "../tensor/shape.js";
import { Tensor, type TensorLike } from "../tensor/tensor.js";

/** The tensor's values in row-major order starting at index 0: the storage itself when possible. */
export function contiguousData(t: Tensor): Storage {
  if (t.isContiguous) {
    const n = t.numel;
    return t.offset === 0 && t.data.length === n ? t.data : t.data.subarray(t.offset, t.offset + n);
  }
  const out = Tensor.empty(t.shape, t.dtype);
  backend().stridedCopy(t.data, t.offset, t.strides, out.data, 0, contiguousStrides(t.shape), t.shape);
  return out.data;
}

/** Float values of a float tensor, row-major from 0 (an error names the op for other dtypes). */
export function floatData(t: Tensor, op: string): FloatArray {
  if (!isFloat(t.dtype)) throw new TypeError(`${op}: expected a float32 or float64 tensor, got ${t.dtype}`);
  return contiguousData(t) as FloatArray;
}

/** Wrap kernel output storage as a tensor. */
export function wrap(data: Storage, shape: Shape, dtype: DType): Tensor {
  return new Tensor(data, shape, { dtype });
}

/** Lift a JS number to a 0-d tensor of `like`'s dtype. */
export function lift(x: TensorLike, like: Tensor): Tensor {
  if (x instanceof Tensor) return x;
  const t = Tensor.zeros([], like.dtype);
  t.data[0] = x;
  return t;
}

/** Float dtype shared by all inputs, or an error naming the op and the mismatch. */
export function commonFloat(op: string, ...ts: Tensor[]): "float32" | "float64" {
  const d = ts[0].dtype;
  for (const t of ts) {
    if (!isFloat(t.dtype)) throw new TypeError(`${op}: expected float tensors, got ${t.dtype} ${fmtShape(t.shape)}`);
    if (t.dtype !== d) throw new TypeError(`${op}: dtypes differ (${d} and ${t.dtype}); convert one with .to()`);
  }
  return d as "float32" | "float64";
}

/** Split a shape around `axis` into [outer, dim, inner] for the [outer, dim, inner] kernels. */
export function around(shape: Shape, axis: number): [number, number, number] {
  let outer = 1, inner = 1;
  for (let i = 0; i < axis; i++) outer *= shape[i];
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i];
  return [outer, shape[axis], inner];
}
