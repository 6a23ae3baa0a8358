// Reductions over any set of axes with keepdim: sum, mean, amax/amin, var, logsumexp.

import type { ReduceOp } from "../backend/backend.js";
import { backend } from "../backend/registry.js";
import { record, recordComposite } from "../tensor/autograd.js";
import { normAxes, sameShape, type Shape } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import { around, commonFloat, floatData, lift, wrap } from "./util.js";
import { binaryRaw, reduceKeep } from "./raw.js";
import { expand, reshape } from "./views.js";
import { div, mul, sub } from "./binary.js";
import { exp, unary } from "./unary.js";

function finish(kept: Tensor, x: Tensor, axes: number[], keepdim: boolean): Tensor {
  return keepdim ? kept : reshape(kept, x.shape.filter((_, i) => !axes.includes(i)));
}

export function sum(x: Tensor, dim?: number | number[], keepdim = false): Tensor {
  const axes = normAxes(dim, x.ndim);
  const kept = recordComposite(reduceKeep("sum", x, axes), "sum", [x], (g) => [expand(g, x.shape)]);
  return finish(kept, x, axes, keepdim);
}

export function mean(x: Tensor, dim?: number | number[], keepdim = false): Tensor {
  const axes = normAxes(dim, x.ndim);
  const count = axes.reduce((n, a) => n * x.shape[a], 1);
  const kept = reduceKeep("sum", x, axes);
  const m = binaryRaw("div", kept, lift(count, kept));
  const out = recordComposite(m, "mean", [x], (g) => [expand(div(g, count), x.shape)]);
  return finish(out, x, axes, keepdim);
}

function extremum(op: "max" | "min", x: Tensor, dim: number | number[] | undefined, keepdim: boolean): Tensor {
  const axes = normAxes(dim, x.ndim);
  const kept = reduceKeep(op, x, axes);
  // Ties share the gradient evenly, as torch.amax/amin do.
  const out = recordComposite(kept, op === "max" ? "amax" : "amin", [x], (g, { saved: [xs, k] }) => {
    const mask = binaryRaw("eq", xs, k);  // piecewise constant: no graph needed
    const count = reduceKeep("sum", mask, axes);
    return [mul(mask, div(g, count))];
  }, [x, kept]);
  return finish(out, x, axes, keepdim);
}

export const amax = (x: Tensor, dim?: number | number[], keepdim = false) => extremum("max", x, dim, keepdim);
export const amin = (x: Tensor, dim?: number | number[], keepdim = false) => extremum("min", x, dim, keepdim);

/** Variance with Bessel's correction by default (unbiased, as torch.var). */
export function variance(x: Tensor, dim?: number | number[], opts: { unbiased?: boolean; keepdim?: boolean } = {}): Tensor {
  const axes = normAxes(dim, x.ndim);
  const n = axes.reduce((k, a) => k * x.shape[a], 1);
  const denom = Math.max(n - (opts.unbiased ?? true ? 1 : 0), 0);
  const mu = binaryRaw("div", reduceKeep("sum", x, axes), lift(n, x));
  const centered = binaryRaw("sub", x, mu);
  const ss = reduceKeep("sum", unary("square", centered), axes);
  const v = binaryRaw("div", ss, lift(denom, ss));
  // d var / dx = 2 (x - mu) / denom; a createGraph walk rebuilds x - mu from x in differentiable ops
  const out = record(v, "var", [x], (g, { saved: [c] }) => [mul(c, div(g, denom / 2))], [centered, x],
    (g, { saved: [, xs] }) => [mul(sub(xs, mean(xs, axes, true)), div(g, denom / 2))]);
  return finish(out, x, axes, opts.keepdim ?? false);
}

export function logsumexp(x: Tensor, dim?: number | number[], keepdim = false): Tensor {
  const axes = normAxes(dim, x.ndim);
  const m = reduceKeep("max", x, axes);
  // Guard all -inf rows: subtract 0 instead of -inf - -inf = NaN.
  const md = m.data;
  for (let i = 0; i < md.length; i++) if (!Number.isFinite(md[i])) md[i] = 0;
  const s = reduceKeep("sum", unary("exp", binaryRaw("sub", x, m)), axes);
  const lse = binaryRaw("add", unary("log", s), m);
  const out = recordComposite(lse, "logsumexp", [x], (g, { saved: [xs, l] }) => [mul(g, exp(sub(xs, l)))], [x, lse]);
  return finish(out, x, axes, keepdim);
}
