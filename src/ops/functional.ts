// Functional autograd helpers: grad(fn) and a float64 finite-difference gradcheck.

import { enableGrad, noGrad, runBackward } from "../tensor/autograd.js";
import { defaultGenerator, type RandomGenerator } from "../tensor/rng.js";
import { Tensor } from "../tensor/tensor.js";
import { contiguousData } from "./util.js";
import { add, mul } from "./binary.js";
import { sum } from "./reduce.js";
import { onesLike, randn } from "./create.js";

/**
 * grad(fn)(...xs): gradients of the scalar fn(...xs) with respect to every input (like torch.func.grad);
 * other tensors' .grad are left alone. An input that already requires grad is differentiated as it is,
 * so with createGraph the gradients carry a graph back to it and grad() nests: grad of a function of a
 * gradient (a gradient penalty; a Hessian-vector product).
 */
export function grad(fn: (...xs: Tensor[]) => Tensor, opts: { createGraph?: boolean } = {}): (...xs: Tensor[]) => Tensor[] {
  return (...xs) => enableGrad(() => {
    const leaves = xs.map((x) => (x.requiresGrad ? x : x.detach().requiresGrad_()));
    const y = fn(...leaves);
    if (y.numel !== 1) throw new Error(`grad: fn must return a scalar, got shape [${y.shape.join(", ")}]`);
    const gs = y.requiresGrad ? runBackward(y, onesLike(y), add, { createGraph: opts.createGraph, inputs: leaves }) : [];
    return leaves.map((l, i) => gs[i] ?? Tensor.zeros(l.shape, l.dtype));
  });
}

export interface GradcheckResult { maxAbsError: number; maxRelError: number }

/**
 * Compare backward() against central finite differences of <fn(x), v> for a random v, in float64.
 * Only float64 inputs with requiresGrad are perturbed. Throws when any entry differs by more than
 * atol + rtol * |numeric|.
 */
export function gradcheck(fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], opts: { eps?: number; atol?: number; rtol?: number; generator?: RandomGenerator } = {}): GradcheckResult {
  const { eps = 1e-6, atol = 1e-7, rtol = 1e-5, generator = defaultGenerator } = opts;
  for (const x of inputs) if (x.requiresGrad && x.dtype !== "float64") throw new TypeError(`gradcheck needs float64 inputs, got ${x.dtype}`);
  const y0 = noGrad(() => fn(...inputs));
  const v = randn(y0.shape, { dtype: "float64", generator });
  for (const x of inputs) x.grad = null;
  sum(mul(fn(...inputs), v)).backward();
  const f = () => noGrad(() => sum(mul(fn(...inputs), v)).item());
  let maxAbs = 0, maxRel = 0;
  inputs.forEach((x, k) => {
    if (!x.requiresGrad) return;
    if (!x.isContiguous) throw new Error("gradcheck: inputs must be contiguous");
    const analytic = x.grad ? (contiguousData(x.grad) as Float64Array) : new Float64Array(x.numel);
    for (let i = 0; i < x.numel; i++) {
      const p = x.offset + i;
      const orig = x.data[p];
      x.data[p] = orig + eps;
      const fp = f();
      x.data[p] = orig - eps;
      const fm = f();
      x.data[p] = orig;
      const numeric = (fp - fm) / (2 * eps);
      const err = Math.abs(numeric - analytic[i]);
      maxAbs = Math.max(maxAbs, err);
      maxRel = Math.max(maxRel, err / Math.max(Math.abs(numeric), 1e-12));
      if (err > atol + rtol * Math.abs(numeric)) {
        throw new Error(`gradcheck failed for input ${k} element ${i}: analytic ${analytic[i]} vs numeric ${numeric}`);
      }
    }
  });
  return { maxAbsError: maxAbs, maxRelError: maxRel };
}
