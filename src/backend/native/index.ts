// The native backend: the float32 kernels of the addon, dispatched through the kernel table
// (../kernels.ts) over the js backend, so that float64 (gradcheck) and other element types (e.g.
// Int32Array copies) run the js reference twin. Each entry below only adapts the Backend arguments to
// the addon's (op codes, packed dims); bounds and index ranges are checked in C++.

import type { FlashArgs, FlashBackwardArgs, GemmArgs, Im2colArgs, ScanArgs, ScanBackwardArgs, UnaryParams } from "../backend.js";
import type { Backend } from "../backend.js";
import { jsBackend } from "../js/index.js";
import { dispatchBackend, type KernelName, type TypedKernels } from "../kernels.js";
import { AttentionMask, blockMaskTable } from "../mask.js";
import { native, type NativeAddon, type NativeOpNames } from "./addon.js";
import { nativeGemm, nativeGemmBf16, toBf16 } from "./gemm.js";

const MAX_RANK = 16;
// Below these element counts the js kernel is faster than the ~0.2-0.5 us of a native call.
// (tinyToJs: false keeps every float32 call native: used by the kernel tests.)
const TINY: { readonly [K in KernelName]?: number } = { unary: 8, unaryBackward: 8, binary: 16, stridedCopy: 128 };

type F32 = Float32Array;
type F32n = Float32Array | null;

/** name -> op code (its index in the addon's list). */
function codes(names: string[]): Record<string, number> {
  return Object.fromEntries(names.map((n, i) => [n, i]));
}

/** Validates the mask (the messages of mask.ts) and packs the flash arguments for the addon. */
function flashDims(a: FlashArgs & Pick<FlashBackwardArgs, "lowPrecision">, dims: Float64Array): Uint8Array | null {
  new AttentionMask({ causal: a.causal, window: a.window, cuSeqlens: a.cuSeqlens, blockMask: null }, a.Tq, a.S);
  const table = a.blockMask ? blockMaskTable(a.blockMask, a.Tq, a.S).table : null;
  dims[0] = a.B; dims[1] = a.H; dims[2] = a.Hkv; dims[3] = a.Tq; dims[4] = a.S; dims[5] = a.d;
  dims[6] = a.scale; dims[7] = a.causal ? 1 : 0; dims[8] = a.window; dims[9] = a.blockMask ? a.blockMask.blockSize : 1;
  dims[10] = 0; dims[11] = a.kvRows ?? 0; dims[12] = a.lowPrecision ? 1 : 0;
  return table;
}

/** Packs the im2col geometry for the addon (native/napi/conv.cc). */
function convDims(a: Im2colArgs, dims: Float64Array): Float64Array {
  dims[0] = a.n; dims[1] = a.c; dims[2] = a.h; dims[3] = a.w; dims[4] = a.kh; dims[5] = a.kw; dims[6] = a.sh;
  dims[7] = a.sw; dims[8] = a.ph; dims[9] = a.pw; dims[10] = a.dh; dims[11] = a.dw; dims[12] = a.oh; dims[13] = a.ow;
  return dims;
}

/** Packs the selective scan's sizes for the addon (native/napi/ssm.cc). */
function scanDims(a: { b: number; d: number; n: number; L: number; chunk: number }, dims: Float64Array): Float64Array {
  dims[0] = a.b; dims[1] = a.d; dims[2] = a.n; dims[3] = a.L; dims[4] = a.chunk;
  return dims;
}

