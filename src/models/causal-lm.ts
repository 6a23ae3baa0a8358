// The one interface of a causal language model, used by generate, eval/score and the trainer (and a
// future server): any family (Transformer, Mamba, MoE, a model with extra heads) plugs in by
// implementing it, with no special cases downstream.

import type { Module } from "../nn/module.js";
import type { DecodingState, SeqContext } from "../nn/seq-context.js";
import type { Tensor } from "../tensor/tensor.js";

export interface CausalLMOutput {
  /** [B, T, V] next-token logits. */
  logits: Tensor;
  /** [B, T, D] final hidden states (what extra heads such as Medusa or MTP read). */
  hidden?: Tensor;
}

export interface CausalLM extends Module {
  readonly config: { readonly vocabSize: number; readonly maxSeqLen: number };
  /** int32 ids [B, T]; ctx: positions, mask and decoding state (default causal from position 0). */
  forward(ids: Tensor, ctx?: SeqContext): CausalLMOutput;
  /** A fresh decoding state (KV caches / recurrent states) for up to `capacity` positions. */
  newState(capacity?: number): DecodingState;
}
