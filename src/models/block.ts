// A decoder block built from declared parts: a sequence mixer (attention, GAU, an SSM), an
// optional feed-forward part, norms and their placement:
// pre (GPT-2 / Llama), post (Vaswani et al. 2017), sandwich (Ding et al. 2021, CogView sec. 2.4)
// and deepnorm (Wang et al. 2022: x_{l+1} = LN(alpha x_l + F(x_l)), alpha = (2N)^(1/4)).
// A mixer that includes its own FFN (a Gated Attention Unit, nn/attention/gau.ts) gets no FFN part:
// such a block has one sublayer (norm1 + the mixer, one residual: x + gau(norm1(x)) when pre-norm).

import * as ops from "../ops/index.js";
import type { Tensor } from "../tensor/tensor.js";
import { Module } from "../nn/module.js";
import { Dropout, makeNorm, type Norm } from "../nn/layers.js";
import { makeFeedForward } from "../nn/ffn/mlp.js";
import { MoEFeedForward } from "../nn/moe/moe.js";
import { makeAttention, type AttentionName } from "../nn/attention/registry.js";
import type { Attention } from "../nn/attention/types.js";
import { SeqContext } from "../nn/seq-context.js";
import { Rotary } from "../nn/position/rotary.js";
import { hasFFN, mixerOf, type ModelConfig } from "./config.js";
import { Mamba } from "../nn/ssm/mamba.js";
import { S4DLayer } from "../nn/ssm/s4d-layer.js";
import type { RandomGenerator } from "../tensor/rng.js";

export type NormPlacement = ModelConfig["normPlacement"];

/** A position-wise part (FFN, MoE layer): [B, T, D] -> [B, T, D]. */
export interface FeedForwardPart extends Module { forward(x: Tensor): Tensor }

export interface BlockParts {
  mixer: Attention;
  /** null when the mixer includes its FFN. */
  ffn: FeedForwardPart | null;
  /** Makes one norm (called for each norm the placement needs). */
  norm: () => Norm;
  placement: NormPlacement;
  /** DeepNorm's residual scale alpha (1 otherwise). */
  alpha: number;
  dropout: Dropout;
}

// One Rotary per config, shared by its layers (their frequency tables are computed once).
const rotaries = new WeakMap<ModelConfig, Rotary>();

/** The rotary position scheme of a config (null unless position is "rope"). */
export function rotaryOf(cfg: ModelConfig): Rotary | null {
  if (cfg.position !== "rope") return null;
  let r = rotaries.get(cfg);
  if (!r) {
    r = new Rotary({ theta: cfg.ropeTheta, layout: cfg.ropeLayout, scaling: cfg.ropeScaling, rerope: cfg.rerope, logn: cfg.logn, trainLen: cfg.maxSeqLen });
    rotaries.set(cfg, r);
  }
  return r;
}

/** The parts of decoder layer `layer` of a TransformerLM config. */
export function blockParts(cfg: ModelConfig, layer: number, dropoutGen: () => RandomGenerator): BlockParts {
  const mixer = makeMixer(cfg, layer);
  return {
    mixer,
    ffn: mixer.includesFFN || !hasFFN(cfg, layer) ? null : feedForward(cfg, layer),
    norm: () => makeNorm(cfg.norm, cfg.dModel, cfg.normEps, cfg.bias || cfg.norm === "layernorm"),
    placement: cfg.normPlacement,
    alpha: cfg.normPlacement === "deepnorm" ? Math.pow(2 * cfg.nLayers, 0.25) : 1,
    dropout: new Dropout(cfg.dropout, dropoutGen),
  };
}

/**
 * The mixer of layer `layer`: the attention variant, or an SSM with the config's ssm options (its
 * weights left for the model's initialize(), which calls the SSM's own init: nn/ssm/state.ts SelfInit).
 */
