// softmax / log_softmax along any axis: the axis is moved last (a copy only when it is not already),
// the fused row kernel runs, and the result is moved back.

import { backend } from "../backend/registry.js";
import { record } from "../tensor/autograd.js";
import { normAxis } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";
import { commonFloat, floatData, output } from "./util.js";
import { transpose } from "./views.js";

function rowSoftmax(x: Tensor, log: boolean): Tensor {
  const name = log ? "log_softmax" : "softmax";
  const dtype = commonFloat(name, x);
  const cols = x.shape[x.ndim - 1] ?? 1;
  const rows = x.numel / Math.max(cols, 1);
  const xd = floatData(x, name);
  const out = output(x.shape, dtype);
  const yd = out.data as typeof xd;
  backend().softmax(xd, yd, rows, cols, log);
  return record(out, name, [x], (g) => {
    const gx = output(x.shape, dtype);
    backend().softmaxBackward(yd, floatData(g, name), gx.data as typeof xd, rows, cols, log);
    return [gx];
  }, [out]);
}

function alongAxis(x: Tensor, dim: number, log: boolean): Tensor {
  if (x.ndim === 0) return rowSoftmax(x, log);
  const a = normAxis(dim, x.ndim), last = x.ndim - 1;
  if (a === last) return rowSoftmax(x, log);
  return transpose(rowSoftmax(transpose(x, a, last), log), a, last);
}

export const softmax = (x: Tensor, dim = -1) => alongAxis(x, dim, false);
export const logSoftmax = (x: Tensor, dim = -1) => alongAxis(x, dim, true);
