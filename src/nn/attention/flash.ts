// "flash": causal self-attention whose core is FlashAttention (Dao et al. 2022; FlashAttention-2):
// the same projections, GQA, RoPE and KV cache as "softmax", the same result, but the scores are never
// materialized and backward keeps only q, k, v, O and the row logsumexp (O(N) instead of O(N^2)).

import * as ops from "../../ops/index.js";
import { SelfAttention } from "./softmax.js";
import type { AttentionConfig } from "./types.js";

export function flashSelfAttention(c: AttentionConfig): SelfAttention {
  return new SelfAttention(c, (q, k, v, scale) => ops.flashAttention(q, k, v, { causal: true, scale }));
}
