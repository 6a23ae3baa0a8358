// softmax / log_softmax along any axis: the axis is moved last (a copy only when it is not already),
// the fused row kernel runs, and the result is moved back.

import { backend } from "../backend/registry.js";
import { record } from "../tensor/autograd.js";
import { normAxis } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import { commonFloat, floatData } from "./util.js";
import { transpose } from "./views.js";
import { mul, sub } from "./binary.js";
import { sum } from "./reduce.js";
import { exp } from "./unary.js";

function rowSoftmax(x: Tensor, log: boolean): Tensor {
  const name = log ? "log_softmax" : "softmax";
  const dtype = commonFloat(name, x);
  const cols = x.shape[x.ndim - 1] ?? 1;
  const rows = x.numel / Math.max(cols, 1);
  const xd = floatData(x, name);
  const out = Tensor.empty(x.shape, dtype);
  const yd = out.data as typeof xd;
  backend().softmax(xd, yd, rows, cols, log);
  return record(out, name, [x], (g, { saved: [y] }) => {
    const gx = Tensor.empty(x.shape, dtype);
    backend().softmaxBackward(floatData(y, name), floatData(g, name), gx.data as typeof xd, rows, cols, log);
    return [gx];
  }, [out], (g, { saved: [y] }) => [
    // the same derivative in differentiable ops, through the saved output y (a graph node over x):
    // softmax: y (g - sum(g y)); log_softmax: g - exp(y) sum(g)
    log ? sub(g, mul(exp(y), sum(g, -1, true))) : mul(y, sub(g, sum(mul(g, y), -1, true))),
  ]);
}

function alongAxis(x: Tensor, dim: number, log: boolean): Tensor {
  if (x.ndim === 0) return rowSoftmax(x, log);
  const a = normAxis(dim, x.ndim), last = x.ndim - 1;
  if (a === last) return rowSoftmax(x, log);
  return transpose(rowSoftmax(transpose(x, a, last), log), a, last);
}

export const softmax = (x: Tensor, dim = -1) => alongAxis(x, dim, false);
export const logSoftmax = (x: Tensor, dim = -1) => alongAxis(x, dim, true);
