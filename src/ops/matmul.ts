// matmul with torch semantics: 1-D operands are promoted and squeezed back, batch dims broadcast.
// Transposes in the backward pass are flags to the GEMM kernel, never copies.

import type { GemmArgs } from "../backend/backend.js";
import { backend } from "../backend/registry.js";
import { record } from "../tensor/autograd.js";
import { broadcastShapes, fmtShape, numel } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import { autocastGemm, autocastScope, type AutocastScope } from "./autocast.js";
import { commonFloat, floatData } from "./util.js";
import { sumTo } from "./raw.js";
import { reshape, transpose, unbroadcast } from "./views.js";

/**
 * C[b] = op(A[b]) @ op(B[b]) over contiguous batched operands where A or B may have batch 1 (shared).
 * a: [ba, r, c] stored row-major (op transposes when ta), same for b.
 */
function bmm(a: Tensor, ta: boolean, b: Tensor, tb: boolean, batch: number, m: number, n: number, k: number, lp: AutocastScope | null): Tensor {
  const dtype = commonFloat("matmul", a, b);
  const ad = floatData(a, "matmul"), bd = floatData(b, "matmul");
  const out = Tensor.empty([batch, m, n], dtype);
  const aBatch = ad.length / (m * k), bBatch = bd.length / (k * n);
  const args: GemmArgs = {
    batch, m, n, k,
    a: ad, aOff: 0, lda: ta ? m : k, strideA: aBatch === 1 ? 0 : m * k, transA: ta,
    b: bd, bOff: 0, ldb: tb ? k : n, strideB: bBatch === 1 ? 0 : k * n, transB: tb,
    c: out.data as typeof ad, cOff: 0, ldc: n, strideC: m * n, alpha: 1, beta: 0,
  };
  if (lp && dtype === "float32") autocastGemm(lp, args as GemmArgs<Float32Array>, a, b);
  else backend().gemm(args);
  return out;
}

export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.ndim === 0 || b.ndim === 0) throw new RangeError("matmul: both operands need at least one dimension");
  const a2 = a.ndim === 1 ? reshape(a, [1, a.shape[0]]) : a;
  const b2 = b.ndim === 1 ? reshape(b, [b.shape[0], 1]) : b;
  const m = a2.shape[a2.ndim - 2], k = a2.shape[a2.ndim - 1];
  const k2 = b2.shape[b2.ndim - 2], n = b2.shape[b2.ndim - 1];
  if (k !== k2) throw new RangeError(`matmul: inner sizes differ, ${fmtShape(a.shape)} @ ${fmtShape(b.shape)}`);
  const batchShape = broadcastShapes(a2.shape.slice(0, -2), b2.shape.slice(0, -2));
  const batch = numel(batchShape);
  // Broadcast batch dims: share an operand when its batch is 1, otherwise materialize the broadcast.
  const aB = numel(a2.shape.slice(0, -2)) === batch || numel(a2.shape.slice(0, -2)) === 1 ? a2 : a2.expand(...batchShape, m, k).contiguous();
  const bB = numel(b2.shape.slice(0, -2)) === batch || numel(b2.shape.slice(0, -2)) === 1 ? b2 : b2.expand(...batchShape, k, n).contiguous();
  // under autocast (ops/autocast.ts) the products run in its precision, backward included
  const lp = autocastScope();
  const out = bmm(aB, false, bB, false, batch, m, n, k, lp);
  const outShape = [...batchShape, m, n];
  // dA = dC @ B^T, dB = A^T @ dC, summed over batch when the operand was shared; no GEMM for an
  // operand whose gradient nobody needs (a frozen weight).
  const res = record(reshape(out, outShape), "matmul", [aB, bB], (g, { needsInputGrad: [na, nb], saved: [A, B] }) => {
    const ga = na ? bmm(g, false, B, true, batch, m, k, n, lp) : null;
    const gb = nb ? bmm(A, true, g, false, batch, k, n, m, lp) : null;
    return [
      ga && sumTo(reshape(ga, [...batchShape, m, k]), aB.shape),
      gb && sumTo(reshape(gb, [...batchShape, k, n]), bB.shape),
    ];
  }, [aB, bB], (g, { needsInputGrad: [na, nb], saved: [A, B] }) => [
    na ? unbroadcast(matmul(g, transpose(B, -1, -2)), aB.shape) : null,
    nb ? unbroadcast(matmul(transpose(A, -1, -2), g), bB.shape) : null,
  ]);
  const finalShape = [...batchShape, ...(a.ndim === 1 ? [] : [m]), ...(b.ndim === 1 ? [] : [n])];
  return reshape(res, finalShape);
}
