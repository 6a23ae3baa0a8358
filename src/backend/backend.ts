// The kernel interface. A kernel knows nothing of tensors or autograd: typed arrays in, typed arrays
// out, sizes and flags. Every kernel has a pure-TypeScript reference in backend/js; a native backend may
// replace any of them and must agree with it (the op test suite runs against every backend). Every
// kernel is described once in the kernel table (kernels.ts).

/** Float storage a kernel computes on. float64 is for gradcheck; float32 is the working dtype. */
export type FloatArray = Float32Array | Float64Array;

import type { BinaryOp, ReduceOp, UnaryOp, UnaryParams } from "./op-table.js";
import type { AttentionMaskArgs } from "./mask.js";

// The op names are op-table.ts's; the mask rules are mask.ts.
export type { BinaryOp, ReduceOp, UnaryOp, UnaryParams } from "./op-table.js";
export type { AttentionMaskArgs, BlockMask } from "./mask.js";

/**
 * Batched, strided GEMM: for each batch i, C_i = alpha * op(A_i) @ op(B_i) + beta * C_i, with
 * op(X) = X or X^T (row-major storage; lda/ldb/ldc are row strides of the stored matrices, so a
 * transposed operand is read in place, never copied). A_i starts at aOff + i * strideA, etc.
 * With a bias (batch 1 only), bias[biasOff + j] is added to column j of every row of C, after the
 * beta term: the Linear bias as a write-back epilogue instead of a pass that broadcasts it into C.
 */
export interface GemmArgs<T extends FloatArray = FloatArray> {
  batch: number; m: number; n: number; k: number;
  a: T; aOff: number; lda: number; strideA: number; transA: boolean;
  b: T; bOff: number; ldb: number; strideB: number; transB: boolean;
  c: T; cOff: number; ldc: number; strideC: number;
  alpha: number; beta: number;
  bias?: T | null; biasOff?: number;
}

/**
 * G products over one A cut at row offsets (tokens sorted by expert: an MoE layer's experts in one call).
 * rows: C[o_g:o_g+1] = A[o_g:o_g+1] op(B_g) with A [*, k], bs[g] [n, k] (transB) or [k, n], C [*, n];
 * k: cs[g] [m, n] = A[o_g:o_g+1]^T B[o_g:o_g+1] with A [*, m], B [*, n]. Row strides lda, ldb, ldc.
 */
export interface GroupedGemmArgs<T extends FloatArray = FloatArray> {
  mode: "rows" | "k";
  offsets: Int32Array;
  m: number; n: number; k: number;
  a: T; lda: number;
  bs?: T[]; b?: T; ldb: number; transB: boolean;
  c?: T; cs?: T[]; ldc: number;
}

/**
 * The experts of a mixture-of-experts layer in inference, fused: for every slot s (sorted by expert, expert
 * e at offsets[e] .. offsets[e + 1]) y[tokens[s]] += gates[s] * FFN_e(x[tokens[s]]), where
 * FFN_e(v) = W2_e (act(W1_e v) [* W3_e v]) with W1_e, W3_e [f, d] and W2_e [d, f] (w3 null: not gated).
 * x and y are [rows, d]; y is accumulated into.
 */
export interface MoeFfnArgs<T extends FloatArray = FloatArray> {
  x: T; y: T; d: number; f: number;
  tokens: Int32Array; offsets: Int32Array; gates: T;
  w1: T[]; w3: T[] | null; w2: T[];
  act: UnaryOp;
}

/** A GEMM on bf16 operands (raw bf16 bits) with fp32 accumulation and an fp32 C (autocast's products). */
export interface GemmBf16Args extends Omit<GemmArgs<Float32Array>, "a" | "b"> { a: Uint16Array; b: Uint16Array }

/** A stored inference weight format (quantizeForInference): fp32 products stay the plain gemm. */
export type WeightFormat = "int8" | "bf16";

/**
 * y [m, n] = x [m, k] W^T (+ bias), rows contiguous from xOff / yOff, with W [n, k] stored for
 * inference: int8 w with per-output-row scales (W[j, p] = scales[j] * w[j * k + p], symmetric), or bf16
 * bits in w (scales null); fp32 accumulation, W read as stored (never widened to an fp32 copy).
 */
export interface QuantGemmArgs<T extends FloatArray = FloatArray> {
  format: WeightFormat; m: number; n: number; k: number;
  x: T; xOff: number;
  w: Int8Array | Uint16Array; scales: Float32Array | null;
  y: T; yOff: number;
  bias?: T | null; biasOff?: number;
}

/** One AdamW step in place (Loshchilov & Hutter 2019, Alg. 2: decoupled decay). bc1/bc2 = 1 - beta^t. */
export interface AdamWArgs {
  param: Float32Array | Float64Array; grad: FloatArray; m: FloatArray; v: FloatArray;
  lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; bc1: number; bc2: number;
}

