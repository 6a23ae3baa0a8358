// Elementwise unary ops: one kernel call forward, one fused derivative kernel backward.

import type { UnaryOp, UnaryParams } from "../backend/backend.js";
import { backend } from "../backend/registry.js";
import { record } from "../tensor/autograd.js";
import type { Tensor } from "../tensor/tensor.js";
import { commonFloat, floatData, output } from "./util.js";

export function unaryOp(op: UnaryOp, x: Tensor, p: UnaryParams = {}): Tensor {
  const dtype = commonFloat(op, x);
  const xd = floatData(x, op);
  const out = output(x.shape, dtype);
  const yd = out.data as typeof xd;
  backend().unary(op, xd, yd, x.numel, p);
  return record(out, op, [x], (g) => {
    const gx = output(x.shape, dtype);
    backend().unaryBackward(op, xd, yd, floatData(g, op), gx.data as typeof xd, x.numel, p);
    return [gx];
  }, [x, out]);
}

export const neg = (x: Tensor) => unaryOp("neg", x);
export const exp = (x: Tensor) => unaryOp("exp", x);
export const log = (x: Tensor) => unaryOp("log", x);
export const sqrt = (x: Tensor) => unaryOp("sqrt", x);
export const rsqrt = (x: Tensor) => unaryOp("rsqrt", x);
export const abs = (x: Tensor) => unaryOp("abs", x);
export const square = (x: Tensor) => unaryOp("square", x);
export const tanh = (x: Tensor) => unaryOp("tanh", x);
export const sigmoid = (x: Tensor) => unaryOp("sigmoid", x);
export const relu = (x: Tensor) => unaryOp("relu", x);
export const silu = (x: Tensor) => unaryOp("silu", x);

/** GELU; approximate "tanh" is the form GPT-2 uses, "none" the exact erf form (as torch). */
export function gelu(x: Tensor, approximate: "none" | "tanh" = "none"): Tensor {
  return unaryOp(approximate === "tanh" ? "gelu_tanh" : "gelu_erf", x);
}

/** softplus(x) = log(1 + exp(beta x)) / beta, linear above threshold (as torch). */
export function softplus(x: Tensor, beta = 1, threshold = 20): Tensor {
  return unaryOp("softplus", x, { a: beta, b: threshold });
}

export function elu(x: Tensor, alpha = 1): Tensor {
  return unaryOp("elu", x, { a: alpha });
}

export function clamp(x: Tensor, min = -Infinity, max = Infinity): Tensor {
  if (min > max) throw new RangeError(`clamp: min ${min} is greater than max ${max}`);
  return unaryOp("clamp", x, { a: min, b: max });
}

export function powScalar(x: Tensor, exponent: number): Tensor {
  return unaryOp("powScalar", x, { a: exponent });
}
