// TransformerLM: one configurable decoder-only language model covering the GPT-2 layout (learned
// positions, LayerNorm, GELU, biases) and the Llama layout (RoPE, RMSNorm, SwiGLU, GQA, no biases).

import * as ops from "../ops/index.js";
import { RandomGenerator } from "../tensor/rng.js";
import { fmtShape } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";
import { Module } from "../nn/module.js";
import { Dropout, Embedding, makeNorm, skipInit, type Norm } from "../nn/layers.js";
import { initWeight, type InitContext } from "../nn/init.js";
import { LayerStates, SeqContext } from "../nn/seq-context.js";
import { Block, blockParts } from "./block.js";
import type { CausalLM, CausalLMOutput } from "./causal-lm.js";
import type { ModelConfig } from "./config.js";

export interface ModelOptions {
  /** Draws the initial weights. */
  generator?: RandomGenerator;
  /** Draws dropout masks (its state is saved in checkpoints for exact resume). */
  dropoutGenerator?: RandomGenerator;
}

export class TransformerLM extends Module implements CausalLM {
  readonly tokEmb: Embedding;
  readonly posEmb: Embedding | null;
  readonly blocks: Block[];
  readonly normF: Norm | null;
  readonly lmHead: Tensor;
  readonly dropoutGenerator: RandomGenerator;
  private readonly drop: Dropout;

  constructor(readonly config: ModelConfig, opts: ModelOptions = {}) {
    super();
    const c = config;
    this.dropoutGenerator = opts.dropoutGenerator ?? new RandomGenerator(0x5eed);
    const dg = () => this.dropoutGenerator;
    // Built without the layers' default init: initialize() below draws every weight by its role.
    this.tokEmb = this.child("tok_emb", skipInit(() => new Embedding(c.vocabSize, c.dModel)));
    this.posEmb = c.position === "learned" ? this.child("pos_emb", skipInit(() => new Embedding(c.maxSeqLen, c.dModel))) : null;
    this.drop = this.child("drop", new Dropout(c.dropout, dg));
    this.blocks = this.childList("blocks", skipInit(() => Array.from({ length: c.nLayers }, (_, i) => new Block(blockParts(c, i, dg)))));
    const finalNorm = c.normPlacement === "pre" || c.normPlacement === "sandwich";
    this.normF = finalNorm ? this.child("norm_f", makeNorm(c.norm, c.dModel, c.normEps, c.bias || c.norm === "layernorm")) : null;
    this.lmHead = c.tieEmbeddings ? this.tokEmb.weight : this.param("lm_head.weight", ops.zeros([c.vocabSize, c.dModel]), "head");
    this.initialize(opts.generator ?? new RandomGenerator(0));
  }

  /** Every parameter that declared an init role, drawn in namedRoles() order (own parameters before children's). */
  private initialize(g: RandomGenerator): void {
    const c = this.config;
    const ctx: InitContext = { nLayers: c.nLayers, dModel: c.dModel, dFF: c.dFF, headDim: c.dModel / c.nHeads, nHeads: c.nHeads };
    for (const [, p, role] of this.namedRoles()) initWeight(c.init, role, p, ctx, g);
  }

  /** One decoding state per layer (KV cache or recurrent state) for up to `capacity` positions. */
  newState(capacity = this.config.maxSeqLen): LayerStates {
    return new LayerStates(this.blocks.map((b) => b.attn.newState(Math.min(capacity, this.config.maxSeqLen))));
  }

  /** Final hidden states [B, T, D] for int32 ids [B, T] in the context ctx. */
  hidden(ids: Tensor, ctx = SeqContext.causal()): Tensor {
    if (ids.dtype !== "int32" || ids.ndim !== 2) throw new TypeError(`TransformerLM: ids must be int32 [batch, time], got ${ids.dtype} ${fmtShape(ids.shape)}`);
    const [B, T] = ids.shape;
    const end = ctx.check(B, T);
    if (end > this.config.maxSeqLen) {
      throw new RangeError(`TransformerLM: ${end} positions exceed the context length ${this.config.maxSeqLen}`);
    }
    let x = this.tokEmb.forward(ids);
    if (this.posEmb) {
      const p = ctx.positions;
      const pos = p ? ops.tensor(p, { shape: p.length === T ? [T] : [B, T] }) : ops.arange(ctx.start, ctx.start + T, 1, { dtype: "int32" });
      x = ops.add(x, this.posEmb.forward(pos));
    }
    x = this.drop.forward(x);
    this.blocks.forEach((b, i) => { x = b.forward(x, ctx.layer(i)); });
    return this.normF ? this.normF.forward(x) : x;
  }

  /** Logits [B, T, V] and the final hidden states. */
  forward(ids: Tensor, ctx?: SeqContext): CausalLMOutput {
    const hidden = this.hidden(ids, ctx);
    return { logits: ops.linear(hidden, this.lmHead), hidden };
  }
}
