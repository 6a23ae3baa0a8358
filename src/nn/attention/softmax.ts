// Causal multi-head self-attention with GQA/MQA (nKvHeads <= nHeads), optional RoPE and a KV cache.
// The projections are shared by every exact variant; the core that turns q, k, v into the output is
// the only thing that differs ("softmax" materializes the scores, "flash" never does).

import * as ops from "../../ops/index.js";
import type { Tensor } from "../../tensor/tensor.js";
import { HeadProjections } from "./projections.js";
import { KVCache } from "./kv-cache.js";
import type { AttentionConfig, AttentionState } from "./types.js";

/** q [B, H, Tq, d]; k, v [B, Hkv, S, d] -> [B, H, Tq, d], causal with the query block ending at S. */
export type AttentionCore = (q: Tensor, k: Tensor, v: Tensor, scale: number) => Tensor;

export class SelfAttention extends HeadProjections {
  constructor(cfg: AttentionConfig, private readonly core: AttentionCore = (q, k, v, scale) => ops.attention(q, k, v, { causal: true, scale })) {
    super(cfg);
  }

  newState(capacity: number): KVCache {
    return new KVCache(capacity);
  }

  forward(x: Tensor, start = 0, state?: AttentionState): Tensor {
    const [B, T] = x.shape;
    const [q, k, v] = this.projectHeads(x, start);
    let kh = ops.transpose(k, 1, 2), vh = ops.transpose(v, 1, 2);
    if (state) [kh, vh] = (state as KVCache).append(kh, vh);
    const o = this.core(ops.transpose(q, 1, 2), kh, vh, this.cfg.scale);
    return this.wo.forward(ops.reshape(ops.transpose(o, 1, 2), [B, T, this.cfg.dModel]));
  }
}
