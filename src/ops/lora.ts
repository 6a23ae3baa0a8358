// loraLinear(x, W, b, A, B, s) = x W^T + b + s (x A^T) B^T: a Linear with one LoRA adapter (Hu et al.
// 2021, eq. 3: h = W0 x + B A x, scaled by s = alpha / r) as one op. The adapter's up-projection is
// accumulated into the base product's output (beta = 1) and its input-gradient term into the base's
// input gradient, so neither the [.., out] adapter output nor the [.., in] gradient term exists as a
// tensor of its own, nor the two adds over them that the composed form pays per layer and step.
// Backward, with g = dL/dy, t = x A^T and u = g B (both [rows, r]):
//   dx = g W + s u A,  dA = s u^T x,  dB = s g^T t,  dW = g^T x (only for a trainable W),  db = sum g.

import { backend } from "../backend/registry.js";
import { noGrad, record } from "../tensor/autograd.js";
import { fmtShape } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import { autocastScope } from "./autocast.js";
import { add, mul } from "./binary.js";
import { gemmArgs, linear } from "./linear.js";
import { matmul } from "./matmul.js";
import { sum } from "./reduce.js";
import { commonFloat, floatData } from "./util.js";
import { reshape, transpose } from "./views.js";

export function loraLinear(x: Tensor, weight: Tensor, bias: Tensor | null, A: Tensor, B: Tensor, scaling: number): Tensor {
  const dtype = commonFloat("loraLinear", x, weight, A, B, ...(bias ? [bias] : []));
  const [out, inF] = weight.shape, r = A.shape[0];
  if (A.ndim !== 2 || B.ndim !== 2 || A.shape[1] !== inF || B.shape[0] !== out || B.shape[1] !== r) {
    throw new RangeError(`loraLinear: weight ${fmtShape(weight.shape)}, A ${fmtShape(A.shape)} and B ${fmtShape(B.shape)} do not fit (A is [r, in], B [out, r])`);
  }
  // the base product checks x and bias; under autocast each product takes linear's low-precision path
  if (dtype === "float32" && autocastScope()) return add(linear(x, weight, bias), linear(mul(linear(x, A), scaling), B));
  const y = noGrad(() => linear(x, weight, bias));
  const rows = x.numel / inF;
  const xd = floatData(x, "loraLinear"), yd = y.data as typeof xd;
  const gemm = (a: typeof xd, ta: boolean, b: typeof xd, tb: boolean, c: typeof xd, m: number, n: number, k: number, alpha = 1, beta = 0) =>
    backend().gemm(gemmArgs(a, ta, b, tb, c, m, n, k, null, alpha, beta));
  const t = Tensor.empty([rows, r], dtype), td = t.data as typeof xd;
  gemm(xd, false, floatData(A, "loraLinear"), true, td, rows, r, inF);
  gemm(td, false, floatData(B, "loraLinear"), true, yd, rows, out, r, scaling, 1);
  return record(y, "lora_linear", [x, weight, bias, A, B], (g, { needsInputGrad: [nx, nw, nb, nA, nB], saved: [ws, as, bs, xs, ts] }) => {
    const gd = floatData(g, "loraLinear"), ad = floatData(as, "loraLinear");
    const grad = (shape: number[]) => Tensor.empty(shape, dtype);
    let gx: Tensor | null = null, gw: Tensor | null = null, gb: Tensor | null = null, gA: Tensor | null = null, gB: Tensor | null = null;
    let u: typeof xd | null = null;
    if (nx || nA) {
      u = grad([rows, r]).data as typeof xd;
      gemm(gd, false, floatData(bs, "loraLinear"), false, u, rows, r, out);
    }
    if (nx) {
      gx = grad(x.shape);
      const gxd = gx.data as typeof xd;
      gemm(gd, false, floatData(ws, "loraLinear"), false, gxd, rows, inF, out);
      gemm(u!, false, ad, false, gxd, rows, inF, r, scaling, 1);
    }
    if (nA) {
      gA = grad(A.shape);
      gemm(u!, true, floatData(xs, "loraLinear"), false, gA.data as typeof xd, r, inF, rows, scaling);
    }
    if (nB) {
      gB = grad(B.shape);
      gemm(gd, true, floatData(ts, "loraLinear"), false, gB.data as typeof xd, out, r, rows, scaling);
    }
    if (nw) {
      gw = grad(weight.shape);
      gemm(gd, true, floatData(xs, "loraLinear"), false, gw.data as typeof xd, out, inF, rows);
    }
    if (nb) {
      gb = Tensor.zeros([out], dtype);
      backend().reduce("sum", gd, 1, rows, out, gb.data as typeof xd);
    }
    return [gx, gw, gb, gA, gB];
  }, [weight, A, B, x, t], (g, { needsInputGrad: [nx, nw, nb, nA, nB], saved: [ws, as, bs, xs] }) => {
    // the same derivatives in differentiable ops (gradients of gradients; t recomputed so that dB
    // carries its dependence on x and A)
    const g2 = reshape(g, [rows, out]), x2 = reshape(xs, [rows, inF]), u = matmul(g2, bs);
    return [
      nx ? reshape(add(matmul(g2, ws), mul(matmul(u, as), scaling)), x.shape) : null,
      nw ? matmul(transpose(g2, 0, 1), x2) : null,
      nb ? sum(g2, 0) : null,
      nA ? mul(matmul(transpose(u, 0, 1), x2), scaling) : null,
      nB ? mul(matmul(transpose(g2, 0, 1), matmul(x2, transpose(as, 0, 1))), scaling) : null,
    ];
  });
}
