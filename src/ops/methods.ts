// The op methods of Tensor (x.add(y), x.sum(), x.backward(), ...), attached to its prototype here, one
// floor above tensor/: tensor.ts then imports nothing from ops/ (the way tfjs-core registers its
// chained ops). ops/index.ts imports this module, so every user of ops gets the methods.

import { runBackward, type BackwardOptions } from "../tensor/autograd.js";
import type { DType, Storage } from "../tensor/dtype.js";
import { fmtShape, numel } from "../tensor/shape.js";
import { Tensor, type TensorLike } from "../tensor/tensor.js";
import { abs, exp, log, neg, relu, rsqrt, sigmoid, sqrt, tanh } from "./unary.js";
import { add, div, mul, sub } from "./binary.js";
import { pow } from "./pow.js";
import { amax, amin, mean, sum } from "./reduce.js";
import { matmul } from "./matmul.js";
import { logSoftmax, softmax } from "./softmax.js";
import { cast, contiguous, expand, flatten, narrow, permute, reshape, squeeze, transpose, unsqueeze } from "./views.js";
import { onesLike } from "./create.js";
import { contiguousData } from "./util.js";
import { argmax, clone, gather, topk, type TopkOptions } from "./select.js";

const methods = {
  /** Values in logical (row-major) order as a fresh typed array of this dtype. */
  toTypedArray(this: Tensor): Storage {
    return contiguousData(this).slice();
  },
  /** Values as nested JS arrays (a number for a 0-d tensor). */
  toArray(this: Tensor): unknown {
    const flat = Array.from(contiguousData(this) as ArrayLike<number>);
    if (this.ndim === 0) return flat[0];
    const build = (dim: number, off: number): unknown[] => {
      const n = this.shape[dim];
      if (dim === this.ndim - 1) return flat.slice(off, off + n);
      const step = numel(this.shape.slice(dim + 1));
      return Array.from({ length: n }, (_, i) => build(dim + 1, off + i * step));
    };
    return build(0, 0);
  },
  /** Backpropagate from this tensor; gradient defaults to 1 for a scalar. */
  backward(this: Tensor, gradient?: Tensor, opts: Omit<BackwardOptions, "inputs"> = {}): void {
    if (!this.requiresGrad) throw new Error("backward() on a tensor that does not require grad (no input had requiresGrad)");
    let seed = gradient;
    if (!seed) {
      if (this.numel !== 1) throw new Error(`backward() without a gradient needs a scalar, got shape ${fmtShape(this.shape)}`);
      seed = onesLike(this);
    }
    runBackward(this, seed, add, opts);
  },
  add(this: Tensor, o: TensorLike): Tensor { return add(this, o); },
  sub(this: Tensor, o: TensorLike): Tensor { return sub(this, o); },
  mul(this: Tensor, o: TensorLike): Tensor { return mul(this, o); },
  div(this: Tensor, o: TensorLike): Tensor { return div(this, o); },
  pow(this: Tensor, o: TensorLike): Tensor { return pow(this, o); },
  neg(this: Tensor): Tensor { return neg(this); },
  exp(this: Tensor): Tensor { return exp(this); },
  log(this: Tensor): Tensor { return log(this); },
  sqrt(this: Tensor): Tensor { return sqrt(this); },
  rsqrt(this: Tensor): Tensor { return rsqrt(this); },
  abs(this: Tensor): Tensor { return abs(this); },
  tanh(this: Tensor): Tensor { return tanh(this); },
  sigmoid(this: Tensor): Tensor { return sigmoid(this); },
  relu(this: Tensor): Tensor { return relu(this); },
  matmul(this: Tensor, o: Tensor): Tensor { return matmul(this, o); },
  sum(this: Tensor, dim?: number | number[], keepdim = false): Tensor { return sum(this, dim, keepdim); },
  mean(this: Tensor, dim?: number | number[], keepdim = false): Tensor { return mean(this, dim, keepdim); },
  amax(this: Tensor, dim?: number | number[], keepdim = false): Tensor { return amax(this, dim, keepdim); },
  amin(this: Tensor, dim?: number | number[], keepdim = false): Tensor { return amin(this, dim, keepdim); },
  softmax(this: Tensor, dim = -1): Tensor { return softmax(this, dim); },
  logSoftmax(this: Tensor, dim = -1): Tensor { return logSoftmax(this, dim); },
  reshape(this: Tensor, ...shape: number[]): Tensor { return reshape(this, shape); },
  view(this: Tensor, ...shape: number[]): Tensor { return reshape(this, shape); },
  permute(this: Tensor, ...dims: number[]): Tensor { return permute(this, dims); },
  transpose(this: Tensor, d0: number, d1: number): Tensor { return transpose(this, d0, d1); },
  narrow(this: Tensor, dim: number, start: number, length: number): Tensor { return narrow(this, dim, start, length); },
  expand(this: Tensor, ...shape: number[]): Tensor { return expand(this, shape); },
  unsqueeze(this: Tensor, dim: number): Tensor { return unsqueeze(this, dim); },
  squeeze(this: Tensor, dim?: number): Tensor { return squeeze(this, dim); },
  flatten(this: Tensor, start = 0, end = -1): Tensor { return flatten(this, start, end); },
  contiguous(this: Tensor): Tensor { return contiguous(this); },
  to(this: Tensor, dtype: DType): Tensor { return cast(this, dtype); },
  argmax(this: Tensor, dim?: number, keepdim = false): Tensor { return argmax(this, dim, keepdim); },
  topk(this: Tensor, k: number, dim = -1, o: TopkOptions = {}): { values: Tensor; indices: Tensor } { return topk(this, k, dim, o); },
  gather(this: Tensor, dim: number, index: Tensor): Tensor { return gather(this, dim, index); },
  clone(this: Tensor): Tensor { return clone(this); },
};

type TensorMethods = { [K in keyof typeof methods]: OmitThisParameter<(typeof methods)[K]> };

declare module "../tensor/tensor.js" {
  interface Tensor extends TensorMethods {}
}

for (const [name, fn] of Object.entries(methods)) {
  Object.defineProperty(Tensor.prototype, name, { value: fn, writable: true, configurable: true, enumerable: false });
}