/**
 * FlashAttention forward (Dao et al. 2022 Alg. 1; FlashAttention-2 Alg. 1), never materializing the
 * Tq x S scores: q [B, H, Tq, d], k and v [B, Hkv, S, d] contiguous, Hkv dividing H (query head h reads
 * kv head floor(h / (H / Hkv))). Writes o [B, H, Tq, d] = softmax(scale q k^T + mask) v and
 * lse [B, H, Tq] = the row logsumexp of the masked scaled scores (saved for the backward).
 */
export interface FlashArgs<T extends FloatArray = FloatArray> extends AttentionMaskArgs {
  B: number; H: number; Hkv: number; Tq: number; S: number; d: number;
  q: T; k: T; v: T;
  /** Forward only: rows from one (b, kv head) of k and v to the next, >= S (default S): a KV cache's buffer read in place. */
  kvRows?: number;
  scale: number;
  o: T; lse: T;
}

/**
 * FlashAttention-2 backward (Alg. 2), recomputing the probabilities tile by tile from lse: reads q, k,
 * v, o, lse (forward outputs) and dO [B, H, Tq, d]; overwrites dq [B, H, Tq, d] and dk, dv
 * [B, Hkv, S, d] (a kv head's gradients sum over its query heads).
 */
export interface FlashBackwardArgs<T extends FloatArray = FloatArray> extends FlashArgs<T> {
  dO: T; dq: T; dk: T; dv: T;
  /**
   * Under autocast: float32 accumulation only (the native kernel skips the double products that keep
   * the fp32 path within 1e-5 of float64); a backend may always compute more precisely (the JS one does).
   */
  lowPrecision?: boolean;
}

/**
 * im2col geometry (Chellapilla et al. 2006; Caffe's and PyTorch's layout): n images x [c, h, w] <->
 * columns [n, c * kh * kw, oh * ow], row (ci, ki, kj) and column (oy, ox) holding
 * x[ci, oy * sh - ph + ki * dh, ox * sw - pw + kj * dw], zero outside the image.
 */
export interface Im2colArgs<T extends FloatArray = FloatArray> {
  x: T; col: T;
  n: number; c: number; h: number; w: number; kh: number; kw: number;
  sh: number; sw: number; ph: number; pw: number; dh: number; dw: number; oh: number; ow: number;
}

/**
 * Selective scan (Mamba, Gu & Dao 2023, Alg. 2) over b x d channels of length L, state size n:
 * h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t, y_t = C_t . h_t + D u_t, from h0 (null: zeros).
 * u, delta, y [b, d, L]; A [d, n]; B, C [b, n, L]; D [d]. Writes y, the state before every chunk of
 * `chunk` steps to ck [b, d, ceil(L / chunk), n] and the last state to last [b, d, n] (float64 whatever
 * the dtype: the backward's restart points).
 */
export interface ScanArgs<T extends FloatArray = FloatArray> {
  b: number; d: number; n: number; L: number; chunk: number;
  u: T; delta: T; A: T; B: T; C: T; D: T;
  h0: Float64Array | null;
  y: T; ck: Float64Array; last: Float64Array;
}

/** The selective scan's backward: reads gy [b, d, L] and ck; overwrites gu, gdelta, gA, gB, gC, gD (the inputs' shapes). */
export interface ScanBackwardArgs<T extends FloatArray = FloatArray> extends Omit<ScanArgs<T>, "h0" | "y" | "last"> {
  gy: T; gu: T; gdelta: T; gA: T; gB: T; gC: T; gD: T;
}

