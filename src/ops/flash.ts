// FlashAttention as a differentiable op (Dao et al. 2022; FlashAttention-2, Dao 2023): the same result
// as ops.attention with the same options, computed by the tiled online-softmax kernels. It saves only
// q, k, v, the output O and the row logsumexp L for backward: O(N) memory instead of the N x N scores.

import type { FlashArgs, FloatArray } from "../backend/backend.js";
import { backend } from "../backend/registry.js";
import { needsGrad, record } from "../tensor/autograd.js";
import { Tensor } from "../tensor/tensor.js";
import { attentionMaskArgs, attentionShapes, type AttentionOptions } from "./attention.js";
import { autocastScope } from "./autocast.js";
import { commonFloat, floatData, wrap } from "./util.js";

export type FlashAttentionOptions = AttentionOptions;

/**
 * Rows per (b, head) when k and v are the first S positions of longer buffers of the same layout (a KV
 * cache's narrowed views: strides [Hkv R d, R d, d, 1], offset 0), so the kernel reads them in place
 * instead of copying the whole cache on every decoding step; null otherwise.
 */
function inPlaceRows(k: Tensor, v: Tensor): number | null {
  const [, Hkv, S, d] = k.shape, R = k.strides[1] / d;
  const fits = (t: Tensor) => t.offset === 0 && t.strides[3] === 1 && t.strides[2] === d && t.strides[1] === R * d && t.strides[0] === Hkv * R * d;
  return Number.isInteger(R) && R > S && fits(k) && fits(v) ? R : null;
}

/** q [B, H, Tq, d]; k, v [B, Hkv, S, d] with Hkv dividing H -> [B, H, Tq, d]; options as ops.attention. */
export function flashAttention(q: Tensor, k: Tensor, v: Tensor, opts: FlashAttentionOptions = {}): Tensor {
  const dtype = commonFloat("flashAttention", q, k, v);
  const [B, H, Hkv, Tq, S, d] = attentionShapes("flashAttention", q, k, v);
  const grad = needsGrad([q, k, v]);
  // under autocast the backward keeps float32 accumulation only (as torch's bf16 attention does)
  const lowPrecision = autocastScope() !== null;
  const rows = grad ? null : inPlaceRows(k, v);
  const qd = floatData(q, "flashAttention");
  const kd = rows ? (k.data as FloatArray) : floatData(k, "flashAttention"), vd = rows ? (v.data as FloatArray) : floatData(v, "flashAttention");
  // the kernels overwrite every element of their outputs (FlashArgs; tested with dirty buffers)
  const out = Tensor.empty(q.shape, dtype), lse = Tensor.empty([B, H, Tq], dtype);
  const args: FlashArgs = {
    B, H, Hkv, Tq, S, d, q: qd, k: kd, v: vd, scale: opts.scale ?? 1 / Math.sqrt(d), ...(rows ? { kvRows: rows } : {}),
    ...attentionMaskArgs(opts), o: out.data as FloatArray, lse: lse.data as FloatArray,
  };
  backend().flashForward(args);
  if (!grad) return out;
  // Saved: the contiguous q, k, v the kernel read (the inputs themselves when already contiguous), O, L.
  const saved = [wrap(qd, q.shape, dtype), wrap(kd, k.shape, dtype), wrap(vd, v.shape, dtype), out, lse];
  return record(out, "flash_attention", [q, k, v], (g) => {
    const gq = Tensor.empty(q.shape, dtype), gk = Tensor.empty(k.shape, dtype), gv = Tensor.empty(v.shape, dtype);
    backend().flashBackward({
      ...args, dO: floatData(g, "flashAttention"), lowPrecision,
      dq: gq.data as FloatArray, dk: gk.data as FloatArray, dv: gv.data as FloatArray,
    });
    return [gq, gk, gv];
  }, saved);
}