function makeMixer(cfg: ModelConfig, layer: number): Attention {
  const s = cfg.ssm ?? {}, kind = mixerOf(cfg, layer);
  if (kind === "mamba") return new Mamba(cfg.dModel, { dState: s.dState, dConv: s.dConv, expand: s.expand, dtRank: s.dtRank, deferInit: true });
  if (kind === "s4d") return new S4DLayer(cfg.dModel, { dState: s.dState ?? 16, init: s.s4dInit, deferInit: true });
  return makeAttention(cfg.attention as AttentionName, {
    dModel: cfg.dModel, nHeads: cfg.nHeads, nKvHeads: cfg.nKvHeads ?? cfg.nHeads, bias: cfg.bias, qkvBias: cfg.qkvBias,
    rope: rotaryOf(cfg), alibi: cfg.position === "alibi",
    scale: cfg.init === "t5" ? 1 : 1 / Math.sqrt(cfg.dModel / cfg.nHeads),
    layer, nLayers: cfg.nLayers, maxSeqLen: cfg.maxSeqLen,
  });
}

/** The FFN part of layer `layer`: MoE in every moe.every-th layer when configured, dense otherwise. */
function feedForward(cfg: ModelConfig, layer: number): FeedForwardPart {
  const m = cfg.moe;
  if (!m || (layer + 1) % m.every !== 0) return makeFeedForward(cfg.ffn, cfg.dModel, cfg.dFF, cfg.bias);
  const { every: _, ...o } = m;
  return new MoEFeedForward({ ...o, dModel: cfg.dModel, dFF: cfg.dFF, ffn: cfg.ffn, bias: cfg.bias });
}

export class Block extends Module {
  readonly norm1: Norm;
  /** null without an FFN part. */
  readonly norm2: Norm | null = null;
  readonly norm1Post: Norm | null = null;
  readonly norm2Post: Norm | null = null;
  readonly attn: Attention;
  /** null when the mixer includes its FFN. */
  readonly mlp: FeedForwardPart | null = null;
  readonly placement: NormPlacement;
  private readonly drop: Dropout;
  private readonly alpha: number;

  // Registration order (norm1, attn, norm1_post, norm2, mlp, norm2_post, drop) is the parameter
  // order, which is the init's draw order: keep it.
  constructor(p: BlockParts) {
    super();
    this.placement = p.placement;
    this.norm1 = this.child("norm1", p.norm());
    this.attn = this.child("attn", p.mixer);
    if (p.placement === "sandwich") this.norm1Post = this.child("norm1_post", p.norm());
    if (p.ffn) {
      this.norm2 = this.child("norm2", p.norm());
      this.mlp = this.child("mlp", p.ffn);
      if (p.placement === "sandwich") this.norm2Post = this.child("norm2_post", p.norm());
    }
    this.drop = this.child("drop", p.dropout);
    this.alpha = p.alpha;
  }

  /** ctx: this layer's context (its own decoding state, see SeqContext.layer). */
  forward(x: Tensor, ctx = SeqContext.causal()): Tensor {
    x = this.sublayer(x, (h) => this.attn.forward(h, ctx), this.norm1, this.norm1Post);
    const mlp = this.mlp;
    return mlp ? this.sublayer(x, (h) => mlp.forward(h), this.norm2!, this.norm2Post) : x;
  }

  /** One residual sublayer f (dropout on its output) in the configured norm placement. */
  private sublayer(x: Tensor, f: (h: Tensor) => Tensor, norm: Norm, post: Norm | null): Tensor {
    const F = (h: Tensor) => this.drop.forward(f(h));
    switch (this.placement) {
      case "pre": return ops.add(x, F(norm.forward(x)));
      case "post": return norm.forward(ops.add(x, F(x)));
      case "sandwich": return ops.add(x, post!.forward(F(norm.forward(x))));
      case "deepnorm": return norm.forward(ops.add(ops.mul(x, this.alpha), F(x)));
    }
  }
}
