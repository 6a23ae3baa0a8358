// The contract every attention variant implements, so a model config can switch between them
// (`attention: "<name>"`, see registry.ts).

import type { Tensor } from "../../tensor/tensor.js";
import type { Module } from "../module.js";

export interface AttentionConfig {
  dModel: number;
  nHeads: number;
  nKvHeads: number;
  bias: boolean;
  rope: boolean;
  ropeTheta: number;
  /** Attention logit scale; 1/sqrt(head size) unless the init compensates (T5). */
  scale: number;
  /** Index of this layer (some variants differ by depth, e.g. TransNormer's local lower layers). */
  layer: number;
  nLayers: number;
  maxSeqLen: number;
}

/** Decoding state of one layer: a KV cache for exact variants, a recurrent state for linear ones. */
export interface AttentionState {
  /** Positions consumed so far. */
  readonly length: number;
}

export interface Attention extends Module {
  /** x [B, T, D] at positions start .. start + T - 1; with a state, continues from it (and updates it). */
  forward(x: Tensor, start: number, state?: AttentionState): Tensor;
  /** A fresh decoding state for up to `capacity` positions. */
  newState(capacity: number): AttentionState;
}
