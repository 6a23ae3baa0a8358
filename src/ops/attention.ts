// Scaled dot-product attention that materializes the scores (the reference "softmax" path):
// S = scale * Q K^T, causal mask, P = softmax(S), O = P V (Vaswani et al. 2017, eq. 1).
// GQA without copying K/V: the query heads of one KV group are consecutive, so Q viewed as
// [B, Hkv, group * Tq, d] multiplies its group's K in one batched GEMM.

import type { FloatArray, GemmArgs } from "../backend/backend.js";
import { backend } from "../backend/registry.js";
import { record } from "../tensor/autograd.js";
import { fmtShape } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";
import { commonFloat, empty, floatData } from "./util.js";

export interface AttentionOptions {
  causal?: boolean;
  /** Defaults to 1/sqrt(d). */
  scale?: number;
}

function bgemm(batch: number, m: number, n: number, k: number, a: FloatArray, ta: boolean, sa: number, b: FloatArray, tb: boolean, sb: number, c: FloatArray, alpha: number, beta = 0): void {
  const g: GemmArgs = {
    batch, m, n, k, a, aOff: 0, lda: ta ? m : k, strideA: sa, transA: ta,
    b, bOff: 0, ldb: tb ? k : n, strideB: sb, transB: tb, c, cOff: 0, ldc: n, strideC: m * n, alpha, beta,
  };
  backend().gemm(g);
}

/** q [B, H, Tq, d]; k, v [B, Hkv, S, d] with Hkv dividing H. Causal: query t sees keys j <= t + (S - Tq). */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const dtype = commonFloat("attention", q, k, v);
  if (q.ndim !== 4 || k.ndim !== 4 || v.ndim !== 4 || k.shape.some((s, i) => s !== v.shape[i]) || q.shape[0] !== k.shape[0] || q.shape[3] !== k.shape[3] || q.shape[1] % k.shape[1] !== 0) {
    throw new RangeError(`attention: q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)} must be [B, H, T, d] with kv heads dividing H`);
  }
  const [B, H, Tq, d] = q.shape;
  const [, Hkv, S] = k.shape;
  const group = H / Hkv, bh = B * Hkv, rows = group * Tq;
  const scale = opts.scale ?? 1 / Math.sqrt(d);
  const causal = opts.causal ?? true;
  const off = S - Tq;
  const qd = floatData(q, "attention"), kd = floatData(k, "attention"), vd = floatData(v, "attention");
  const p = empty([bh, rows, S], dtype);
  const pd = p.data as FloatArray;
  bgemm(bh, rows, S, d, qd, false, rows * d, kd, true, S * d, pd, scale);
  if (causal) {
    for (let b = 0; b < bh; b++) {
      for (let r = 0; r < rows; r++) {
        const t = r % Tq, base = (b * rows + r) * S;
        for (let j = t + off + 1; j < S; j++) pd[base + j] = -Infinity;
      }
    }
  }
  backend().softmax(pd, pd, bh * rows, S, false);
  const out = empty(q.shape, dtype);
  bgemm(bh, rows, d, S, pd, false, rows * S, vd, false, S * d, out.data as FloatArray, 1);
  return record(out, "attention", [q, k, v], (g) => {
    const gd = floatData(g, "attention");
    const gq = empty(q.shape, dtype), gk = empty(k.shape, dtype), gv = empty(v.shape, dtype);
    // dV = P^T dO; dP = dO V^T; dS = P * (dP - rowsum(dP * P)); dQ = scale dS K; dK = scale dS^T Q
    bgemm(bh, S, d, rows, pd, true, rows * S, gd, false, rows * d, gv.data as FloatArray, 1);
    const ds = empty([bh, rows, S], dtype).data as FloatArray;
    bgemm(bh, rows, S, d, gd, false, rows * d, vd, true, S * d, ds, 1);
    backend().softmaxBackward(pd, ds, ds, bh * rows, S, false);
    bgemm(bh, rows, d, S, ds, false, rows * S, kd, false, S * d, gq.data as FloatArray, scale);
    bgemm(bh, S, d, rows, ds, true, rows * S, qd, false, rows * d, gk.data as FloatArray, scale);
    return [gq, gk, gv];
  }, [q, k, v, p]);
}
