// Loads the C++ N-API addon (native/, built by `npm ci` through binding.gyp into
// build/Release/tsformer_native.node). `native` is null when it cannot be loaded; `nativeLoadError`
// then says why, and callers fall back to the pure-TypeScript backend.

import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

import { BINARY_OPS, REDUCE_OPS, UNARY_OPS } from "../op-table.js";
import { packageRoot } from "../package-root.js";

/** The op names of the addon in code order (native/kernels/kernels.h, native/elementwise/unary.h). */
export interface NativeOpNames { unary: string[]; binary: string[]; reduce: string[] }

/** The raw addon surface (see native/napi/). Arguments are validated on the C++ side. */
export interface NativeAddon {
  gemm(batch: number, m: number, n: number, k: number,
    a: Float32Array, aOff: number, lda: number, strideA: number, transA: boolean,
    b: Float32Array, bOff: number, ldb: number, strideB: number, transB: boolean,
    c: Float32Array, cOff: number, ldc: number, strideC: number, alpha: number, beta: number,
    bias: Float32Array | null, biasOff: number): void;
  /** mode "pairs" forces the vdpbf16ps operand layout (emulated on AVX2); used by the tests. */
  gemmBf16(batch: number, m: number, n: number, k: number,
    a: Uint16Array, aOff: number, lda: number, strideA: number, transA: boolean,
    b: Uint16Array, bOff: number, ldb: number, strideB: number, transB: boolean,
    c: Float32Array, cOff: number, ldc: number, strideC: number, alpha: number, beta: number,
    bias: Float32Array | null, biasOff: number, mode?: "auto" | "pairs"): void;
  /** mode 0 = rows (bs, c), 1 = k (b, cs): see GroupedGemmArgs. */
  gemmGrouped(mode: number, offsets: Int32Array, m: number, n: number, k: number, a: Float32Array, lda: number,
    bOrBs: Float32Array | Float32Array[], ldb: number, transB: boolean, cOrCs: Float32Array | Float32Array[], ldc: number): void;
  /** act: a unary op code. w3 null: not gated. See MoeFfnArgs. */
  moeFfn(x: Float32Array, y: Float32Array, d: number, f: number, tokens: Int32Array, offsets: Int32Array, gates: Float32Array,
    w1: Float32Array[], w3: Float32Array[] | null, w2: Float32Array[], act: number): void;
  /** format 0: w Int8Array + scales, 1: w Uint16Array bf16 bits (scales null). See QuantGemmArgs. */
  gemmQuant(format: number, m: number, n: number, k: number, x: Float32Array, xOff: number, w: Int8Array | Uint16Array,
    scales: Float32Array | null, y: Float32Array, yOff: number, bias: Float32Array | null, biasOff: number): void;
  toBf16(src: Float32Array, dst: Uint16Array): void;
  fromBf16(src: Uint16Array, dst: Float32Array): void;
  cpuFeatures(): string[];
  /** Active kernel level: "avx512+bf16" | "avx512" | "avx2" | "scalar". */
  isa(): string;
  /** Force a lower level ("auto" restores the best); returns the active one. */
  setIsa(level: "auto" | "avx512" | "avx2" | "scalar"): string;
  setThreads(n: number): number;
  getThreads(): number;
  /** Core clock (GHz) from a timed chain of dependent integer adds on the calling thread. */
  clockGHz(): number;

  // Non-GEMM float32 kernels (native/napi/kernels.cc); an op's code is its index in opNames().
  opNames(): NativeOpNames;
  unary(op: number, x: Float32Array, y: Float32Array, n: number, a: number, b: number): void;
  unaryBackward(op: number, x: Float32Array, y: Float32Array, gy: Float32Array, gx: Float32Array, n: number, a: number, b: number): void;
  /** dims = [shape(rank), aStrides(rank), bStrides(rank)] */
  binary(op: number, a: Float32Array, aOff: number, b: Float32Array, bOff: number, out: Float32Array, rank: number, dims: Float64Array): void;
  /** dims = [shape(rank), srcStrides(rank), dstStrides(rank)] */
  stridedCopy(src: Float32Array, srcOff: number, dst: Float32Array, dstOff: number, rank: number, dims: Float64Array): void;
  where(cond: Float32Array, a: Float32Array, b: Float32Array, out: Float32Array, n: number): void;
  reduce(op: number, x: Float32Array, outer: number, dim: number, inner: number, out: Float32Array): void;
  cumsum(x: Float32Array, outer: number, dim: number, inner: number, out: Float32Array, reverse: boolean): void;
  softmax(x: Float32Array, y: Float32Array, rows: number, cols: number, log: boolean): void;
  softmaxBackward(y: Float32Array, gy: Float32Array, gx: Float32Array, rows: number, cols: number, log: boolean): void;
  crossEntropy(logits: Float32Array, targets: Int32Array, rows: number, cols: number, ignoreIndex: number, smoothing: number, loss: Float32Array, lse: Float32Array): void;
  crossEntropyBackward(logits: Float32Array, targets: Int32Array, lse: Float32Array, gLoss: Float32Array, rows: number, cols: number, ignoreIndex: number, smoothing: number, gLogits: Float32Array): void;
  layerNorm(x: Float32Array, w: Float32Array | null, b: Float32Array | null, rows: number, cols: number, eps: number, y: Float32Array, mean: Float32Array, rstd: Float32Array): void;
  layerNormBackward(x: Float32Array, w: Float32Array | null, mean: Float32Array, rstd: Float32Array, gy: Float32Array, rows: number, cols: number, gx: Float32Array, gw: Float32Array | null, gb: Float32Array | null): void;
  rmsNorm(x: Float32Array, w: Float32Array | null, rows: number, cols: number, eps: number, y: Float32Array, rstd: Float32Array): void;
  rmsNormBackward(x: Float32Array, w: Float32Array | null, rstd: Float32Array, gy: Float32Array, rows: number, cols: number, gx: Float32Array, gw: Float32Array | null): void;
  indexSelect(x: Float32Array, outer: number, dimIn: number, inner: number, idx: Int32Array, nIdx: number, out: Float32Array): void;
  indexAdd(gOut: Float32Array, outer: number, dimIn: number, inner: number, idx: Int32Array, nIdx: number, gx: Float32Array): void;
  adamw(param: Float32Array, grad: Float32Array, m: Float32Array, v: Float32Array, n: number,
    lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, bc1: number, bc2: number): void;

