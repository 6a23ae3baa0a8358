// Masks and selection: triu / tril, where, masked_fill. Boolean masks are float tensors of 0/1 or int32.

import { backend } from "../backend/registry.js";
import { noGrad, recordComposite } from "../tensor/autograd.js";
import { broadcastShapes } from "../tensor/shape.js";
import { Tensor, type TensorLike } from "../tensor/tensor.js";
import { commonFloat, contiguousData, lift, wrap } from "./util.js";
import { binaryRaw } from "./raw.js";
import { expand, unbroadcast } from "./views.js";
import { mul } from "./binary.js";

/** Keep elements with col - row >= diagonal (upper) or <= diagonal (lower) in the last two axes. */
function triangle(x: Tensor, diagonal: number, upper: boolean): Tensor {
  const dtype = commonFloat(upper ? "triu" : "tril", x);
  const rows = x.shape[x.ndim - 2], cols = x.shape[x.ndim - 1];
  const mask = Tensor.zeros([rows, cols], dtype);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) mask.data[i * cols + j] = (upper ? j - i >= diagonal : j - i <= diagonal) ? 1 : 0;
  }
  const out = binaryRaw("mul", x, mask);
  return recordComposite(out, upper ? "triu" : "tril", [x], (g, { saved: [m] }) => [mul(g, m)], [mask]);
}

export const triu = (x: Tensor, diagonal = 0) => triangle(x, diagonal, true);
export const tril = (x: Tensor, diagonal = 0) => triangle(x, diagonal, false);

/** Materialize t broadcast to shape as contiguous float data of dtype (one strided copy, no graph). */
function flatAs(t: Tensor, shape: number[], dtype: "float32" | "float64"): Float32Array | Float64Array {
  const src = noGrad(() => contiguousData(expand(t, shape)));
  if (t.dtype === dtype) return src as Float32Array | Float64Array;
  return dtype === "float32" ? Float32Array.from(src) : Float64Array.from(src);
}

/** where(cond, a, b): a where cond is nonzero, else b, all broadcast (cond may be int32 or float). */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  const ta = a instanceof Tensor ? a : b instanceof Tensor ? lift(a, b) : null;
  if (!ta) throw new TypeError("where: needs at least one tensor branch");
  const tb = lift(b, ta);
  const dtype = commonFloat("where", ta, tb);
  const shape = broadcastShapes(cond.shape, ta.shape, tb.shape);
  const c = flatAs(cond, shape, dtype);
  const out = Tensor.zeros(shape, dtype);
  backend().where(c, flatAs(ta, shape, dtype), flatAs(tb, shape, dtype), out.data as typeof c, out.numel);
  const cT = wrap(c, shape, dtype);
  return recordComposite(out, "where", [ta, tb], (g, { needsInputGrad: [na, nb], saved: [m] }) => [
    na ? unbroadcast(mul(g, m), ta.shape) : null,
    nb ? unbroadcast(mul(g, binaryRaw("sub", lift(1, m), m)), tb.shape) : null,
  ], [cT]);
}

/** x with `value` wherever mask is nonzero (mask broadcast to x). */
export function maskedFill(x: Tensor, mask: Tensor, value: number): Tensor {
  return where(mask, lift(value, x), x);
}
