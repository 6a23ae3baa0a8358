// Causal multi-head self-attention with GQA/MQA (nKvHeads <= nHeads), optional RoPE and a KV cache.
// The "softmax" variant materializes the attention scores (ops/attention.ts).

import * as ops from "../../ops/index.js";
import type { Tensor } from "../../tensor/tensor.js";
import { Linear } from "../layers.js";
import { Module } from "../module.js";
import type { KVCache } from "./kv-cache.js";

export interface AttentionConfig {
  dModel: number;
  nHeads: number;
  nKvHeads: number;
  bias: boolean;
  rope: boolean;
  ropeTheta: number;
  /** Attention logit scale; 1/sqrt(head size) unless the init compensates (T5). */
  scale: number;
}

export class SelfAttention extends Module {
  readonly wq: Linear;
  readonly wk: Linear;
  readonly wv: Linear;
  readonly wo: Linear;
  readonly headDim: number;

  constructor(readonly cfg: AttentionConfig) {
    super();
    this.headDim = cfg.dModel / cfg.nHeads;
    const kvDim = cfg.nKvHeads * this.headDim;
    this.wq = this.child("wq", new Linear(cfg.dModel, cfg.dModel, cfg.bias));
    this.wk = this.child("wk", new Linear(cfg.dModel, kvDim, cfg.bias));
    this.wv = this.child("wv", new Linear(cfg.dModel, kvDim, cfg.bias));
    this.wo = this.child("wo", new Linear(cfg.dModel, cfg.dModel, cfg.bias));
  }

  /** x [B, T, D] at positions start .. start + T - 1; with a cache, attends to everything cached. */
  forward(x: Tensor, start = 0, cache?: KVCache): Tensor {
    const [B, T] = x.shape;
    const { nHeads, nKvHeads, rope, ropeTheta, scale } = this.cfg;
    const d = this.headDim;
    let q = ops.reshape(this.wq.forward(x), [B, T, nHeads, d]);
    let k = ops.reshape(this.wk.forward(x), [B, T, nKvHeads, d]);
    const vv = ops.reshape(this.wv.forward(x), [B, T, nKvHeads, d]);
    if (rope) {
      q = ops.rope(q, start, ropeTheta);
      k = ops.rope(k, start, ropeTheta);
    }
    let kh = ops.transpose(k, 1, 2), vh = ops.transpose(vv, 1, 2);
    if (cache) [kh, vh] = cache.append(kh, vh);
    const o = ops.attention(ops.transpose(q, 1, 2), kh, vh, { causal: true, scale });
    return this.wo.forward(ops.reshape(ops.transpose(o, 1, 2), [B, T, nHeads * d]));
  }
}
