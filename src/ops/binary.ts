// Broadcasting binary ops. Forward reads both operands through broadcast strides (no expanded copies);
// backward reduces each gradient back to its operand's shape with sumTo.

import type { BinaryOp } from "../backend/backend.js";
import { backend } from "../backend/registry.js";
import { record } from "../tensor/autograd.js";
import { broadcastShapes, broadcastStrides } from "../tensor/shape.js";
import { Tensor, type TensorLike } from "../tensor/tensor.js";
import { commonFloat, lift, output } from "./util.js";
import { sumTo } from "./reduce.js";
import { log } from "./unary.js";

/** Raw broadcasting kernel call, no graph. */
export function binaryRaw(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  const dtype = commonFloat(op, a, b);
  const shape = broadcastShapes(a.shape, b.shape);
  const out = output(shape, dtype);
  backend().binary(op, a.data as Float64Array, a.offset, broadcastStrides(a.shape, a.strides, shape),
    b.data as Float64Array, b.offset, broadcastStrides(b.shape, b.strides, shape), out.data as Float64Array, shape);
  return out;
}

function operands(a: TensorLike, b: TensorLike): [Tensor, Tensor] {
  if (a instanceof Tensor) return [a, lift(b, a)];
  if (b instanceof Tensor) return [lift(a, b), b];
  throw new TypeError("binary op needs at least one tensor operand");
}

export function add(a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = operands(a, b);
  return record(binaryRaw("add", x, y), "add", [x, y], (g) => [sumTo(g, x.shape), sumTo(g, y.shape)]);
}

export function sub(a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = operands(a, b);
  return record(binaryRaw("sub", x, y), "sub", [x, y], (g) => [sumTo(g, x.shape), y.requiresGrad ? sumTo(binaryRaw("mul", g, lift(-1, g)), y.shape) : null]);
}

export function mul(a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = operands(a, b);
  return record(binaryRaw("mul", x, y), "mul", [x, y], (g) => [
    x.requiresGrad ? sumTo(binaryRaw("mul", g, y), x.shape) : null,
    y.requiresGrad ? sumTo(binaryRaw("mul", g, x), y.shape) : null,
  ], [x, y]);
}

export function div(a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = operands(a, b);
  const out = binaryRaw("div", x, y);
  return record(out, "div", [x, y], (g) => {
    const gx = binaryRaw("div", g, y);
    // d(x/y)/dy = -(x/y)/y
    return [
      x.requiresGrad ? sumTo(gx, x.shape) : null,
      y.requiresGrad ? sumTo(binaryRaw("mul", gx, binaryRaw("mul", out, lift(-1, out))), y.shape) : null,
    ];
  }, [x, y, out]);
}

/** x ** y, both tensors (a scalar exponent goes through powScalar, a scalar base here). */
export function pow(a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = operands(a, b);
  const out = binaryRaw("pow", x, y);
  return record(out, "pow", [x, y], (g) => [
    // d/dx = y x^(y-1), d/dy = x^y ln x
    x.requiresGrad ? sumTo(binaryRaw("mul", g, binaryRaw("mul", y, binaryRaw("pow", x, binaryRaw("sub", y, lift(1, y))))), x.shape) : null,
    y.requiresGrad ? sumTo(binaryRaw("mul", g, binaryRaw("mul", out, log(x))), y.shape) : null,
  ], [x, y, out]);
}

export function maximum(a: Tensor, b: TensorLike): Tensor {
  const y = lift(b, a);
  const out = binaryRaw("maximum", a, y);
  return record(out, "maximum", [a, y], (g) => {
    const ma = binaryRaw("eq", out, a);
    return [sumTo(binaryRaw("mul", g, ma), a.shape), sumTo(binaryRaw("mul", g, binaryRaw("sub", lift(1, ma), ma)), y.shape)];
  }, [a, y, out]);
}
