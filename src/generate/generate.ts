// Autoregressive generation with a decoding state (KV cache or recurrent state): prefill the prompt
// once, then one token per step. Works for any CausalLM.

import { noGrad } from "../tensor/autograd.js";
import { keepReachable, tidy } from "../tensor/scope.js";
import { RandomGenerator } from "../tensor/rng.js";
import * as ops from "../ops/index.js";
import type { CausalLM } from "../models/causal-lm.js";
import { SeqContext, type DecodingState } from "../nn/seq-context.js";
import type { Tensor } from "../tensor/tensor.js";
import { OutputSink, type OutputOptions, type StoppedBy } from "./output.js";
import { sampleNext, validateSampling, type SamplingOptions } from "./sampling.js";

export interface GenerateOptions extends SamplingOptions, OutputOptions {
  maxNewTokens: number;
  seed?: number;
  /** Recompute the whole prefix each step instead of using the KV cache (for testing the cache). */
  noCache?: boolean;
  /** Context window in tokens (default: the model's training length maxSeqLen); past it the window slides. */
  context?: number;
}

export interface GenerateResult { ids: number[]; text?: string; stoppedBy: StoppedBy }

/** The rows of a [1, T, W] tensor (logits or hidden states) as views of one copy. */
export function rowsOf(t: Tensor): Float32Array[] {
  const [, T, W] = t.shape, a = t.toTypedArray() as Float32Array;
  return Array.from({ length: T }, (_, i) => a.subarray(i * W, (i + 1) * W));
}

/**
 * One decoding pass: fn without autograd in a tidy() scope, so that its temporaries go back to the
 * recycle pool instead of to the GC (at a few new tokens per pass the GC's pauses and fresh pages cost
 * as much as the weights' GEMVs), keeping what the decoding state holds and what fn returns. fn should
 * return plain arrays or copies, not views of storage it did not allocate.
 */
export function decodeStep<T>(state: DecodingState | readonly DecodingState[] | null | undefined, fn: () => T): T {
  return noGrad(() => tidy(() => {
    const out = fn();
    keepReachable(state);
    return out;
  }));
}

/**
 * The context window of a decoder (o.context, else the model's training length), after checking the
 * prompt against it; `who` names the decoder in the errors.
 */
export function checkPrompt(who: string, model: CausalLM, prompt: number[], context?: number): number {
  // Plain JS callers can pass a string, whose indexing would give characters, not ids.
  if (!Array.isArray(prompt)) throw new TypeError(`${who}: prompt must be an array of token ids, got ${typeof prompt === "string" ? "a string; encode it first (tokenizer.encode(text))" : typeof prompt}`);
  if (prompt.length === 0) throw new RangeError(`${who}: the prompt needs at least one token (e.g. BOS)`);
  const ctx = context ?? model.config.maxSeqLen;
  if (!Number.isInteger(ctx) || ctx < 1) throw new RangeError(`${who}: context must be a positive integer, got ${ctx}`);
  if (prompt.length > ctx) throw new RangeError(`${who}: the prompt has ${prompt.length} tokens, longer than the context of ${ctx}`);
  return ctx;
}

export function generate(model: CausalLM, prompt: number[], o: GenerateOptions): GenerateResult {
  validateSampling(o);
  const ctx = checkPrompt("generate", model, prompt, o.context);
  const g = new RandomGenerator(o.seed ?? 0);
  const sink = new OutputSink(o, prompt);
  const all = [...prompt];
  const wasTraining = model.training;
  model.eval();
  let state = o.noCache ? null : model.newState(ctx);
  let pending = prompt;
  let windowStart = 0;
  for (let step = 0; step < o.maxNewTokens; step++) {
    // A full context slides (as nanoGPT crops to the last block): keep the newest half and
    // re-prefill it, so the cost of the restart is amortized over ctx/2 new tokens.
    if (all.length - windowStart > ctx) {
      windowStart = all.length - Math.max(1, ctx >> 1);
      if (state) { state = model.newState(ctx); pending = all.slice(windowStart); }
    }
    const input = state ? pending : all.slice(windowStart);
    const seq = state ? SeqContext.decode(state) : SeqContext.causal();
    const last = decodeStep(state, () => {
      const { logits } = model.forward(ops.tensor(Int32Array.from(input), { shape: [1, input.length] }), seq);
      return logits.toTypedArray().slice((input.length - 1) * logits.shape[2]) as Float32Array;
    });
    const id = sampleNext(last, all, o, g);
    pending = [id];
    if (!sink.push(id)) break;
    all.push(id);
  }
  model.train(wasTraining);
  return sink.finish();
}
