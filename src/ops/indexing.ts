// Gathers with scatter-add backward: embedding and index_select; and cumsum.

import { backend } from "../backend/registry.js";
import { record } from "../tensor/autograd.js";
import { fmtShape, normAxis } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import { around, commonFloat, contiguousData, floatData } from "./util.js";

function ids(index: Tensor, op: string): Int32Array {
  if (index.dtype !== "int32") throw new TypeError(`${op}: indices must be int32, got ${index.dtype}`);
  return contiguousData(index) as Int32Array;
}

export function indexSelect(x: Tensor, dim: number, index: Tensor): Tensor {
  const dtype = commonFloat("index_select", x);
  if (index.ndim > 1) throw new RangeError(`index_select: index must be 1-D, got ${fmtShape(index.shape)}`);
  const axis = normAxis(dim, x.ndim);
  const [outer, dimIn, inner] = around(x.shape, axis);
  const idx = ids(index, "index_select");
  const shape = [...x.shape];
  shape[axis] = idx.length;
  const out = Tensor.empty(shape, dtype);
  const xd = floatData(x, "index_select");
  backend().indexSelect(xd, outer, dimIn, inner, idx, idx.length, out.data as typeof xd);
  return record(out, "index_select", [x], (g, { saved: [ix] }) => {
    const gx = Tensor.zeros(x.shape, dtype), ii = ids(ix, "index_select");
    backend().indexAdd(floatData(g, "index_select"), outer, dimIn, inner, ii, ii.length, gx.data as typeof xd);
    return [gx];
  }, [index]);
}

/** Rows of `weight` [V, D] for int32 ids of any shape: output [...ids.shape, D]. */
export function embedding(idsT: Tensor, weight: Tensor): Tensor {
  const dtype = commonFloat("embedding", weight);
  if (weight.ndim !== 2) throw new RangeError(`embedding: weight must be [vocab, dim], got ${fmtShape(weight.shape)}`);
  const [V, D] = weight.shape;
  const idx = ids(idsT, "embedding");
  const out = Tensor.empty([...idsT.shape, D], dtype);
  const wd = floatData(weight, "embedding");
  backend().indexSelect(wd, 1, V, D, idx, idx.length, out.data as typeof wd);
  const back = (g: Tensor) => [embeddingGrad(g, idsT, V)];
  return record(out, "embedding", [weight], back, [idsT], back);
}

/** embedding's weight gradient [V, D]: the rows of g scatter-added at the ids. Differentiable (its own
 * backward is embedding again), so gradients of gradients pass through an embedding. */
function embeddingGrad(g: Tensor, idsT: Tensor, V: number): Tensor {
  const D = g.shape[g.ndim - 1], dtype = commonFloat("embedding", g);
  const gw = Tensor.zeros([V, D], dtype), ii = ids(idsT, "embedding");
  backend().indexAdd(floatData(g, "embedding"), 1, V, D, ii, ii.length, gw.data as Float32Array);
  const back = (gg: Tensor) => [embedding(idsT, gg)];
  return record(gw, "embedding_backward", [g], back, [idsT], back);
}

export function cumsum(x: Tensor, dim: number): Tensor {
  const dtype = commonFloat("cumsum", x);
  const axis = normAxis(dim, x.ndim);
  const [outer, d, inner] = around(x.shape, axis);
  const xd = floatData(x, "cumsum");
  const out = Tensor.zeros(x.shape, dtype);
  backend().cumsum(xd, outer, d, inner, out.data as typeof xd, false);
  return record(out, "cumsum", [x], (g) => {
    const gx = Tensor.zeros(x.shape, dtype);
    backend().cumsum(floatData(g, "cumsum"), outer, d, inner, gx.data as typeof xd, true);
    return [gx];
  });
}
