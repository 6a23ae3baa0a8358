// linear(x, W, b) = x W^T + b with W stored [out, in] (torch layout). One GEMM with the transpose as a
// flag forward; backward is gx = gy W (NN) and gW = gy^T x (TN): no transposed copies anywhere.

import { backend } from "../backend/registry.js";
import { record } from "../tensor/autograd.js";
import { fmtShape } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import { autocastScope, lowpGemm, lowpOperand, type AutocastScope } from "./autocast.js";
import { inferenceWeight, linearStored } from "./quantize.js";
import { commonFloat, floatData } from "./util.js";
import { matmul } from "./matmul.js";
import { sum } from "./reduce.js";
import { reshape, transpose } from "./views.js";

export function linear(x: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  const dtype = commonFloat("linear", x, weight, ...(bias ? [bias] : []));
  const [out, inF] = weight.shape;
  if (weight.ndim !== 2 || x.shape[x.ndim - 1] !== inF || (bias && (bias.ndim !== 1 || bias.shape[0] !== out))) {
    throw new RangeError(`linear: input ${fmtShape(x.shape)}, weight ${fmtShape(weight.shape)}${bias ? `, bias ${fmtShape(bias.shape)}` : ""} do not fit (weight is [out, in])`);
  }
  const stored = inferenceWeight(weight);  // int8 / bf16 inference weights (ops/quantize.ts)
  if (stored) return linearStored(x, weight, stored, bias);
  const rows = x.numel / inF;
  const xd = floatData(x, "linear"), wd = floatData(weight, "linear");
  const bd = bias && floatData(bias, "linear");
  const y = Tensor.empty([...x.shape.slice(0, -1), out], dtype);
  const yd = y.data as typeof xd;
  const lp = dtype === "float32" ? autocastScope() : null;
  if (lp) return linearAutocast(lp, x, weight, bias, y);
  const gemm = (a: typeof xd, ta: boolean, b: typeof xd, tb: boolean, c: typeof xd, m: number, n: number, k: number, bias: typeof xd | null = null) =>
    backend().gemm(gemmArgs(a, ta, b, tb, c, m, n, k, bias));
  gemm(xd, false, wd, true, yd, rows, out, inF, bd);  // the bias added in the GEMM's write-back
  // Each gradient only when needed: a frozen (LoRA base) weight costs no gW GEMM, and x, which only
  // gW reads, is not saved for it (as torch saves an input of mm only when the other one requires grad).
  const saved = weight.requiresGrad ? [weight, x] : [weight];
  return record(y, "linear", [x, weight, bias], (g, { needsInputGrad: [nx, nw, nb], saved: [ws, xs] }) => {
    const gd = floatData(g, "linear");
    let gx: Tensor | null = null, gw: Tensor | null = null, gb: Tensor | null = null;
    if (nx) {
      gx = Tensor.empty(x.shape, dtype);
      gemm(gd, false, floatData(ws, "linear"), false, gx.data as typeof xd, rows, inF, out);
    }
    if (nw && xs) {
      gw = Tensor.empty(weight.shape, dtype);
      gemm(gd, true, floatData(xs, "linear"), false, gw.data as typeof xd, out, inF, rows);
    }
    if (nb) {
      gb = Tensor.zeros([out], dtype);
      backend().reduce("sum", gd, 1, rows, out, gb.data as typeof xd);
    }
    return [gx, gw, gb];
  }, saved, (g, { needsInputGrad: [nx, nw, nb], saved: [ws, xs] }) => {
    const g2 = reshape(g, [rows, out]);
    return [
      nx ? matmul(g, ws) : null,
      nw && xs ? matmul(transpose(g2, 0, 1), reshape(xs, [rows, inF])) : null,
      nb ? sum(g2, 0) : null,
    ];
  });
}

/** One product's arguments: C [m, n] = alpha op(A) op(B) (+ beta C) (+ bias), all contiguous, batch 1. */
export function gemmArgs<A, B, C>(a: A, ta: boolean, b: B, tb: boolean, c: C, m: number, n: number, k: number, bias: C | null = null, alpha = 1, beta = 0) {
  return { batch: 1, m, n, k, a, aOff: 0, lda: ta ? m : k, strideA: 0, transA: ta, b, bOff: 0, ldb: tb ? k : n, strideB: 0, transB: tb, c, cOff: 0, ldc: n, strideC: 0, alpha, beta, bias };
}

type Lowp = Uint16Array | Float32Array;

/**
 * linear under autocast (ops/autocast.ts): the three products in the scope's precision, each operand
 * converted once (the gradient once for both backward products) and x saved in that precision, as
 * torch's autocast saves its low-precision copies (the weight's copy is the parameter's cached one).
 * Without a graph backward: gradients of gradients are not taken under autocast.
 */
function linearAutocast(s: AutocastScope, x: Tensor, weight: Tensor, bias: Tensor | null, y: Tensor): Tensor {
  const [out, inF] = weight.shape, rows = x.numel / inF;
  const x16 = lowpOperand(s, floatData(x, "linear") as Float32Array, null);
  const w16 = lowpOperand(s, floatData(weight, "linear") as Float32Array, weight);
  const bd = bias && (floatData(bias, "linear") as Float32Array);
  lowpGemm(s, gemmArgs(x16.data as Lowp, false, w16.data as Lowp, true, y.data as Float32Array, rows, out, inF, bd));
  return record(y, "linear", [x, weight, bias], (g, { needsInputGrad: [nx, nw, nb], saved: [, xs] }) => {
    const gd = floatData(g, "linear") as Float32Array, g16 = lowpOperand(s, gd, null).data as Lowp;
    let gx: Tensor | null = null, gw: Tensor | null = null, gb: Tensor | null = null;
    if (nx) {
      gx = Tensor.empty(x.shape, "float32");
      lowpGemm(s, gemmArgs(g16, false, w16.data as Lowp, false, gx.data as Float32Array, rows, inF, out));
    }
    if (nw) {
      gw = Tensor.empty(weight.shape, "float32");
      lowpGemm(s, gemmArgs(g16, true, xs.data as Lowp, false, gw.data as Float32Array, out, inF, rows));
    }
    if (nb) {
      gb = Tensor.zeros([out], "float32");
      backend().reduce("sum", gd, 1, rows, out, gb.data as Float32Array);
    }
    return [gx, gw, gb];
  }, weight.requiresGrad ? [weight, x16] : [weight]);
}
