// "flash": self-attention whose core is FlashAttention (Dao et al. 2022; FlashAttention-2):
// the same projections, GQA, RoPE and KV cache as "softmax", the same result, but the scores are never
// materialized and backward keeps only q, k, v, O and the row logsumexp (O(N) instead of O(N^2)).
// Decoding a few tokens at a time (one, or a speculative verify pass) has no T x T matrix to avoid (its
// scores are a few rows per head): there the materializing kernel, which reads the KV cache in place, is
// faster (the flash kernel's tiles pad the queries to 16 rows), so inference steps of up to
// SMALL_QUERIES queries use it, as PyTorch's SDPA also picks a kernel per input. Training keeps flash.

import * as ops from "../../ops/index.js";
import { needsGrad } from "../../tensor/autograd.js";
import { SelfAttention } from "./softmax.js";
import type { AttentionConfig } from "./types.js";

const SMALL_QUERIES = 8;

export function flashSelfAttention(c: AttentionConfig): SelfAttention {
  return new SelfAttention(c, (q, k, v, o) =>
    q.shape[2] === 1 || (q.shape[2] <= SMALL_QUERIES && !needsGrad([q, k, v])) ? ops.attention(q, k, v, o) : ops.flashAttention(q, k, v, o), "flash");
}
