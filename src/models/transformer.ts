// TransformerLM: one configurable decoder-only language model covering the GPT-2 layout (learned
// positions, LayerNorm, GELU, biases) and the Llama layout (RoPE, RMSNorm, SwiGLU, GQA, no biases).

import * as ops from "../ops/index.js";
import { Generator } from "../tensor/rng.js";
import { fmtShape } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";
import { Module } from "../nn/module.js";
import { Dropout, Embedding, makeNorm, type Norm } from "../nn/layers.js";
import { initWeight, type InitContext, type Role } from "../nn/init.js";
import type { AttentionState } from "../nn/attention/types.js";
import { Block } from "./block.js";
import type { ModelConfig } from "./config.js";

export interface ModelOptions {
  /** Draws the initial weights. */
  generator?: Generator;
  /** Draws dropout masks (its state is saved in checkpoints for exact resume). */
  dropoutGenerator?: Generator;
}

export class TransformerLM extends Module {
  readonly tokEmb: Embedding;
  readonly posEmb: Embedding | null;
  readonly blocks: Block[];
  readonly normF: Norm | null;
  readonly lmHead: Tensor;
  readonly dropoutGenerator: Generator;
  private readonly drop: Dropout;

  constructor(readonly config: ModelConfig, opts: ModelOptions = {}) {
    super();
    const c = config;
    this.dropoutGenerator = opts.dropoutGenerator ?? new Generator(0x5eed);
    const dg = () => this.dropoutGenerator;
    this.tokEmb = this.child("tok_emb", new Embedding(c.vocabSize, c.dModel));
    this.posEmb = c.position === "learned" ? this.child("pos_emb", new Embedding(c.maxSeqLen, c.dModel)) : null;
    this.drop = this.child("drop", new Dropout(c.dropout, dg));
    this.blocks = this.childList("blocks", Array.from({ length: c.nLayers }, (_, i) => new Block(c, i, dg)));
    const finalNorm = c.normPlacement === "pre" || c.normPlacement === "sandwich";
    this.normF = finalNorm ? this.child("norm_f", makeNorm(c.norm, c.dModel, c.normEps, c.bias || c.norm === "layernorm")) : null;
    this.lmHead = c.tieEmbeddings ? this.tokEmb.weight : this.param("lm_head.weight", ops.zeros([c.vocabSize, c.dModel]));
    this.initialize(opts.generator ?? new Generator(0));
  }

  private initialize(g: Generator): void {
    const c = this.config;
    const ctx: InitContext = { nLayers: c.nLayers, dModel: c.dModel, dFF: c.dFF, headDim: c.dModel / c.nHeads, nHeads: c.nHeads };
    const roles: [RegExp, Role][] = [
      [/^(tok_emb|pos_emb)\.weight$/, "embedding"], [/^lm_head\.weight$/, "head"],
      [/attn\.wq\.weight$/, "q"], [/attn\.wk\.weight$/, "k"], [/attn\.wv\.weight$/, "v"], [/attn\.wo\.weight$/, "o"],
      [/mlp\.(fc1|w1|w3)\.weight$/, "ffn_in"], [/mlp\.(fc2|w2)\.weight$/, "ffn_out"],
      // GAU (Hua et al. 2022): u and the shared z are input expansions like an FFN's first layer.
      [/attn\.(wu|wz)\.weight$/, "ffn_in"],
    ];
    for (const [name, p] of this.namedParameters()) {
      const role = roles.find(([re]) => re.test(name))?.[1];
      if (role) initWeight(c.init, role, p, ctx, g);
    }
  }

  /** One decoding state per layer (KV cache or recurrent state) for up to `capacity` positions. */
  newCache(capacity = this.config.maxSeqLen): AttentionState[] {
    return this.blocks.map((b) => b.attn.newState(Math.min(capacity, this.config.maxSeqLen)));
  }

  /** Final hidden states [B, T, D] for int32 ids [B, T] at positions start .. start + T - 1. */
  hidden(ids: Tensor, start = 0, caches?: AttentionState[]): Tensor {
    if (ids.dtype !== "int32" || ids.ndim !== 2) throw new TypeError(`TransformerLM: ids must be int32 [batch, time], got ${ids.dtype} ${fmtShape(ids.shape)}`);
    const T = ids.shape[1];
    if (start + T > this.config.maxSeqLen) {
      throw new RangeError(`TransformerLM: ${start + T} positions exceed the context length ${this.config.maxSeqLen}`);
    }
    let x = this.tokEmb.forward(ids);
    if (this.posEmb) {
      const pos = ops.arange(start, start + T, 1, { dtype: "int32" });
      x = ops.add(x, this.posEmb.forward(pos));
    }
    x = this.drop.forward(x);
    this.blocks.forEach((b, i) => { x = b.forward(x, start, caches?.[i]); });
    return this.normF ? this.normF.forward(x) : x;
  }

  /** Logits [B, T, V]. */
  forward(ids: Tensor, start = 0, caches?: AttentionState[]): Tensor {
    return ops.linear(this.hidden(ids, start, caches), this.lmHead);
  }
}
