// Reductions over any set of axes with keepdim: sum, mean, amax/amin, var, logsumexp; and sumTo, the
// reduction that undoes broadcasting in backward passes.

import type { ReduceOp } from "../backend/backend.js";
import { backend } from "../backend/registry.js";
import { record } from "../tensor/autograd.js";
import { normAxes, sameShape, type Shape } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import { around, commonFloat, empty, floatData, lift, wrap } from "./util.js";
import { binaryRaw } from "./binary.js";
import { expand, reshape } from "./views.js";
import { unaryOp } from "./unary.js";

/** Reduce `axes` (sorted, unique) keeping them as size-1 dims; runs of adjacent axes reduce in one pass. */
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
    const out = empty([outer * inner], dtype).data as typeof data;
    backend().reduce(op, data, outer, dim, inner, out);
    data = out;
    for (let a = first; a <= last; a++) shape[a] = 1;
    i = j - 1;
  }
  return wrap(data, shape, dtype);
}

function finish(kept: Tensor, x: Tensor, axes: number[], keepdim: boolean): Tensor {
  return keepdim ? kept : reshape(kept, x.shape.filter((_, i) => !axes.includes(i)));
}

export function sum(x: Tensor, dim?: number | number[], keepdim = false): Tensor {
  const axes = normAxes(dim, x.ndim);
  const kept = record(reduceKeep("sum", x, axes), "sum", [x], (g) => [expand(g, x.shape)]);
  return finish(kept, x, axes, keepdim);
}

export function mean(x: Tensor, dim?: number | number[], keepdim = false): Tensor {
  const axes = normAxes(dim, x.ndim);
  const count = axes.reduce((n, a) => n * x.shape[a], 1);
  const kept = reduceKeep("sum", x, axes);
  const m = binaryRaw("div", kept, lift(count, kept));
  const out = record(m, "mean", [x], (g) => [expand(binaryRaw("div", g, lift(count, g)), x.shape)]);
  return finish(out, x, axes, keepdim);
}

function extremum(op: "max" | "min", x: Tensor, dim: number | number[] | undefined, keepdim: boolean): Tensor {
  const axes = normAxes(dim, x.ndim);
  const kept = reduceKeep(op, x, axes);
  // Ties share the gradient evenly, as torch.amax/amin do.
  const out = record(kept, op === "max" ? "amax" : "amin", [x], (g) => {
    const mask = binaryRaw("eq", x, kept);
    const count = reduceKeep("sum", mask, axes);
    return [binaryRaw("mul", mask, binaryRaw("div", g, count))];
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
  const ss = reduceKeep("sum", unaryOp("square", centered), axes);
  const v = binaryRaw("div", ss, lift(denom, ss));
  const out = record(v, "var", [x], (g) => [binaryRaw("mul", centered, binaryRaw("div", g, lift(denom / 2, g)))], [centered]);
  return finish(out, x, axes, opts.keepdim ?? false);
}

export function logsumexp(x: Tensor, dim?: number | number[], keepdim = false): Tensor {
  const axes = normAxes(dim, x.ndim);
  const m = reduceKeep("max", x, axes);
  // Guard all -inf rows: subtract 0 instead of -inf - -inf = NaN.
  const md = m.data;
  for (let i = 0; i < md.length; i++) if (!Number.isFinite(md[i])) md[i] = 0;
  const s = reduceKeep("sum", unaryOp("exp", binaryRaw("sub", x, m)), axes);
  const lse = binaryRaw("add", unaryOp("log", s), m);
  const out = record(lse, "logsumexp", [x], (g) => [binaryRaw("mul", g, unaryOp("exp", binaryRaw("sub", x, lse)))], [x, lse]);
  return finish(out, x, axes, keepdim);
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
