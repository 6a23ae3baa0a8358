// What prefix tuning and prompt tuning share: a CausalLM around a frozen TransformerLM that adds p
// virtual tokens in front of every sequence. The wrapper's own parameters are the method's only ones
// (the base is not a child: wrapper.stateDict() is the adapter, the base keeps its own names), its
// context is the base's minus p (generate slides its window on that), and train()/eval() reach the
// base too (its dropout).

import type { Tensor } from "../tensor/tensor.js";
import type { RandomGenerator } from "../tensor/rng.js";
import { Module } from "../nn/module.js";
import type { DecodingState, SeqContext } from "../nn/seq-context.js";
import type { CausalLM, CausalLMOutput, ForwardOptions } from "../models/causal-lm.js";
import type { TransformerLM } from "../models/transformer.js";

export abstract class VirtualTokenLM extends Module implements CausalLM {
  readonly config: { readonly vocabSize: number; readonly maxSeqLen: number };

  /** method: the function name errors report (addPrefixTuning, addPromptTuning). */
  protected constructor(readonly base: TransformerLM, readonly numVirtualTokens: number, method: string) {
    super();
    const p = numVirtualTokens, n = base.config.maxSeqLen;
    if (!Number.isSafeInteger(p) || p <= 0 || p >= n) throw new RangeError(`${method}: numVirtualTokens must be an integer in [1, ${n - 1}] (the context is ${n}), got ${p}`);
    this.config = { vocabSize: base.config.vocabSize, maxSeqLen: n - p };
  }

  /** The base's dropout generator (the trainer saves it in checkpoints). */
  get dropoutGenerator(): RandomGenerator {
    return this.base.dropoutGenerator;
  }

  override train(on = true): this {
    super.train(on);
    this.base.train(on);
    return this;
  }

  abstract forward(ids: Tensor, ctx?: SeqContext, o?: ForwardOptions): CausalLMOutput;
  abstract newState(capacity?: number): DecodingState;

  /** The virtual tokens as PEFT saves them ("prompt_embeddings" in adapter_model.safetensors): a detached copy. */
  abstract exportPromptEmbeddings(): Tensor;

  /** Loads what exportPromptEmbeddings gave (PEFT's load_prompt_embeddings). */
  abstract importPromptEmbeddings(t: Tensor): void;
}
