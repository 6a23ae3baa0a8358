// FlashAttention as a differentiable op (Dao et al. 2022; FlashAttention-2, Dao 2023): the same result
// as ops.attention with the same options, computed by the tiled online-softmax kernels. It saves only
// q, k, v, the output O and the row logsumexp L for backward: O(N) memory instead of the N x N scores.

import type { FlashArgs, FloatArray } from "../backend/backend.js";
import { backend } from "../backend/registry.js";
import { record } from "../tensor/autograd.js";
import { Tensor } from "../tensor/tensor.js";
import { attentionMaskArgs, attentionShapes, type AttentionOptions } from "./attention.js";
import { commonFloat, floatData, wrap } from "./util.js";

export type FlashAttentionOptions = AttentionOptions;

/** q [B, H, Tq, d]; k, v [B, Hkv, S, d] with Hkv dividing H -> [B, H, Tq, d]; options as ops.attention. */
export function flashAttention(q: Tensor, k: Tensor, v: Tensor, opts: FlashAttentionOptions = {}): Tensor {
  const dtype = commonFloat("flashAttention", q, k, v);
  const [B, H, Hkv, Tq, S, d] = attentionShapes("flashAttention", q, k, v);
  const qd = floatData(q, "flashAttention"), kd = floatData(k, "flashAttention"), vd = floatData(v, "flashAttention");
  // the kernels overwrite every element of their outputs (FlashArgs; tested with dirty buffers)
  const out = Tensor.empty(q.shape, dtype), lse = Tensor.empty([B, H, Tq], dtype);
  const args: FlashArgs = {
    B, H, Hkv, Tq, S, d, q: qd, k: kd, v: vd, scale: opts.scale ?? 1 / Math.sqrt(d),
    ...attentionMaskArgs(opts), o: out.data as FloatArray, lse: lse.data as FloatArray,
  };
  backend().flashForward(args);
  // Saved: the contiguous q, k, v the kernel read (the inputs themselves when already contiguous), O, L.
  const saved = [wrap(qd, q.shape, dtype), wrap(kd, k.shape, dtype), wrap(vd, v.shape, dtype), out, lse];
  return record(out, "flash_attention", [q, k, v], (g) => {
    const gq = Tensor.empty(q.shape, dtype), gk = Tensor.empty(k.shape, dtype), gv = Tensor.empty(v.shape, dtype);
    backend().flashBackward({
      ...args, dO: floatData(g, "flashAttention"),
      dq: gq.data as FloatArray, dk: gk.data as FloatArray, dv: gv.data as FloatArray,
    });
    return [gq, gk, gv];
  }, saved);
}
