// A decoder block: attention + feed-forward with residuals, in four norm placements:
// pre (GPT-2 / Llama), post (Vaswani et al. 2017), sandwich (Ding et al. 2021, CogView sec. 2.4)
// and deepnorm (Wang et al. 2022: x_{l+1} = LN(alpha x_l + F(x_l)), alpha = (2N)^(1/4)).
// A Gated Attention Unit (nn/attention/gau.ts, FLASH) replaces attention + FFN: such a block has one
// sublayer (norm1 + the GAU, one residual: x + gau(norm1(x)) when pre-norm) and no norm2 / mlp.

import * as ops from "../ops/index.js";
import type { Tensor } from "../tensor/tensor.js";
import { Module } from "../nn/module.js";
import { Dropout, makeNorm, type Norm } from "../nn/layers.js";
import { makeFeedForward, type FeedForward } from "../nn/ffn/mlp.js";
import { makeAttention, type AttentionName } from "../nn/attention/registry.js";
import { GauLayer } from "../nn/attention/gau.js";
import type { Attention, AttentionState } from "../nn/attention/types.js";
import type { ModelConfig } from "./config.js";
import type { Generator } from "../tensor/rng.js";

export class Block extends Module {
  readonly norm1: Norm;
  /** null in a GAU block. */
  readonly norm2: Norm | null = null;
  readonly norm1Post: Norm | null = null;
  readonly norm2Post: Norm | null = null;
  readonly attn: Attention;
  /** null in a GAU block. */
  readonly mlp: FeedForward | null = null;
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
    if (!(this.attn instanceof GauLayer)) {
      this.norm2 = this.child("norm2", norm());
      this.mlp = this.child("mlp", makeFeedForward(cfg.ffn, cfg.dModel, cfg.dFF, cfg.bias));
      if (cfg.normPlacement === "sandwich") this.norm2Post = this.child("norm2_post", norm());
    }
    this.drop = this.child("drop", new Dropout(cfg.dropout, dropoutGen));
    this.alpha = cfg.normPlacement === "deepnorm" ? Math.pow(2 * cfg.nLayers, 0.25) : 1;
  }

  forward(x: Tensor, start = 0, cache?: AttentionState): Tensor {
    x = this.sublayer(x, (h) => this.attn.forward(h, start, cache), this.norm1, this.norm1Post);
    const mlp = this.mlp;
    return mlp ? this.sublayer(x, (h) => mlp.forward(h), this.norm2!, this.norm2Post) : x;
  }

  /** One residual sublayer f (dropout on its output) in the configured norm placement. */
  private sublayer(x: Tensor, f: (h: Tensor) => Tensor, norm: Norm, post: Norm | null): Tensor {
    const F = (h: Tensor) => this.drop.forward(f(h));
    switch (this.cfg.normPlacement) {
      case "pre": return ops.add(x, F(norm.forward(x)));
      case "post": return norm.forward(ops.add(x, F(x)));
      case "sandwich": return ops.add(x, post!.forward(F(norm.forward(x))));
      case "deepnorm": return norm.forward(ops.add(ops.mul(x, this.alpha), F(x)));
    }
  }
}