  // FlashAttention (native/napi/flash.cc; dims: see there).
  flashForward(q: Float32Array, k: Float32Array, v: Float32Array, o: Float32Array, lse: Float32Array,
    dims: Float64Array, cuSeqlens: Int32Array | null, table: Uint8Array | null): void;
  flashBackward(q: Float32Array, k: Float32Array, v: Float32Array, o: Float32Array, lse: Float32Array,
    dO: Float32Array, dq: Float32Array, dk: Float32Array, dv: Float32Array,
    dims: Float64Array, cuSeqlens: Int32Array | null, table: Uint8Array | null): void;

  // im2col / col2im (native/napi/conv.cc; dims = [n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow]).
  im2col(x: Float32Array, col: Float32Array, dims: Float64Array): void;
  col2im(col: Float32Array, x: Float32Array, dims: Float64Array): void;

  // Selective scan (native/napi/ssm.cc; dims = [b, d, n, L, chunk]).
  selectiveScan(u: Float32Array, delta: Float32Array, A: Float32Array, B: Float32Array, C: Float32Array, D: Float32Array,
    y: Float32Array, ck: Float64Array, last: Float64Array, h0: Float64Array | null, dims: Float64Array): void;
  selectiveScanBackward(u: Float32Array, delta: Float32Array, A: Float32Array, B: Float32Array, C: Float32Array, D: Float32Array,
    gy: Float32Array, ck: Float64Array, gu: Float32Array, gdelta: Float32Array, gA: Float32Array, gB: Float32Array, gC: Float32Array,
    gD: Float32Array, dims: Float64Array): void;
}

function load(): { addon: NativeAddon | null; reason: string } {
  if (process.env.TSFORMER_NATIVE === "0") return { addon: null, reason: "disabled by TSFORMER_NATIVE=0" };
  let file: string;
  try {
    file = join(packageRoot(), "build", "Release", "tsformer_native.node");
  } catch (e) {
    return { addon: null, reason: (e as Error).message };
  }
  if (!existsSync(file)) return { addon: null, reason: `${file} is missing (run npm ci, or node scripts/build-native.mjs)` };
  let addon: NativeAddon;
  try {
    addon = createRequire(import.meta.url)(file) as NativeAddon;
  } catch (e) {
    return { addon: null, reason: `${file} failed to load: ${(e as Error).message}` };
  }
  const missing = missingOps(addon);
  if (missing) return { addon: null, reason: `${file} is out of date (it lacks ${missing}): rebuild it with node scripts/build-native.mjs` };
  return { addon, reason: "" };
}

/** The first op of the kernel table (kernels.ts) that the addon does not have, e.g. "unary op 'sin'"; "" if none. */
function missingOps(addon: NativeAddon): string {
  if (typeof addon.opNames !== "function") return "opNames()";
  const have = addon.opNames();
  const want = { unary: Object.keys(UNARY_OPS), binary: BINARY_OPS, reduce: REDUCE_OPS };
  for (const kind of ["unary", "binary", "reduce"] as const) {
    for (const op of want[kind]) if (!have[kind].includes(op)) return `${kind} op '${op}'`;
  }
  return "";
}

const loaded = load();
/** The addon, or null when it cannot be loaded. */
export const native: NativeAddon | null = loaded.addon;
/** Why the addon is null ("" when loaded). */
export const nativeLoadError: string = loaded.reason;

function need(): NativeAddon {
  if (!native) throw new Error(`tsformer native backend unavailable: ${nativeLoadError}`);
  return native;
}

/** CPU features the native kernels can use, e.g. ["avx512f", "avx512bf16", "avx2", "fma"]; [] if no addon. */
export function nativeCpuFeatures(): string[] {
  return native ? native.cpuFeatures() : [];
}

/** Sets the size of the native thread pool (default TSFORMER_THREADS, else hardware threads). */
export function setNativeThreads(n: number): number {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`setNativeThreads: expected a positive integer, got ${n}`);
  return need().setThreads(n);
}

export function getNativeThreads(): number {
  return native ? native.getThreads() : 1;
}
