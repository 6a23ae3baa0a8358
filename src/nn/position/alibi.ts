// ALiBi (Press et al. 2022, "Train Short, Test Long"): no position embedding; each head h adds the bias
// -m_h (i - j) to the score of query i and key j (causal), with head slopes the geometric sequence
// 2^(-8/n), 2^(-16/n), ... for n heads a power of two, and for other n the slopes of the nearest lower
// power of two followed by every other slope of the next one (the paper's reference get_slopes). The
// bias depends on i - j only, so it is defined at any length. Scores are materialized (no fused kernel
// takes a per-head linear bias here): memory O(Tq x S) per head.

import * as ops from "../../ops/index.js";
import type { Tensor } from "../../tensor/tensor.js";

export function alibiSlopes(n: number): number[] {
  const pow2 = (k: number) => Array.from({ length: k }, (_, i) => Math.pow(2, (-8 * (i + 1)) / k));
  const p = 2 ** Math.floor(Math.log2(n));
  if (p === n) return pow2(n);
  return [...pow2(p), ...pow2(2 * p).filter((_, i) => i % 2 === 0).slice(0, n - p)];
}

/**
 * Causal attention with ALiBi biases: q [B, H, Tq, d] (the last Tq of S positions), k, v [B, Hkv, S, d]
 * -> [B, H, Tq, d].
 */
export function alibiAttention(q: Tensor, k: Tensor, v: Tensor, scale: number): Tensor {
  const [B, H, Tq, d] = q.shape, [, Hkv, S] = k.shape;
  const slopes = alibiSlopes(H);
  const bias = new Float32Array(H * Tq * S);
  for (let h = 0; h < H; h++) {
    for (let t = 0; t < Tq; t++) {
      const i = t + S - Tq;
      for (let j = 0; j < S; j++) bias[(h * Tq + t) * S + j] = j > i ? -Infinity : -slopes[h] * (i - j);
    }
  }
  const rep = (x: Tensor) => (Hkv === H ? x : ops.reshape(ops.expand(ops.unsqueeze(x, 2), [B, Hkv, H / Hkv, S, d]), [B, H, S, d]));
  const scores = ops.add(ops.mul(ops.matmul(q, ops.transpose(rep(k), 2, 3)), scale), ops.tensor(bias, { shape: [H, Tq, S], dtype: q.dtype }));
  return ops.matmul(ops.softmax(scores, -1), rep(v));
}
