// Autoregressive generation with a decoding state (KV cache or recurrent state): prefill the prompt
// once, then one token per step. Works for any CausalLM.

import { noGrad } from "../tensor/autograd.js";
import { RandomGenerator } from "../tensor/rng.js";
import * as ops from "../ops/index.js";
import type { CausalLM } from "../models/causal-lm.js";
import { SeqContext } from "../nn/seq-context.js";
import { decodeStream, type Tokenizer } from "../tokenizers/tokenizer.js";
import { sampleNext, validateSampling, type SamplingOptions } from "./sampling.js";

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  seed?: number;
  /** Stop when this token (or any of these, as HF's eos_token_id lists) is produced (not included in the output). */
  eosId?: number | number[];
  /** Stop when the decoded text contains any of these (the stop string is cut off). */
  stop?: string[];
  /** Streamed text pieces (needs a tokenizer). */
  onText?: (piece: string) => void;
  tokenizer?: Tokenizer;
  /** Recompute the whole prefix each step instead of using the KV cache (for testing the cache). */
  noCache?: boolean;
  /** Context window in tokens (default: the model's training length maxSeqLen); past it the window slides. */
  context?: number;
}

export interface GenerateResult { ids: number[]; text?: string; stoppedBy: "length" | "eos" | "stop" }

export function generate(model: CausalLM, prompt: number[], o: GenerateOptions): GenerateResult {
  validateSampling(o);
  // Plain JS callers can pass a string, whose indexing would give characters, not ids.
  if (!Array.isArray(prompt)) throw new TypeError(`generate: prompt must be an array of token ids, got ${typeof prompt === "string" ? "a string; encode it first (tokenizer.encode(text))" : typeof prompt}`);
  if (prompt.length === 0) throw new RangeError("generate: the prompt needs at least one token (e.g. BOS)");
  const ctx = o.context ?? model.config.maxSeqLen;
  if (!Number.isInteger(ctx) || ctx < 1) throw new RangeError(`generate: context must be a positive integer, got ${ctx}`);
  if (prompt.length > ctx) throw new RangeError(`generate: the prompt has ${prompt.length} tokens, longer than the context of ${ctx}`);
  const g = new RandomGenerator(o.seed ?? 0);
  const eos = new Set(o.eosId === undefined ? [] : [o.eosId].flat());
  const stream = o.tokenizer ? decodeStream(o.tokenizer, prompt) : null;
  const all = [...prompt];
  const out: number[] = [];
  let text = "";
  let stoppedBy = "length" as GenerateResult["stoppedBy"];
  const wasTraining = model.training;
  model.eval();
  noGrad(() => {
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
      const { logits } = model.forward(ops.tensor(Int32Array.from(input), { shape: [1, input.length] }), seq);
      const V = logits.shape[2];
      const last = logits.toTypedArray().slice((input.length - 1) * V) as Float32Array;
      const id = sampleNext(last, all, o, g);
      pending = [id];
      if (eos.has(id)) { stoppedBy = "eos"; break; }
      all.push(id);
      out.push(id);
      if (stream) {
        let piece = stream.push(id);
        text += piece;
        const hit = o.stop?.find((s) => text.includes(s));
        if (hit) {
          const cut = text.indexOf(hit);
          piece = piece.slice(0, Math.max(0, piece.length - (text.length - cut)));
          text = text.slice(0, cut);
          if (piece) o.onText?.(piece);
          stoppedBy = "stop";
          break;
        }
        if (piece) o.onText?.(piece);
      }
    }
  });
  if (stream && stoppedBy !== "stop") {
    const rest = stream.flush();
    text += rest;
    if (rest) o.onText?.(rest);
  }
  model.train(wasTraining);
  return { ids: out, text: stream ? text : undefined, stoppedBy };
}
