// The contract every attention variant implements, so a model config can switch between them
// (`attention: "<name>"`, see registry.ts).

import type { Tensor } from "../../tensor/tensor.js";
import type { Module } from "../module.js";
import type { Rotary } from "../position/rotary.js";
import type { DecodingState, SeqContext } from "../seq-context.js";

export interface AttentionConfig {
  dModel: number;
  nHeads: number;
  nKvHeads: number;
  bias: boolean;
  /** Biases on q, k and v (Qwen2 has them without an output bias); default: bias. */
  qkvBias?: boolean;
  /** Rotary positions on q and k (null: none; positions come from elsewhere or nowhere). */
  rope: Rotary | null;
  /** ALiBi biases on the scores (nn/position/alibi.ts) instead of rotations. */
  alibi?: boolean;
  /** Attention logit scale; 1/sqrt(head size) unless the init compensates (T5). */
  scale: number;
  /** Index of this layer (some variants differ by depth, e.g. TransNormer's local lower layers). */
  layer: number;
  nLayers: number;
  maxSeqLen: number;
}

/** Decoding state of one layer: a KV cache for exact variants, a recurrent state for linear ones. */
export type AttentionState = DecodingState;

/** A sequence mixer: tokens exchange information here (attention, and later SSMs). */
export interface Attention extends Module {
  /**
   * x [B, T, D] with the positions, mask and decoding state of ctx (default: causal from position 0,
   * no state); with a state, continues from it and updates it. Unsupported context features throw.
   */
  forward(x: Tensor, ctx?: SeqContext): Tensor;
  /** A fresh decoding state for up to `capacity` positions. */
  newState(capacity: number): AttentionState;
  /** True when the mixer contains its own feed-forward part (GAU): its block then has no FFN. */
  readonly includesFFN?: boolean;
}