/** The float32 kernels of the addon with the Backend signatures (the dispatcher has checked the dtypes). */
function float32Kernels(n: NativeAddon, names: NativeOpNames): TypedKernels {
  const js = jsBackend;
  const U = codes(names.unary), B = codes(names.binary), R = codes(names.reduce);
  const dims = new Float64Array(3 * MAX_RANK);
  const flashBuf = new Float64Array(13);
  const convBuf = new Float64Array(14);
  const scanBuf = new Float64Array(5);
  // dims = [shape, strides of operand 1, strides of operand 2] for a kernel of rank <= MAX_RANK
  const pack = (shape: number[], s1: number[], s2: number[]) => {
    const r = shape.length;
    for (let i = 0; i < r; i++) { dims[i] = shape[i]; dims[r + i] = s1[i]; dims[2 * r + i] = s2[i]; }
  };
  const p0 = (p: UnaryParams) => p.a ?? 0, p1 = (p: UnaryParams) => p.b ?? 0;
  return {
    gemm: { float32: (g) => nativeGemm(g as GemmArgs<F32>) },
    gemmBf16: { float32: (g) => nativeGemmBf16(g) },
    gemmGrouped: {
      float32: (g) => n.gemmGrouped(g.mode === "rows" ? 0 : 1, g.offsets, g.m, g.n, g.k, g.a as F32, g.lda,
        (g.mode === "rows" ? g.bs : g.b) as F32 | F32[], g.ldb, g.transB, (g.mode === "rows" ? g.c : g.cs) as F32 | F32[], g.ldc),
    },
    moeFfn: { float32: (a) => n.moeFfn(a.x as F32, a.y as F32, a.d, a.f, a.tokens, a.offsets, a.gates as F32, a.w1 as F32[], a.w3 as F32[] | null, a.w2 as F32[], U[a.act]) },
    toBf16: { float32: (src, dst, len) => toBf16(src.subarray(0, len), dst) },
    gemmQuant: {
      float32: (g) => n.gemmQuant(g.format === "int8" ? 0 : 1, g.m, g.n, g.k, g.x as F32, g.xOff, g.w, g.scales, g.y as F32, g.yOff, (g.bias ?? null) as F32n, g.biasOff ?? 0),
    },
    unary: { float32: (op, x, y, len, p) => n.unary(U[op], x as F32, y as F32, len, p0(p), p1(p)) },
    unaryBackward: { float32: (op, x, y, gy, gx, len, p) => n.unaryBackward(U[op], x as F32, y as F32, gy as F32, gx as F32, len, p0(p), p1(p)) },
    binary: {
      float32(op, a, aOff, aStrides, b, bOff, bStrides, out, shape) {
        if (shape.length > MAX_RANK) return js.binary(op, a, aOff, aStrides, b, bOff, bStrides, out, shape);
        pack(shape, aStrides, bStrides);
        n.binary(B[op], a as F32, aOff, b as F32, bOff, out as F32, shape.length, dims);
      },
    },
    stridedCopy: {
      float32(src, srcOff, srcStrides, dst, dstOff, dstStrides, shape) {
        if (shape.length > MAX_RANK) return js.stridedCopy(src, srcOff, srcStrides, dst, dstOff, dstStrides, shape);
        pack(shape, srcStrides, dstStrides);
        n.stridedCopy(src as F32, srcOff, dst as F32, dstOff, shape.length, dims);
      },
    },
    where: { float32: (c, a, b, out, len) => n.where(c as F32, a as F32, b as F32, out as F32, len) },
    reduce: { float32: (op, x, outer, dim, inner, out) => n.reduce(R[op], x as F32, outer, dim, inner, out as F32) },
    cumsum: { float32: (x, outer, dim, inner, out, reverse) => n.cumsum(x as F32, outer, dim, inner, out as F32, reverse) },
    softmax: { float32: (x, y, rows, cols, log) => n.softmax(x as F32, y as F32, rows, cols, log) },
    softmaxBackward: { float32: (y, gy, gx, rows, cols, log) => n.softmaxBackward(y as F32, gy as F32, gx as F32, rows, cols, log) },
    crossEntropy: {
      float32: (x, t, rows, cols, ignore, sm, loss, lse) => n.crossEntropy(x as F32, t, rows, cols, ignore, sm, loss as F32, lse as F32),
    },
    crossEntropyBackward: {
      float32: (x, t, lse, gl, rows, cols, ignore, sm, gx) =>
        n.crossEntropyBackward(x as F32, t, lse as F32, gl as F32, rows, cols, ignore, sm, gx as F32),
    },
    layerNorm: {
      float32: (x, w, b, rows, cols, eps, y, mean, rstd) =>
        n.layerNorm(x as F32, w as F32n, b as F32n, rows, cols, eps, y as F32, mean as F32, rstd as F32),
    },
    layerNormBackward: {
      float32: (x, w, mean, rstd, gy, rows, cols, gx, gw, gb) =>
        n.layerNormBackward(x as F32, w as F32n, mean as F32, rstd as F32, gy as F32, rows, cols, gx as F32, gw as F32n, gb as F32n),
    },
    rmsNorm: { float32: (x, w, rows, cols, eps, y, rstd) => n.rmsNorm(x as F32, w as F32n, rows, cols, eps, y as F32, rstd as F32) },
    rmsNormBackward: {
      float32: (x, w, rstd, gy, rows, cols, gx, gw) => n.rmsNormBackward(x as F32, w as F32n, rstd as F32, gy as F32, rows, cols, gx as F32, gw as F32n),
    },
    indexSelect: { float32: (x, outer, dimIn, inner, idx, nIdx, out) => n.indexSelect(x as F32, outer, dimIn, inner, idx, nIdx, out as F32) },
    indexAdd: { float32: (g, outer, dimIn, inner, idx, nIdx, gx) => n.indexAdd(g as F32, outer, dimIn, inner, idx, nIdx, gx as F32) },
    adamw: {
      float32: (g, len) => n.adamw(g.param as F32, g.grad as F32, g.m as F32, g.v as F32, len, g.lr, g.beta1, g.beta2, g.eps, g.weightDecay, g.bc1, g.bc2),
    },
    flashForward: {
      float32(a) {
        const table = flashDims(a, flashBuf);
        n.flashForward(a.q as F32, a.k as F32, a.v as F32, a.o as F32, a.lse as F32, flashBuf, a.cuSeqlens, table);
      },
    },
    flashBackward: {
      float32(a) {
        const table = flashDims(a, flashBuf);
        n.flashBackward(a.q as F32, a.k as F32, a.v as F32, a.o as F32, a.lse as F32,
          a.dO as F32, a.dq as F32, a.dk as F32, a.dv as F32, flashBuf, a.cuSeqlens, table);
      },
    },
    im2col: { float32: (a) => n.im2col(a.x as F32, a.col as F32, convDims(a, convBuf)) },
    col2im: { float32: (a) => n.col2im(a.col as F32, a.x as F32, convDims(a, convBuf)) },
    selectiveScan: {
      float32(a) {
        const s = a as ScanArgs<F32>;
        n.selectiveScan(s.u, s.delta, s.A, s.B, s.C, s.D, s.y, s.ck, s.last, s.h0, scanDims(s, scanBuf));
      },
    },
    selectiveScanBackward: {
      float32(a) {
        const s = a as ScanBackwardArgs<F32>;
        n.selectiveScanBackward(s.u, s.delta, s.A, s.B, s.C, s.D, s.gy, s.ck, s.gu, s.gdelta, s.gA, s.gB, s.gC, s.gD, scanDims(s, scanBuf));
      },
    },
  };
}

export function makeNativeBackend(opts: { tinyToJs?: boolean } = {}): Backend | null {
  if (!native) return null;
  return dispatchBackend("native", float32Kernels(native, native.opNames()), jsBackend, opts.tinyToJs === false ? {} : TINY);
}
