// Native GEMM kernels (native/gemm/gemm_impl.h): the `gemm` kernel of backend.ts on Float32Array, and a
// bf16 x bf16 -> fp32 variant whose inputs are raw bf16 bits in Uint16Array.

import type { GemmArgs, GemmBf16Args } from "../backend.js";
import { native, nativeLoadError, type NativeAddon } from "./addon.js";

function need(): NativeAddon {
  if (!native) throw new Error(`tsformer native backend unavailable: ${nativeLoadError}`);
  return native;
}

/** C_i = alpha op(A_i) op(B_i) + beta C_i (+ bias), row-major; see GemmArgs. Synchronous. */
export function nativeGemm(g: GemmArgs<Float32Array>): void {
  need().gemm(g.batch, g.m, g.n, g.k, g.a, g.aOff, g.lda, g.strideA, g.transA,
    g.b, g.bOff, g.ldb, g.strideB, g.transB, g.c, g.cOff, g.ldc, g.strideC, g.alpha, g.beta, g.bias ?? null, g.biasOff ?? 0);
}


/**
 * bf16 GEMM with fp32 accumulation: vdpbf16ps on CPUs with avx512_bf16, otherwise the operands are
 * widened to fp32 (exactly) while packing. mode "pairs" forces the vdpbf16ps operand layout
 * (emulated on AVX2) so that its packing can be tested on any machine.
 */
export function nativeGemmBf16(g: GemmBf16Args, mode: "auto" | "pairs" = "auto"): void {
  need().gemmBf16(g.batch, g.m, g.n, g.k, g.a, g.aOff, g.lda, g.strideA, g.transA,
    g.b, g.bOff, g.ldb, g.strideB, g.transB, g.c, g.cOff, g.ldc, g.strideC, g.alpha, g.beta, g.bias ?? null, g.biasOff ?? 0, mode);
}

/** fp32 -> bf16 bits, round to nearest even; NaN stays NaN (quiet, sign kept). dst.length >= src.length. */
export function toBf16(src: Float32Array, dst: Uint16Array): void {
  need().toBf16(src, dst);
}

/** bf16 bits -> fp32 (exact). */
export function fromBf16(src: Uint16Array, dst: Float32Array): void {
  need().fromBf16(src, dst);
}
