// The q/k/v/o projections every attention variant with heads shares (parameter names attn.wq/wk/wv/wo):
// GQA-sized k and v, RoPE on q and k when the config asks for it.

import * as ops from "../../ops/index.js";
import type { Tensor } from "../../tensor/tensor.js";
import { Linear } from "../layers.js";
import { Module } from "../module.js";
import type { SeqContext } from "../seq-context.js";
import type { Attention, AttentionConfig, AttentionState } from "./types.js";

export abstract class HeadProjections extends Module implements Attention {
  readonly wq: Linear;
  readonly wk: Linear;
  readonly wv: Linear;
  readonly wo: Linear;
  readonly headDim: number;

  constructor(readonly cfg: AttentionConfig) {
    super();
    this.headDim = cfg.dModel / cfg.nHeads;
    const kvDim = cfg.nKvHeads * this.headDim;
    this.wq = this.child("wq", new Linear(cfg.dModel, cfg.dModel, cfg.qkvBias ?? cfg.bias, { role: "q" }));
    this.wk = this.child("wk", new Linear(cfg.dModel, kvDim, cfg.qkvBias ?? cfg.bias, { role: "k" }));
    this.wv = this.child("wv", new Linear(cfg.dModel, kvDim, cfg.qkvBias ?? cfg.bias, { role: "v" }));
    this.wo = this.child("wo", new Linear(cfg.dModel, cfg.dModel, cfg.bias, { role: "o" }));
  }

  abstract forward(x: Tensor, ctx?: SeqContext): Tensor;
  abstract newState(capacity: number): AttentionState;

  /**
   * x [B, T, D] at the positions of ctx -> q [B, T, H, d], k and v [B, T, Hkv, d], RoPE applied unless
   * rotate is false (the scheme then rotates in Rotary.attend).
   */
  protected projectHeads(x: Tensor, ctx: SeqContext, rotate = true): [Tensor, Tensor, Tensor] {
    const [B, T] = x.shape;
    const { nHeads, nKvHeads, rope } = this.cfg;
    const d = this.headDim;
    let q = ops.reshape(this.wq.forward(x), [B, T, nHeads, d]);
    let k = ops.reshape(this.wk.forward(x), [B, T, nKvHeads, d]);
    const v = ops.reshape(this.wv.forward(x), [B, T, nKvHeads, d]);
    if (rope && rotate) {
      const n = ctx.start + T;
      q = rope.rotate(q, ctx.ropePositions, n, true);
      k = rope.rotate(k, ctx.ropePositions, n);
    }
    return [q, k, v];
  }
}
