// The decoding state of an SSM mixer in a model (the SeqContext contract, nn/seq-context.ts): the
// mixer's recurrent tensors (Mamba: conv window + SSM state; S4D: the complex modes), allocated at the
// first forward (they need the batch size). Every position is folded into the state, so, like linear
// attention's, it rolls back only to its own length (RecurrentState).

import type { RandomGenerator } from "../../tensor/rng.js";
import { RecurrentState, SeqContext } from "../seq-context.js";

export class SSMState<S> extends RecurrentState {
  /** null until the first forward. */
  value: S | null = null;
}

/** A module that draws its own initial weights (its reference's init) when a model initializes. */
export interface SelfInit {
  /** nLayers: the model's depth, for the residual output scaling (mamba_ssm's _init_weights). */
  initParameters(g: RandomGenerator, o?: { nLayers?: number; residualsPerLayer?: number }): void;
}

export function hasSelfInit(m: object): m is SelfInit {
  return typeof (m as Partial<SelfInit>).initParameters === "function";
}

/**
 * The layer's state from ctx after refusing what a recurrence cannot do: a mask other than causal,
 * packed documents, key/value prefixes, explicit positions (an SSM reads no positions: the order is
 * the sequence's). Returns null without a state.
 */
export function ssmState<S>(name: string, ctx: SeqContext): SSMState<S> | null {
  ctx.require(name, {});
  const s = ctx.state;
  if (s && !(s instanceof SSMState)) throw new TypeError(`${name}: the decoding state is not an SSM state (give the model's newState())`);
  return s as SSMState<S> | null;
}
