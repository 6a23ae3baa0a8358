// The native backend: the js backend with native kernels laid over it. Each native kernel handles
// float32; float64 (gradcheck) and other element types (e.g. Int32Array copies) fall through to the
// js reference twin. Argument checks are cheap here; bounds and index ranges are checked in C++.

import type { AdamWArgs, Backend, BinaryOp, FlashArgs, FlashBackwardArgs, FloatArray, GemmArgs, ReduceOp, UnaryOp, UnaryParams } from "../backend.js";
import { AttentionMask, blockMaskTable } from "../js/flash.js";
import { jsBackend } from "../js/index.js";
import { native, type NativeAddon } from "./addon.js";
import { nativeGemm } from "./gemm.js";

// Op codes: the enums of native/kernels.h.
const UNARY: Record<UnaryOp, number> = {
  neg: 0, exp: 1, log: 2, sqrt: 3, rsqrt: 4, abs: 5, tanh: 6, sigmoid: 7, relu: 8, gelu_tanh: 9,
  gelu_erf: 10, silu: 11, softplus: 12, elu: 13, clamp: 14, powScalar: 15, square: 16,
};
const BINARY: Record<BinaryOp, number> = { add: 0, sub: 1, mul: 2, div: 3, pow: 4, maximum: 5, minimum: 6, eq: 7, gt: 8, lt: 9 };
const REDUCE: Record<ReduceOp, number> = { sum: 0, max: 1, min: 2 };
const MAX_RANK = 16;
// Below these element counts the js kernel is faster than the ~0.2-0.5 us of a native call.
// (tinyToJs: false keeps every float32 call native: used by the kernel tests.)
const TINY = { unary: 8, binary: 16, copy: 128 };

/** The FlashAttention entry points of native/addon_flash.cc (dims: see there). */
interface FlashAddon {
  flashForward(q: Float32Array, k: Float32Array, v: Float32Array, o: Float32Array, lse: Float32Array,
    dims: Float64Array, cuSeqlens: Int32Array | null, table: Uint8Array | null): void;
  flashBackward(q: Float32Array, k: Float32Array, v: Float32Array, o: Float32Array, lse: Float32Array,
    dO: Float32Array, dq: Float32Array, dk: Float32Array, dv: Float32Array,
    dims: Float64Array, cuSeqlens: Int32Array | null, table: Uint8Array | null): void;
}

/** Validates the mask (the messages of js/flash.ts) and packs the flash arguments for the addon. */
function flashDims(a: FlashArgs, dims: Float64Array): Uint8Array | null {
  new AttentionMask({ causal: a.causal, window: a.window, cuSeqlens: a.cuSeqlens, blockMask: null }, a.Tq, a.S);
  const table = a.blockMask ? blockMaskTable(a.blockMask, a.S) : null;
  dims[0] = a.B; dims[1] = a.H; dims[2] = a.Hkv; dims[3] = a.Tq; dims[4] = a.S; dims[5] = a.d;
  dims[6] = a.scale; dims[7] = a.causal ? 1 : 0; dims[8] = a.window; dims[9] = a.blockMask ? a.blockMask.blockSize : 1;
  return table;
}

const isF32 = (x: unknown): x is Float32Array => x instanceof Float32Array;
const f32 = (...xs: (unknown | null)[]) => xs.every((x) => x === null || x instanceof Float32Array);

