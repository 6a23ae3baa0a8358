// "flash": self-attention whose core is FlashAttention (Dao et al. 2022; FlashAttention-2):
// the same projections, GQA, RoPE and KV cache as "softmax", the same result, but the scores are never
// materialized and backward keeps only q, k, v, O and the row logsumexp (O(N) instead of O(N^2)).
// Decoding one token at a time has no T x T matrix to avoid (its scores are one row per head): there
// the materializing kernel, which reads the KV cache in place, is faster (measured at config A: 306 vs
// 206 tokens/s), so single-query steps use it, as PyTorch's SDPA also picks a kernel per input.

import * as ops from "../../ops/index.js";
import { SelfAttention } from "./softmax.js";
import type { AttentionConfig } from "./types.js";

export function flashSelfAttention(c: AttentionConfig): SelfAttention {
  return new SelfAttention(c, (q, k, v, o) => (q.shape[2] === 1 ? ops.attention(q, k, v, o) : ops.flashAttention(q, k, v, o)), "flash");
}
