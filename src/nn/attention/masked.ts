// Attention under an explicit [Tq, S] visibility matrix (SeqContext.masked: a speculative-decoding
// token tree, or any mask the structured kernels cannot express), materialized from differentiable ops:
// softmax(scale q k^T, hidden keys at -inf) v (Vaswani et al. 2017, eq. 1). GQA without copying K/V:
// the g query heads of a kv head are consecutive, so q viewed as [B, Hkv, g * Tq, d] meets its kv head.

import * as ops from "../../ops/index.js";
import type { Tensor } from "../../tensor/tensor.js";
import type { ExplicitMask } from "../seq-context.js";

/** q [B, H, Tq, d]; k, v [B, Hkv, S, d]; mask [Tq, S] (every query must see at least one key). */
export function maskedAttention(q: Tensor, k: Tensor, v: Tensor, mask: ExplicitMask, scale: number): Tensor {
  const [B, H, Tq, d] = q.shape, [, Hkv, S] = k.shape, g = H / Hkv;
  if (mask.rows !== Tq || mask.cols !== S) throw new RangeError(`attention mask: ${mask.rows} x ${mask.cols}, expected ${Tq} x ${S} (queries x cached + new keys)`);
  const hidden = new Int32Array(g * Tq * S);
  for (let i = 0; i < Tq; i++) {
    let seen = false;
    for (let j = 0; j < S; j++) {
      const h = mask.visible[i * S + j] ? 0 : 1;
      seen ||= h === 0;
      for (let r = 0; r < g; r++) hidden[(r * Tq + i) * S + j] = h;
    }
    if (!seen) throw new RangeError(`attention mask: query ${i} sees no key`);
  }
  const qg = ops.reshape(q, [B, Hkv, g * Tq, d]);
  const scores = ops.mul(ops.matmul(qg, ops.transpose(k, 2, 3)), scale);
  const p = ops.softmax(ops.maskedFill(scores, ops.tensor(hidden, { shape: [g * Tq, S] }), -Infinity), -1);
  return ops.reshape(ops.matmul(p, v), [B, H, Tq, d]);
}
