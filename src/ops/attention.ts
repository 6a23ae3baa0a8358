// Scaled dot-product attention that materializes the scores (the reference "softmax" path):
// S = scale * Q K^T, mask, P = softmax(S), O = P V (Vaswani et al. 2017, eq. 1). The mask (causal,
// sliding window, varlen packing, block-sparse) is the one the flash kernels use (AttentionMask).
// GQA without copying K/V: the query heads of one KV group are consecutive, so Q viewed as
// [B, Hkv, group * Tq, d] multiplies its group's K in one batched GEMM.

import type { AttentionMaskArgs, BlockMask, FloatArray, GemmArgs } from "../backend/backend.js";
import { AttentionMask } from "../backend/mask.js";
import { backend } from "../backend/registry.js";
import { record } from "../tensor/autograd.js";
import { fmtShape } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import { commonFloat, floatData, wrap } from "./util.js";

export interface AttentionOptions {
  /** Query t sees keys j <= t + (S - Tq); default true. */
  causal?: boolean;
  /** Defaults to 1/sqrt(d). */
  scale?: number;
  /** Sliding window: key j visible only if j > i - window (i the query position); 0 = unlimited. */
  window?: number;
  /** Varlen packing: cumulative sequence lengths [0, l1, l1 + l2, ..., T] shared by every batch row. */
  cuSeqlens?: Int32Array | readonly number[];
  /** Block-sparse mask over (query block, key block) of positions. */
  blockMask?: BlockMask;
}

/** The kernel form of the mask options (see AttentionMaskArgs in backend/backend.ts). */
export function attentionMaskArgs(opts: AttentionOptions): AttentionMaskArgs {
  const cu = opts.cuSeqlens;
  return {
    causal: opts.causal ?? true,
    window: opts.window ?? 0,
    cuSeqlens: cu === undefined ? null : cu instanceof Int32Array ? cu : Int32Array.from(cu),
    blockMask: opts.blockMask ?? null,
  };
}

/** Checks q [B, H, Tq, d], k = v [B, Hkv, S, d] with Hkv dividing H; returns [B, H, Hkv, Tq, S, d]. */
export function attentionShapes(op: string, q: Tensor, k: Tensor, v: Tensor): [number, number, number, number, number, number] {
  if (q.ndim !== 4 || k.ndim !== 4 || v.ndim !== 4 || k.shape.some((s, i) => s !== v.shape[i]) || q.shape[0] !== k.shape[0] || q.shape[3] !== k.shape[3] || q.shape[1] % k.shape[1] !== 0) {
    throw new RangeError(`${op}: q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)} must be [B, H, T, d] with kv heads dividing H`);
  }
  return [q.shape[0], q.shape[1], k.shape[1], q.shape[2], k.shape[2], q.shape[3]];
}

/** Batched operand: block i of a batched product at data[off + i * stride]. */
interface Blocks { data: FloatArray; off: number; stride: number }
const dense = (data: FloatArray, stride: number): Blocks => ({ data, off: 0, stride });

/**
 * A [B, Hkv, S, d] key or value tensor as B*Hkv blocks of S contiguous rows: in place when its rows are
 * contiguous and the blocks evenly spaced (a KV-cache view narrowed along S), else a contiguous copy.
 * Decoding reads the whole cache once per token and layer: copying it first would double that.
 */
function kvBlocks(t: Tensor, op: string): Blocks {
  const [B, H, S, d] = t.shape, [s0, s1, s2, s3] = t.strides;
  const rows = (s3 === 1 || d === 1) && (s2 === d || S === 1);
  if (rows && (B === 1 || H === 1 || s0 === H * s1)) return { data: t.data as FloatArray, off: t.offset, stride: H === 1 ? s0 : s1 };
  return dense(floatData(t, op), S * d);
}

function bgemm(batch: number, m: number, n: number, k: number, a: Blocks, ta: boolean, b: Blocks, tb: boolean, c: FloatArray, alpha: number): void {
  const g: GemmArgs = {
    batch, m, n, k, a: a.data, aOff: a.off, lda: ta ? m : k, strideA: a.stride, transA: ta,
    b: b.data, bOff: b.off, ldb: tb ? k : n, strideB: b.stride, transB: tb, c, cOff: 0, ldc: n, strideC: m * n, alpha, beta: 0,
  };
  backend().gemm(g);
}

/** q [B, H, Tq, d]; k, v [B, Hkv, S, d] with Hkv dividing H; the mask options as in AttentionOptions. */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const dtype = commonFloat("attention", q, k, v);
  const [B, H, Hkv, Tq, S, d] = attentionShapes("attention", q, k, v);
  const group = H / Hkv, bh = B * Hkv, rows = group * Tq;
  const scale = opts.scale ?? 1 / Math.sqrt(d);
  const mask = new AttentionMask(attentionMaskArgs(opts), Tq, S);
  const qd = dense(floatData(q, "attention"), rows * d), kd = kvBlocks(k, "attention"), vd = kvBlocks(v, "attention");
  const p = Tensor.zeros([bh, rows, S], dtype);
  const pd = p.data as FloatArray, pb = dense(pd, rows * S);
  bgemm(bh, rows, S, d, qd, false, kd, true, pd, scale);
  // Rows with no visible key get P = 0 (output 0, like the flash kernel) instead of softmax's NaN.
  const empties: number[] = [];
  if (!mask.trivial) {
    for (let r = 0; r < bh * rows; r++) if (!mask.maskRow(r % Tq, pd, r * S, S)) empties.push(r);
  }
  backend().softmax(pd, pd, bh * rows, S, false);
  for (const r of empties) pd.fill(0, r * S, (r + 1) * S);
  const out = Tensor.zeros(q.shape, dtype);
  bgemm(bh, rows, d, S, pb, false, vd, false, out.data as FloatArray, 1);
  // Saved: the storages the backward's GEMMs read (q, k, v as blocks, possibly copies) and P.
  const saved = [qd.data, kd.data, vd.data].map((s) => wrap(s, [s.length], dtype));
  return record(out, "attention", [q, k, v], (g, { needsInputGrad: [nq, nk, nv] }) => {
    const gd = dense(floatData(g, "attention"), rows * d);
    const gq = nq ? Tensor.zeros(q.shape, dtype) : null, gk = nk ? Tensor.zeros(k.shape, dtype) : null, gv = nv ? Tensor.zeros(v.shape, dtype) : null;
    // dV = P^T dO; dP = dO V^T; dS = P * (dP - rowsum(dP * P)); dQ = scale dS K; dK = scale dS^T Q
    if (gv) bgemm(bh, S, d, rows, pb, true, gd, false, gv.data as FloatArray, 1);
    if (gq || gk) {
      const ds = Tensor.zeros([bh, rows, S], dtype).data as FloatArray, dsb = dense(ds, rows * S);
      bgemm(bh, rows, S, d, gd, false, vd, true, ds, 1);
      backend().softmaxBackward(pd, ds, ds, bh * rows, S, false);
      if (gq) bgemm(bh, rows, d, S, dsb, false, kd, false, gq.data as FloatArray, scale);
      if (gk) bgemm(bh, S, d, rows, dsb, true, qd, false, gk.data as FloatArray, scale);
    }
    return [gq, gk, gv];
  }, [...saved, p]);
}