export interface Backend {
  readonly name: string;
  /** Elementwise y = f(x) over n contiguous values. */
  unary(op: UnaryOp, x: FloatArray, y: FloatArray, n: number, p: UnaryParams): void;
  /** gx = gy * f'(x) (y = f(x) is passed for ops whose derivative is cheaper from the output). */
  unaryBackward(op: UnaryOp, x: FloatArray, y: FloatArray, gy: FloatArray, gx: FloatArray, n: number, p: UnaryParams): void;
  /**
   * out[idx] = a[idx . aStrides + aOff] (op) b[idx . bStrides + bOff] over the contiguous output shape.
   * Broadcast dims have stride 0.
   */
  binary(op: BinaryOp, a: FloatArray, aOff: number, aStrides: number[], b: FloatArray, bOff: number, bStrides: number[], out: FloatArray, shape: number[]): void;
  /** Reduce the middle axis of a contiguous [outer, dim, inner] array into [outer, inner]. */
  reduce(op: ReduceOp, x: FloatArray, outer: number, dim: number, inner: number, out: FloatArray): void;
  /** Copy a strided view into a contiguous or strided destination (shape shared). */
  stridedCopy(src: ArrayLike<number> & { [i: number]: number }, srcOff: number, srcStrides: number[], dst: { [i: number]: number }, dstOff: number, dstStrides: number[], shape: number[]): void;
  gemm(args: GemmArgs): void;
  /** Grouped GEMM (see GroupedGemmArgs). */
  gemmGrouped(args: GroupedGemmArgs): void;
  /** An MoE layer's expert FFNs in inference, in one call (see MoeFfnArgs). */
  moeFfn(args: MoeFfnArgs): void;
  /** gemm on bf16 operands, fp32 accumulation and output (vdpbf16ps where the CPU has it). */
  gemmBf16(args: GemmBf16Args): void;
  /** x W^T with W int8 + per-row scales or bf16 (see QuantGemmArgs). */
  gemmQuant(args: QuantGemmArgs): void;
  /** float32 -> bf16 bits of the first n values, round to nearest even (NaN stays NaN). */
  toBf16(src: Float32Array, dst: Uint16Array, n: number): void;
  /** Row softmax (or log-softmax) of a contiguous [rows, cols] array. */
  softmax(x: FloatArray, y: FloatArray, rows: number, cols: number, log: boolean): void;
  /** Backward of softmax / log-softmax from the output y. */
  softmaxBackward(y: FloatArray, gy: FloatArray, gx: FloatArray, rows: number, cols: number, log: boolean): void;
  /**
   * Fused softmax + cross-entropy per row (label smoothing eps: target mixes one-hot and uniform).
   * Writes loss[r] (0 for ignored rows) and lse[r] (logsumexp) for the backward.
   */
  crossEntropy(logits: FloatArray, targets: Int32Array, rows: number, cols: number, ignoreIndex: number, smoothing: number, loss: FloatArray, lse: FloatArray): void;
  /** gLogits[r] = gLoss[r] * (softmax(logits[r]) - q[r]) where q is the smoothed target. */
  crossEntropyBackward(logits: FloatArray, targets: Int32Array, lse: FloatArray, gLoss: FloatArray, rows: number, cols: number, ignoreIndex: number, smoothing: number, gLogits: FloatArray): void;
  /** LayerNorm (Ba et al. 2016) over rows; weight/bias may be null. Saves mean and rstd. */
  layerNorm(x: FloatArray, w: FloatArray | null, b: FloatArray | null, rows: number, cols: number, eps: number, y: FloatArray, mean: FloatArray, rstd: FloatArray): void;
  layerNormBackward(x: FloatArray, w: FloatArray | null, mean: FloatArray, rstd: FloatArray, gy: FloatArray, rows: number, cols: number, gx: FloatArray, gw: FloatArray | null, gb: FloatArray | null): void;
  /** RMSNorm (Zhang & Sennrich 2019): y = x / sqrt(mean(x^2) + eps) * w. Saves rstd. */
  rmsNorm(x: FloatArray, w: FloatArray | null, rows: number, cols: number, eps: number, y: FloatArray, rstd: FloatArray): void;
  rmsNormBackward(x: FloatArray, w: FloatArray | null, rstd: FloatArray, gy: FloatArray, rows: number, cols: number, gx: FloatArray, gw: FloatArray | null): void;
  /** out[o, j, i] = x[o, idx[j], i] for a contiguous [outer, dimIn, inner] x (embedding: outer = 1). */
  indexSelect(x: FloatArray, outer: number, dimIn: number, inner: number, idx: Int32Array, nIdx: number, out: FloatArray): void;
  /** Scatter-add backward of indexSelect: gx[o, idx[j], i] += gOut[o, j, i]. */
  indexAdd(gOut: FloatArray, outer: number, dimIn: number, inner: number, idx: Int32Array, nIdx: number, gx: FloatArray): void;
  /** Inclusive prefix sum along the middle axis of [outer, dim, inner]; reverse = suffix sum. */
  cumsum(x: FloatArray, outer: number, dim: number, inner: number, out: FloatArray, reverse: boolean): void;
  /** out = cond ? a : b over n contiguous values. */
  where(cond: FloatArray, a: FloatArray, b: FloatArray, out: FloatArray, n: number): void;
  adamw(args: AdamWArgs, n: number): void;
  /** Tiled online-softmax attention; only tile-sized scratch (see FlashArgs). */
  flashForward(args: FlashArgs): void;
  flashBackward(args: FlashBackwardArgs): void;
  /** Chunked selective scan, forward (see ScanArgs) and backward (recomputing each chunk's states from ck). */
  selectiveScan(args: ScanArgs): void;
  selectiveScanBackward(args: ScanBackwardArgs): void;
  /** Writes args.col from args.x (see Im2colArgs). */
  im2col(args: Im2colArgs): void;
  /** Overwrites args.x with the adjoint of im2col applied to args.col (overlapping taps summed). */
  col2im(args: Im2colArgs): void;
}
