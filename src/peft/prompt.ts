// Prompt tuning (Lester et al. 2021, "The Power of Scale for Parameter-Efficient Prompt Tuning", §2):
// a trainable soft prompt P_e [p, D] prepended to the token embeddings of every sequence; the base
// model is frozen. The soft prompt enters where a sequence starts (a call without a decoding state, or
// the prefill of an empty one): the state then holds it, and later calls continue after it. The
// logits cover the real tokens only, so the loss and generate never see the prompt's positions.
// Init (§3.2): "random" draws U(-0.5, 0.5) as the paper; { textIds } copies the token embeddings of
// those ids, repeated or cut to p (PEFT's prompt_tuning_init TEXT, prompt_tuning/model.py).
// PEFT's parameter is prompt_encoder.embedding.weight, saved as "prompt_embeddings" [p, D].

import * as ops from "../ops/index.js";
import { noGrad } from "../tensor/autograd.js";
import { RandomGenerator } from "../tensor/rng.js";
import { fmtShape } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";
import { Embedding, skipInit } from "../nn/layers.js";
import { uniform_ } from "../nn/init-fns.js";
import { SeqContext, type DecodingState } from "../nn/seq-context.js";
import type { CausalLMOutput, ForwardOptions } from "../models/causal-lm.js";
import type { TransformerLM } from "../models/transformer.js";
import { VirtualTokenLM } from "./virtual-tokens.js";

export interface PromptTuningOptions {
  /** Soft prompt length p. */
  numVirtualTokens: number;
  /** "random" (default): U(-0.5, 0.5); { textIds }: the embeddings of these token ids (e.g. an encoded task description). */
  init?: "random" | { textIds: readonly number[] };
  /** Draws the random init (default RandomGenerator(0)). */
  generator?: RandomGenerator;
}

/** A CausalLM: the base (frozen by the caller) after a trained soft prompt. Parameter: embedding.weight [p, D]. */
export class PromptTuning extends VirtualTokenLM {
  readonly embedding: Embedding;

  constructor(base: TransformerLM, o: PromptTuningOptions) {
    super(base, o.numVirtualTokens, "addPromptTuning");
    const p = o.numVirtualTokens, c = base.config, init = o.init ?? "random";
    this.embedding = this.child("embedding", skipInit(() => new Embedding(p, c.dModel)));
    const w = this.embedding.weight;
    if (init === "random") {
      uniform_(w, -0.5, 0.5, { generator: o.generator ?? new RandomGenerator(0) });
    } else {
      const ids = init?.textIds;
      if (!Array.isArray(ids) || ids.length === 0 || ids.some((id) => !Number.isSafeInteger(id) || id < 0 || id >= c.vocabSize)) {
        throw new RangeError(`addPromptTuning: init must be "random" or { textIds: [...] } with at least one token id in [0, ${c.vocabSize - 1}], got ${JSON.stringify(init)}`);
      }
      const rows = Int32Array.from({ length: p }, (_, i) => ids[i % ids.length]);
      noGrad(() => this.loadStateDict({ "embedding.weight": ops.embedding(ops.tensor(rows), base.tokEmb.weight) }));
    }
  }

  /** Real tokens only: [B, T, V] logits (and hidden states) for ids [B, T]. */
  forward(ids: Tensor, ctx = SeqContext.causal(), o: ForwardOptions = {}): CausalLMOutput {
    if (ctx.positions || ctx.mask || ctx.cuSeqlens) throw new Error("prompt tuning: explicit positions, masks and packed documents are not supported (the soft prompt starts every sequence)");
    const s = ctx.state, p = this.numVirtualTokens;
    if (!s && ctx.start !== 0) throw new RangeError(`prompt tuning: a context without a decoding state must start at 0 (the soft prompt comes first), got start ${ctx.start}`);
    if (s && s.length > 0 && s.length < p) throw new RangeError(`prompt tuning: the decoding state holds ${s.length} positions, part of the ${p}-token soft prompt`);
    return s && s.length > 0 ? this.base.forward(ids, ctx, o) : this.base.forward(ids, ctx, { ...o, prefixEmbeds: this.embedding.weight });
  }

  /** The state holds the soft prompt too: capacity + p positions. */
  newState(capacity = this.config.maxSeqLen): DecodingState {
    return this.base.newState(capacity + this.numVirtualTokens);
  }

  /** The soft prompt [p, D], detached: PEFT's "prompt_embeddings". */
  exportPromptEmbeddings(): Tensor {
    return noGrad(() => this.embedding.weight.clone());
  }

  importPromptEmbeddings(t: Tensor): void {
    const w = this.embedding.weight;
    if (t.ndim !== 2 || t.shape[0] !== w.shape[0] || t.shape[1] !== w.shape[1]) throw new RangeError(`prompt tuning: prompt_embeddings must be ${fmtShape(w.shape)} ([numVirtualTokens, dModel]), got ${fmtShape(t.shape)}`);
    this.loadStateDict({ "embedding.weight": t });
  }
}

/** Prompt tuning of a TransformerLM (any attention variant): train and generate with the result. */
export function addPromptTuning(model: TransformerLM, o: PromptTuningOptions): PromptTuning {
  return new PromptTuning(model, o);
}
