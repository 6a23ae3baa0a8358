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

export interface ForwardOptions {
  /**
   * The time positions whose logits the caller reads (a prefill reads its last row only, a ragged
   * batch one row per sequence): a model may then return logits [B, logitRows.length, V] for those
   * rows alone, skipping the head's V x D work for the others, or still return all T rows (callers
   * check logits.shape[1]). hidden stays [B, T, D].
   */
  logitRows?: Int32Array;
}

export interface CausalLM extends Module {
  readonly config: { readonly vocabSize: number; readonly maxSeqLen: number };
  /** int32 ids [B, T]; ctx: positions, mask and decoding state (default causal from position 0). */
  forward(ids: Tensor, ctx?: SeqContext, o?: ForwardOptions): CausalLMOutput;
  /** A fresh decoding state (KV caches / recurrent states) for up to `capacity` positions. */
  newState(capacity?: number): DecodingState;
}
