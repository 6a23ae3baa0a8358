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
import { checkpointSequential } from "../nn/checkpoint.js";
import { isGradEnabled } from "../tensor/autograd.js";
import { sinusoidalPositions } from "../nn/position/sinusoidal.js";
import { Block, blockParts } from "./block.js";
import { hasSelfInit } from "../nn/ssm/state.js";
import { hasFFN } from "./config.js";
import type { CausalLM, CausalLMOutput, ForwardOptions } from "./causal-lm.js";
import type { ModelConfig } from "./config.js";

export interface ModelOptions {
  /** Draws the initial weights. */
  generator?: RandomGenerator;
  /** Draws dropout masks (its state is saved in checkpoints for exact resume). */
  dropoutGenerator?: RandomGenerator;
}

export interface HiddenOptions {
  /** Embeddings [P, D] or [B, P, D] placed before the tokens' (see TransformerLM.hidden). */
  prefixEmbeds?: Tensor;
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

  /**
   * Every parameter that declared an init role, drawn in namedRoles() order (own parameters before
   * children's); then the SSM mixers, layer by layer, draw their reference's init whatever the scheme
   * (mamba_ssm's _init_weights: out_proj scaled by 1/sqrt(residuals per layer * nLayers)).
   */
  private initialize(g: RandomGenerator): void {
    const c = this.config;
    const ctx: InitContext = { nLayers: c.nLayers, dModel: c.dModel, dFF: c.dFF, headDim: c.dModel / c.nHeads, nHeads: c.nHeads };
    for (const [, p, role] of this.namedRoles()) initWeight(c.init, role, p, ctx, g);
    this.blocks.forEach((b, i) => {
      if (hasSelfInit(b.attn)) b.attn.initParameters(g, { nLayers: c.nLayers, residualsPerLayer: hasFFN(c, i) ? 2 : 1 });
    });
  }

  /** One decoding state per layer (KV cache or recurrent state) for up to `capacity` positions. */
  newState(capacity = this.config.maxSeqLen): LayerStates {
    const cap = this.posEmb ? Math.min(capacity, this.config.maxSeqLen) : capacity;
    return new LayerStates(this.blocks.map((b) => b.attn.newState(cap)));
  }

  /**
   * Final hidden states [B, T, D] for int32 ids [B, T] in the context ctx. prefixEmbeds ([P, D], shared
   * by the batch, or [B, P, D]) go in front of the tokens' embeddings: the sequence the context sees is
   * P + T long (positions, mask and state count them), the output covers the T tokens only (prompt
   * tuning's soft prompt, Lester et al. 2021 §2, as HF's inputs_embeds).
   */
  hidden(ids: Tensor, ctx = SeqContext.causal(), o: HiddenOptions = {}): Tensor {
    if (ids.dtype !== "int32" || ids.ndim !== 2) throw new TypeError(`TransformerLM: ids must be int32 [batch, time], got ${ids.dtype} ${fmtShape(ids.shape)}`);
    const [B, T] = ids.shape;
    const pre = o.prefixEmbeds ? this.checkPrefixEmbeds(o.prefixEmbeds, B) : null;
    const P = pre ? pre.shape[1] : 0;
    const end = ctx.check(B, P + T);
    // maxSeqLen is the training length: RoPE (any scheme) and no positions go past it, learned ones cannot
    if (end > this.config.maxSeqLen && this.posEmb) {
      throw new RangeError(`TransformerLM: ${end} positions exceed the ${this.config.maxSeqLen} learned positions (position "learned" cannot extrapolate past its training length)`);
    }
    let x = this.tokEmb.forward(ids);
    if (pre) x = ops.cat([pre, x], 1);
    if (this.posEmb) {
      const p = ctx.positions;
      const pos = p ? ops.tensor(p, { shape: p.length === P + T ? [P + T] : [B, P + T] }) : ops.arange(ctx.start, ctx.start + P + T, 1, { dtype: "int32" });
      x = ops.add(x, this.posEmb.forward(pos));
    } else if (this.config.position === "sinusoidal") {
      x = ops.add(x, sinusoidalPositions(ctx.positions ?? ctx.start, P + T, this.config.dModel, B));
    }
    x = this.drop.forward(x);
    const run = (b: Block, h: Tensor, i: number) => b.forward(h, ctx.layer(i));
    const ck = this.config.checkpointing ?? "none";
    if (ck !== "none" && this.training && isGradEnabled()) {
      // HF warns and drops the cache (use_cache=False); a state given while training is refused instead
      if (ctx.state || ctx.prefixes) throw new Error(`TransformerLM: checkpointing ${JSON.stringify(ck)} recomputes the blocks in backward and cannot train with ${ctx.state ? "a decoding state (KV cache)" : "key/value prefixes (prefix tuning)"} in the context; set checkpointing "none", or run in eval mode / under noGrad`);
      x = checkpointSequential(this.blocks, x, ck === "block" ? 1 : ck.every, run, { generators: [this.dropoutGenerator] });
    } else {
      this.blocks.forEach((b, i) => { x = run(b, x, i); });
    }
    if (P) x = ops.narrow(x, 1, P, T);
    return this.normF ? this.normF.forward(x) : x;
  }

  /** Logits [B, T, V] (or of o.logitRows only) and the final hidden states (of the T tokens, after any prefixEmbeds). */
  forward(ids: Tensor, ctx?: SeqContext, o: HiddenOptions & ForwardOptions = {}): CausalLMOutput {
    const hidden = this.hidden(ids, ctx, o);
    const rows = o.logitRows ? ops.indexSelect(hidden, 1, ops.tensor(o.logitRows)) : hidden;
    return { logits: ops.linear(rows, this.lmHead), hidden };
  }

  /** prefixEmbeds as [B, P, D] (a [P, D] one broadcast over the batch), or one clear error. */
  private checkPrefixEmbeds(e: Tensor, B: number): Tensor {
    const D = this.config.dModel, w = this.tokEmb.weight;
    const ok = (e.ndim === 2 || (e.ndim === 3 && e.shape[0] === B)) && e.shape[e.ndim - 1] === D && e.shape[e.ndim - 2] > 0 && e.dtype === w.dtype;
    if (!ok) throw new TypeError(`TransformerLM: prefixEmbeds must be ${w.dtype} [P, ${D}] or [${B}, P, ${D}] with P >= 1, got ${e.dtype} ${fmtShape(e.shape)}`);
    return e.ndim === 3 ? e : ops.expand(ops.unsqueeze(e, 0), [B, ...e.shape]);
  }
}
