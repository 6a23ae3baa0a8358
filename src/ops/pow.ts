// x ** y for two tensors: its own file because d/dy needs log (unary.ts), whose derivatives are in turn
// written with the binary ops.

import { recordComposite } from "../tensor/autograd.js";
import type { Tensor, TensorLike } from "../tensor/tensor.js";
import { binaryRaw } from "./raw.js";
import { unbroadcast } from "./views.js";
import { mul, operands, sub } from "./binary.js";
import { log } from "./unary.js";

/** x ** y, both tensors (a scalar exponent goes through powScalar, a scalar base here). */
export function pow(a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = operands(a, b);
  const out = binaryRaw("pow", x, y);
  return recordComposite(out, "pow", [x, y], (g, { needsInputGrad: [nx, ny], saved: [xs, ys, p] }) => [
    // d/dx = y x^(y-1), d/dy = x^y ln x
    nx ? unbroadcast(mul(g, mul(ys, pow(xs, sub(ys, 1)))), x.shape) : null,
    ny ? unbroadcast(mul(g, mul(p, log(xs))), y.shape) : null,
  ], [x, y, out]);
}
