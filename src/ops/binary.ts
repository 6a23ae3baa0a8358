// Broadcasting binary ops. Forward reads both operands through broadcast strides (no expanded copies);
// backward reduces each gradient back to its operand's shape with unbroadcast, in differentiable ops so
// that a createGraph backward records it.

import { recordComposite } from "../tensor/autograd.js";
import { Tensor, type TensorLike } from "../tensor/tensor.js";
import { lift } from "./util.js";
import { binaryRaw } from "./raw.js";
import { unbroadcast } from "./views.js";

export function operands(a: TensorLike, b: TensorLike): [Tensor, Tensor] {
  if (a instanceof Tensor) return [a, lift(b, a)];
  if (b instanceof Tensor) return [lift(a, b), b];
  throw new TypeError("binary op needs at least one tensor operand");
}

export function add(a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = operands(a, b);
  return recordComposite(binaryRaw("add", x, y), "add", [x, y], (g, { needsInputGrad: [nx, ny] }) => [
    nx ? unbroadcast(g, x.shape) : null,
    ny ? unbroadcast(g, y.shape) : null,
  ]);
}

export function sub(a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = operands(a, b);
  return recordComposite(binaryRaw("sub", x, y), "sub", [x, y], (g, { needsInputGrad: [nx, ny] }) => [
    nx ? unbroadcast(g, x.shape) : null,
    ny ? unbroadcast(mul(g, -1), y.shape) : null,
  ]);
}

export function mul(a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = operands(a, b);
  return recordComposite(binaryRaw("mul", x, y), "mul", [x, y], (g, { needsInputGrad: [nx, ny], saved: [xs, ys] }) => [
    nx ? unbroadcast(mul(g, ys), x.shape) : null,
    ny ? unbroadcast(mul(g, xs), y.shape) : null,
  ], [x, y]);
}

export function div(a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = operands(a, b);
  const out = binaryRaw("div", x, y);
  return recordComposite(out, "div", [x, y], (g, { needsInputGrad: [nx, ny], saved: [ys, q] }) => {
    const gx = div(g, ys);
    // d(x/y)/dy = -(x/y)/y
    return [nx ? unbroadcast(gx, x.shape) : null, ny ? unbroadcast(mul(gx, mul(q, -1)), y.shape) : null];
  }, [y, out]);
}

export function maximum(a: Tensor, b: TensorLike): Tensor {
  const y = lift(b, a);
  const out = binaryRaw("maximum", a, y);
  return recordComposite(out, "maximum", [a, y], (g, { needsInputGrad: [na, ny], saved: [a0, m] }) => {
    const ma = binaryRaw("eq", m, a0);  // where a won: a piecewise constant, no graph needed
    return [na ? unbroadcast(mul(g, ma), a.shape) : null, ny ? unbroadcast(mul(g, binaryRaw("sub", lift(1, ma), ma)), y.shape) : null];
  }, [a, out]);
}
