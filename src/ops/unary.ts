// Elementwise unary ops: one kernel call forward, one fused derivative kernel backward; a createGraph
// backward multiplies by the derivative written in differentiable ops (graphDerivative below).

import type { UnaryOp, UnaryParams } from "../backend/backend.js";
import { backend } from "../backend/registry.js";
import { record } from "../tensor/autograd.js";
import { Tensor } from "../tensor/tensor.js";
import { commonFloat, floatData, lift } from "./util.js";
import { add, div, mul, sub } from "./binary.js";

/**
 * Any unary op of the kernel table (backend/op-table.ts UNARY_OPS), differentiable: one kernel call
 * forward, its fused derivative kernel (unaryBackward) backward. A kernel added to the table is reachable
 * here with no edit, e.g. unary("tanh", x).
 */
export function unary(op: UnaryOp, x: Tensor, p: UnaryParams = {}): Tensor {
  const dtype = commonFloat(op, x);
  const xd = floatData(x, op);
  const out = Tensor.empty(x.shape, dtype);
  const yd = out.data as typeof xd;
  backend().unary(op, xd, yd, x.numel, p);
  return record(out, op, [x], (g, { saved: [xs, ys] }) => {
    const gx = Tensor.empty(x.shape, dtype);
    backend().unaryBackward(op, floatData(xs, op), floatData(ys, op), floatData(g, op), gx.data as typeof xd, x.numel, p);
    return [gx];
  }, [x, out], (g, { saved: [xs, ys] }) => [graphDerivative(op, g, xs, ys, p)]);
}

/** f'(x) where it is piecewise constant (relu, abs, clamp, neg): the fused kernel applied to ones. */
function constDerivative(op: UnaryOp, x: Tensor, y: Tensor, p: UnaryParams): Tensor {
  const d = Tensor.empty(x.shape, x.dtype), xd = floatData(x, op);
  const ones = Tensor.empty(x.shape, x.dtype).data.fill(1) as typeof xd;
  backend().unaryBackward(op, xd, floatData(y, op), ones, d.data as typeof xd, x.numel, p);
  return d;
}

/** g f'(x) in differentiable ops, through x and the saved output y = f(x) (graph nodes both). */
function graphDerivative(op: UnaryOp, g: Tensor, x: Tensor, y: Tensor, p: UnaryParams): Tensor {
  switch (op) {
    case "neg": case "relu": case "abs": case "clamp": return mul(g, constDerivative(op, x, y, p));
    case "exp": return mul(g, y);
    case "log": return div(g, x);
    case "sqrt": return div(mul(g, 0.5), y);
    case "rsqrt": return mul(g, div(mul(y, -0.5), x));  // d x^(-1/2) = -1/2 x^(-1/2) / x
    case "square": return mul(g, mul(x, 2));
    case "tanh": return mul(g, sub(lift(1, y), mul(y, y)));
    case "sigmoid": return mul(g, mul(y, sub(lift(1, y), y)));
    case "silu": {
      const s = sigmoid(x);  // d x s(x) = s (1 + x (1 - s))
      return mul(g, mul(s, add(mul(x, sub(lift(1, s), s)), 1)));
    }
    case "softplus": {
      // sigmoid(beta x), and 1 on the linear branch beta x > threshold (as torch)
      const beta = p.a ?? 1, inside = constDerivative("clamp", x, y, { a: -Infinity, b: (p.b ?? 20) / beta });
      return mul(g, add(mul(sigmoid(mul(x, beta)), inside), sub(lift(1, inside), inside)));
    }
    case "elu": {
      const pos = constDerivative("relu", x, y, {});  // 1 where x > 0; else y + alpha
      return mul(g, add(mul(add(y, p.a ?? 1), sub(lift(1, pos), pos)), pos));
    }
    case "powScalar": return mul(g, mul(powScalar(x, (p.a ?? 1) - 1), p.a ?? 1));
    case "sin": return mul(g, cos(x));
    case "cos": return mul(g, neg(sin(x)));
    default: throw new Error(`double backward is not implemented for ${op} (createGraph reached it)`);
  }
}

export const neg = (x: Tensor) => unary("neg", x);
export const exp = (x: Tensor) => unary("exp", x);
export const log = (x: Tensor) => unary("log", x);
export const sqrt = (x: Tensor) => unary("sqrt", x);
export const rsqrt = (x: Tensor) => unary("rsqrt", x);
export const abs = (x: Tensor) => unary("abs", x);
export const square = (x: Tensor) => unary("square", x);
export const tanh = (x: Tensor) => unary("tanh", x);
export const sin = (x: Tensor) => unary("sin", x);
export const cos = (x: Tensor) => unary("cos", x);
export const sigmoid = (x: Tensor) => unary("sigmoid", x);
export const relu = (x: Tensor) => unary("relu", x);
export const silu = (x: Tensor) => unary("silu", x);

/** GELU; approximate "tanh" is the form GPT-2 uses, "none" the exact erf form (as torch). */
export function gelu(x: Tensor, approximate: "none" | "tanh" = "none"): Tensor {
  return unary(approximate === "tanh" ? "gelu_tanh" : "gelu_erf", x);
}

/** softplus(x) = log(1 + exp(beta x)) / beta, linear above threshold (as torch). */
export function softplus(x: Tensor, beta = 1, threshold = 20): Tensor {
  return unary("softplus", x, { a: beta, b: threshold });
}

export function elu(x: Tensor, alpha = 1): Tensor {
  return unary("elu", x, { a: alpha });
}

export function clamp(x: Tensor, min = -Infinity, max = Infinity): Tensor {
  if (min > max) throw new RangeError(`clamp: min ${min} is greater than max ${max}`);
  return unary("clamp", x, { a: min, b: max });
}

export function powScalar(x: Tensor, exponent: number): Tensor {
  return unary("powScalar", x, { a: exponent });
}