export function makeNativeBackend(opts: { tinyToJs?: boolean } = {}): Backend | null {
  if (!native) return null;
  const tiny = opts.tinyToJs === false ? { unary: 0, binary: 0, copy: 0 } : TINY;
  const TINY_UNARY = tiny.unary, TINY_BINARY = tiny.binary, TINY_COPY = tiny.copy;
  const n: NativeAddon = native;
  const dims = new Float64Array(3 * MAX_RANK);
  const js = jsBackend;
  const fa = typeof (n as Partial<FlashAddon>).flashForward === "function" ? (n as NativeAddon & FlashAddon) : null;
  const flashDimsBuf = new Float64Array(10);
  return {
    ...js,
    name: "native",
    gemm: (g: GemmArgs) => (f32(g.a, g.b, g.c) && (!g.bias || isF32(g.bias)) ? nativeGemm(g as GemmArgs<Float32Array>) : js.gemm(g)),
    unary(op: UnaryOp, x: FloatArray, y: FloatArray, len: number, p: UnaryParams) {
      if (len >= TINY_UNARY && isF32(x) && isF32(y)) n.unary(UNARY[op], x, y, len, p.a ?? 0, p.b ?? 0);
      else js.unary(op, x, y, len, p);
    },
    unaryBackward(op: UnaryOp, x: FloatArray, y: FloatArray, gy: FloatArray, gx: FloatArray, len: number, p: UnaryParams) {
      if (len >= TINY_UNARY && isF32(x) && isF32(y) && isF32(gy) && isF32(gx)) n.unaryBackward(UNARY[op], x, y, gy, gx, len, p.a ?? 0, p.b ?? 0);
      else js.unaryBackward(op, x, y, gy, gx, len, p);
    },
    binary(op: BinaryOp, a: FloatArray, aOff: number, aStrides: number[], b: FloatArray, bOff: number, bStrides: number[], out: FloatArray, shape: number[]) {
      const r = shape.length;
      let total = 1;
      for (let i = 0; i < r; i++) total *= shape[i];
      if (total < TINY_BINARY || !isF32(a) || !isF32(b) || !isF32(out) || r > MAX_RANK) { js.binary(op, a, aOff, aStrides, b, bOff, bStrides, out, shape); return; }
      for (let i = 0; i < r; i++) { dims[i] = shape[i]; dims[r + i] = aStrides[i]; dims[2 * r + i] = bStrides[i]; }
      n.binary(BINARY[op], a, aOff, b, bOff, out, r, dims);
    },
    stridedCopy(src, srcOff, srcStrides, dst, dstOff, dstStrides, shape) {
      const r = shape.length;
      let total = 1;
      for (let i = 0; i < r; i++) total *= shape[i];
      if (total < TINY_COPY || !isF32(src) || !isF32(dst) || r > MAX_RANK) { js.stridedCopy(src, srcOff, srcStrides, dst, dstOff, dstStrides, shape); return; }
      for (let i = 0; i < r; i++) { dims[i] = shape[i]; dims[r + i] = srcStrides[i]; dims[2 * r + i] = dstStrides[i]; }
      n.stridedCopy(src, srcOff, dst, dstOff, r, dims);
    },
    where(cond: FloatArray, a: FloatArray, b: FloatArray, out: FloatArray, len: number) {
      if (isF32(cond) && isF32(a) && isF32(b) && isF32(out)) n.where(cond, a, b, out, len);
      else js.where(cond, a, b, out, len);
    },
    reduce(op: ReduceOp, x: FloatArray, outer: number, dim: number, inner: number, out: FloatArray) {
      if (isF32(x) && isF32(out)) n.reduce(REDUCE[op], x, outer, dim, inner, out);
      else js.reduce(op, x, outer, dim, inner, out);
    },
    cumsum(x: FloatArray, outer: number, dim: number, inner: number, out: FloatArray, reverse: boolean) {
      if (isF32(x) && isF32(out)) n.cumsum(x, outer, dim, inner, out, reverse);
      else js.cumsum(x, outer, dim, inner, out, reverse);
    },
    softmax(x: FloatArray, y: FloatArray, rows: number, cols: number, log: boolean) {
      if (isF32(x) && isF32(y)) n.softmax(x, y, rows, cols, log);
      else js.softmax(x, y, rows, cols, log);
    },
    softmaxBackward(y: FloatArray, gy: FloatArray, gx: FloatArray, rows: number, cols: number, log: boolean) {
      if (isF32(y) && isF32(gy) && isF32(gx)) n.softmaxBackward(y, gy, gx, rows, cols, log);
      else js.softmaxBackward(y, gy, gx, rows, cols, log);
    },
    crossEntropy(logits, targets, rows, cols, ignoreIndex, smoothing, loss, lse) {
      if (f32(logits, loss, lse) && targets instanceof Int32Array)
        n.crossEntropy(logits as Float32Array, targets, rows, cols, ignoreIndex, smoothing, loss as Float32Array, lse as Float32Array);
      else js.crossEntropy(logits, targets, rows, cols, ignoreIndex, smoothing, loss, lse);
    },
    crossEntropyBackward(logits, targets, lse, gLoss, rows, cols, ignoreIndex, smoothing, gLogits) {
      if (f32(logits, lse, gLoss, gLogits) && targets instanceof Int32Array)
        n.crossEntropyBackward(logits as Float32Array, targets, lse as Float32Array, gLoss as Float32Array, rows, cols, ignoreIndex, smoothing, gLogits as Float32Array);
      else js.crossEntropyBackward(logits, targets, lse, gLoss, rows, cols, ignoreIndex, smoothing, gLogits);
    },
    layerNorm(x, w, b, rows, cols, eps, y, mean, rstd) {
      if (f32(x, w, b, y, mean, rstd))
        n.layerNorm(x as Float32Array, w as Float32Array | null, b as Float32Array | null, rows, cols, eps, y as Float32Array, mean as Float32Array, rstd as Float32Array);
      else js.layerNorm(x, w, b, rows, cols, eps, y, mean, rstd);
    },
    layerNormBackward(x, w, mean, rstd, gy, rows, cols, gx, gw, gb) {
      if (f32(x, w, mean, rstd, gy, gx, gw, gb))
        n.layerNormBackward(x as Float32Array, w as Float32Array | null, mean as Float32Array, rstd as Float32Array, gy as Float32Array, rows, cols,
          gx as Float32Array, gw as Float32Array | null, gb as Float32Array | null);
      else js.layerNormBackward(x, w, mean, rstd, gy, rows, cols, gx, gw, gb);
    },
    rmsNorm(x, w, rows, cols, eps, y, rstd) {
      if (f32(x, w, y, rstd)) n.rmsNorm(x as Float32Array, w as Float32Array | null, rows, cols, eps, y as Float32Array, rstd as Float32Array);
      else js.rmsNorm(x, w, rows, cols, eps, y, rstd);
    },
    rmsNormBackward(x, w, rstd, gy, rows, cols, gx, gw) {
      if (f32(x, w, rstd, gy, gx, gw))
        n.rmsNormBackward(x as Float32Array, w as Float32Array | null, rstd as Float32Array, gy as Float32Array, rows, cols, gx as Float32Array, gw as Float32Array | null);
      else js.rmsNormBackward(x, w, rstd, gy, rows, cols, gx, gw);
    },
    indexSelect(x, outer, dimIn, inner, idx, nIdx, out) {
      if (isF32(x) && isF32(out) && idx instanceof Int32Array) n.indexSelect(x, outer, dimIn, inner, idx, nIdx, out);
      else js.indexSelect(x, outer, dimIn, inner, idx, nIdx, out);
    },
    indexAdd(gOut, outer, dimIn, inner, idx, nIdx, gx) {
      if (isF32(gOut) && isF32(gx) && idx instanceof Int32Array) n.indexAdd(gOut, outer, dimIn, inner, idx, nIdx, gx);
      else js.indexAdd(gOut, outer, dimIn, inner, idx, nIdx, gx);
    },
    adamw(g: AdamWArgs, len: number) {
      if (f32(g.param, g.grad, g.m, g.v))
        n.adamw(g.param as Float32Array, g.grad as Float32Array, g.m as Float32Array, g.v as Float32Array, len,
          g.lr, g.beta1, g.beta2, g.eps, g.weightDecay, g.bc1, g.bc2);
      else js.adamw(g, len);
    },
    flashForward(a: FlashArgs) {
      if (!fa || !f32(a.q, a.k, a.v, a.o, a.lse)) { js.flashForward(a); return; }
      const table = flashDims(a, flashDimsBuf);
      fa.flashForward(a.q as Float32Array, a.k as Float32Array, a.v as Float32Array, a.o as Float32Array, a.lse as Float32Array,
        flashDimsBuf, a.cuSeqlens, table);
    },
    flashBackward(a: FlashBackwardArgs) {
      if (!fa || !f32(a.q, a.k, a.v, a.o, a.lse, a.dO, a.dq, a.dk, a.dv)) { js.flashBackward(a); return; }
      const table = flashDims(a, flashDimsBuf);
      fa.flashBackward(a.q as Float32Array, a.k as Float32Array, a.v as Float32Array, a.o as Float32Array, a.lse as Float32Array,
        a.dO as Float32Array, a.dq as Float32Array, a.dk as Float32Array, a.dv as Float32Array, flashDimsBuf, a.cuSeqlens, table);
    },
  };
}
