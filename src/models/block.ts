// A decoder block: attention + feed-forward with residuals, in four norm placements:
// pre (GPT-2 / Llama), post (Vaswani et al. 2017), sandwich (Ding et al. 2021, CogView sec. 2.4)
// and deepnorm (Wang et al. 2022: x_{l+1} = LN(alpha x_l + F(x_l)), alpha = (2N)^(1/4)).

import * as ops from "../ops/index.js";
import type { Tensor } from "../tensor/tensor.js";
import { Module } from "../nn/module.js";
import { Dropout, makeNorm, type Norm } from "../nn/layers.js";
import { makeFeedForward, type FeedForward } from "../nn/ffn/mlp.js";
import { makeAttention, type AttentionName } from "../nn/attention/registry.js";
import type { Attention, AttentionState } from "../nn/attention/types.js";
import type { ModelConfig } from "./config.js";
import type { Generator } from "../tensor/rng.js";

export class Block extends Module {
  readonly norm1: Norm;
  readonly norm2: Norm;
  readonly norm1Post: Norm | null = null;
  readonly norm2Post: Norm | null = null;
  readonly attn: Attention;
  readonly mlp: FeedForward;
  private readonly drop: Dropout;
  private readonly alpha: number;

  constructor(readonly cfg: ModelConfig, layer: number, dropoutGen: () => Generator) {
    super();
    const norm = () => makeNorm(cfg.norm, cfg.dModel, cfg.normEps, cfg.bias || cfg.norm === "layernorm");
    this.norm1 = this.child("norm1", norm());
    this.attn = this.child("attn", makeAttention(cfg.attention as AttentionName, {
      dModel: cfg.dModel, nHeads: cfg.nHeads, nKvHeads: cfg.nKvHeads ?? cfg.nHeads, bias: cfg.bias,
      rope: cfg.position === "rope", ropeTheta: cfg.ropeTheta,
      scale: cfg.init === "t5" ? 1 : 1 / Math.sqrt(cfg.dModel / cfg.nHeads),
      layer, nLayers: cfg.nLayers, maxSeqLen: cfg.maxSeqLen,
    }));
    if (cfg.normPlacement === "sandwich") this.norm1Post = this.child("norm1_post", norm());
    this.norm2 = this.child("norm2", norm());
    this.mlp = this.child("mlp", makeFeedForward(cfg.ffn, cfg.dModel, cfg.dFF, cfg.bias));
    if (cfg.normPlacement === "sandwich") this.norm2Post = this.child("norm2_post", norm());
    this.drop = this.child("drop", new Dropout(cfg.dropout, dropoutGen));
    this.alpha = cfg.normPlacement === "deepnorm" ? Math.pow(2 * cfg.nLayers, 0.25) : 1;
  }

  forward(x: Tensor, start = 0, cache?: AttentionState): Tensor {
    const attn = (h: Tensor) => this.drop.forward(this.attn.forward(h, start, cache));
    const mlp = (h: Tensor) => this.drop.forward(this.mlp.forward(h));
    switch (this.cfg.normPlacement) {
      case "pre":
        x = ops.add(x, attn(this.norm1.forward(x)));
        return ops.add(x, mlp(this.norm2.forward(x)));
      case "post":
        x = this.norm1.forward(ops.add(x, attn(x)));
        return this.norm2.forward(ops.add(x, mlp(x)));
      case "sandwich":
        x = ops.add(x, this.norm1Post!.forward(attn(this.norm1.forward(x))));
        return ops.add(x, this.norm2Post!.forward(mlp(this.norm2.forward(x))));
      case "deepnorm":
        x = this.norm1.forward(ops.add(ops.mul(x, this.alpha), attn(x)));
        return this.norm2.forward(ops.add(ops.mul(x, this.alpha), mlp(x)));
    }
  }
}
