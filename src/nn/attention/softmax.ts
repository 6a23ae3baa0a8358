// Causal multi-head self-attention with GQA/MQA (nKvHeads <= nHeads), optional RoPE and a KV cache.
// The projections are shared by every exact variant; the core that turns q, k, v into the output is
// the only thing that differs ("softmax" materializes the scores, "flash" never does).

import * as ops from "../../ops/index.js";
import type { Tensor } from "../../tensor/tensor.js";
import { Linear } from "../layers.js";
import { Module } from "../module.js";
import { KVCache } from "./kv-cache.js";
import type { Attention, AttentionConfig, AttentionState } from "./types.js";

/** q [B, H, Tq, d]; k, v [B, Hkv, S, d] -> [B, H, Tq, d], causal with the query block ending at S. */
export type AttentionCore = (q: Tensor, k: Tensor, v: Tensor, scale: number) => Tensor;

export class SelfAttention extends Module implements Attention {
  readonly wq: Linear;
  readonly wk: Linear;
  readonly wv: Linear;
  readonly wo: Linear;
  readonly headDim: number;

  constructor(readonly cfg: AttentionConfig, private readonly core: AttentionCore = (q, k, v, scale) => ops.attention(q, k, v, { causal: true, scale })) {
    super();
    this.headDim = cfg.dModel / cfg.nHeads;
    const kvDim = cfg.nKvHeads * this.headDim;
    this.wq = this.child("wq", new Linear(cfg.dModel, cfg.dModel, cfg.bias));
    this.wk = this.child("wk", new Linear(cfg.dModel, kvDim, cfg.bias));
    this.wv = this.child("wv", new Linear(cfg.dModel, kvDim, cfg.bias));
    this.wo = this.child("wo", new Linear(cfg.dModel, cfg.dModel, cfg.bias));
  }

  newState(capacity: number): KVCache {
    return new KVCache(capacity);
  }

  forward(x: Tensor, start = 0, state?: AttentionState): Tensor {
    const [B, T] = x.shape;
    const { nHeads, nKvHeads, rope, ropeTheta, scale } = this.cfg;
    const d = this.headDim;
    let q = ops.reshape(this.wq.forward(x), [B, T, nHeads, d]);
    let k = ops.reshape(this.wk.forward(x), [B, T, nKvHeads, d]);
    const v = ops.reshape(this.wv.forward(x), [B, T, nKvHeads, d]);
    if (rope) {
      q = ops.rope(q, start, ropeTheta);
      k = ops.rope(k, start, ropeTheta);
    }
    let kh = ops.transpose(k, 1, 2), vh = ops.transpose(v, 1, 2);
    if (state) [kh, vh] = (state as KVCache).append(kh, vh);
    const o = this.core(ops.transpose(q, 1, 2), kh, vh, scale);
    return this.wo.forward(ops.reshape(ops.transpose(o, 1, 2), [B, T, nHeads * d]));
  }
}
