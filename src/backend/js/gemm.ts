// Reference batched strided GEMM. Loop order i-p-j keeps the inner loop on contiguous rows of B and C
// when B is not transposed; it is the correctness twin of the native kernel, not a fast path.

import type { GemmArgs, GemmBf16Args, GroupedGemmArgs } from "../backend.js";
import { bf16ToF32, f32ToBf16 } from "./half.js";

export function gemm(g: GemmArgs): void {
  const { batch, m, n, k, a, b, c, lda, ldb, ldc, transA, transB, alpha, beta } = g;
  const bias = g.bias ?? null, bo0 = g.biasOff ?? 0;
  if (bias && batch > 1) throw new RangeError("gemm: a bias needs batch 1");
  if (bias && n > 0 && bo0 + n > bias.length) throw new RangeError("gemm: bias is out of bounds");
  const row = new Float64Array(n);
  for (let t = 0; t < batch; t++) {
    const ao = g.aOff + t * g.strideA, bo = g.bOff + t * g.strideB, co = g.cOff + t * g.strideC;
    for (let i = 0; i < m; i++) {
      row.fill(0);
      for (let p = 0; p < k; p++) {
        const av = transA ? a[ao + p * lda + i] : a[ao + i * lda + p];
        if (av === 0) continue;
        if (transB) for (let j = 0; j < n; j++) row[j] += av * b[bo + j * ldb + p];
        else {
          const br = bo + p * ldb;
          for (let j = 0; j < n; j++) row[j] += av * b[br + j];
        }
      }
      const cr = co + i * ldc;
      for (let j = 0; j < n; j++) c[cr + j] = alpha * row[j] + (beta === 0 ? 0 : beta * c[cr + j]) + (bias ? bias[bo0 + j] : 0);
    }
  }
}

/** gemmBf16's twin: the bf16 operands widened to float32 (exactly), then the reference product. */
export function gemmBf16(g: GemmBf16Args): void {
  gemm({ ...g, a: bf16ToF32(g.a), b: bf16ToF32(g.b) });
}

export function toBf16(src: Float32Array, dst: Uint16Array, n: number): void {
  f32ToBf16(src.subarray(0, n), dst);
}

/** gemmGrouped's twin: one reference product per group. */
export function gemmGrouped(g: GroupedGemmArgs): void {
  const { offsets: o, m, n, k, a, lda, ldb, transB, ldc } = g;
  for (let i = 0; i + 1 < o.length; i++) {
    const rows = o[i + 1] - o[i];
    const base = { batch: 1, strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta: 0, a, lda, ldb, ldc, n };
    if (g.mode === "rows") {
      if (rows > 0) gemm({ ...base, m: rows, k, aOff: o[i] * lda, transA: false, b: g.bs![i], bOff: 0, transB, c: g.c!, cOff: o[i] * ldc });
    } else {
      gemm({ ...base, m, k: rows, aOff: o[i] * lda, transA: true, b: g.b!, bOff: o[i] * ldb, transB: false, c: g.cs![i], cOff: 0 });
    }
  }
}
