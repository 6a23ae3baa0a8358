// Speculative decoding (Leviathan et al. 2023, "Fast Inference from Transformers via Speculative
// Decoding", Algorithm 1; Chen et al. 2023, "Accelerating Large Language Model Decoding with
// Speculative Sampling", Algorithm 2): a cheap draft model proposes gamma tokens one by one, the target
// scores all of them in one forward pass, and modified rejection sampling keeps a prefix of them plus
// one token of its own. Draft token x at position i is kept with probability min(1, p_i(x) / q_i(x));
// the first rejected one is replaced by a draw from norm(max(0, p_i - q_i)); when all are kept a bonus
// token is drawn from p_{gamma+1}. Every token is then distributed exactly as sampling the target
// alone (Leviathan Appendix A.1), where p and q are the target's and the draft's distributions after
// the same repetition penalty, temperature, top-k and top-p (sampleNext's). With temperature 0 both are
// one-hot, a draft token is kept iff it is the target's argmax, and the output is the target's greedy
// output. Both KV caches roll back (DecodingState.truncate) to the tokens kept.

import { RandomGenerator } from "../tensor/rng.js";
import * as ops from "../ops/index.js";
import type { CausalLM } from "../models/causal-lm.js";
import { SeqContext, type DecodingState } from "../nn/seq-context.js";
import type { Tokenizer } from "../tokenizers/tokenizer.js";
import { checkPrompt, decodeStep, type GenerateOptions, type GenerateResult } from "./generate.js";
import { OutputSink } from "./output.js";
import { samplingWeights, validateSampling, type SamplingOptions } from "./sampling.js";

export interface SpeculativeOptions extends Omit<GenerateOptions, "noCache"> {
  /** Draft tokens proposed per round (an integer >= 1). */
  gamma: number;
  /**
   * For testing the distribution test: keep every draft token, skipping the rejection step. The
   * output then follows the draft, not the target.
   */
  noCorrection?: boolean;
}

export interface SpeculativeStats {
  gamma: number;
  /** Target forward passes (one per round) and draft forward passes. */
  targetCalls: number;
  draftCalls: number;
  /** Tokens the rounds produced (kept draft tokens + one target token per round). */
  tokens: number;
  /** Draft tokens proposed, verified (up to and including the first rejection) and kept. */
  proposed: number;
  verified: number;
  accepted: number;
  /** Leviathan's alpha = E[beta], beta = sum_x min(p(x), q(x)) (sec. 3.1): the mean over the verified positions. */
  alpha: number;
  /** accepted / verified: the empirical acceptance rate that alpha predicts. */
  acceptRate: number;
  tokensPerTargetCall: number;
  /** Leviathan eq. 1, the expected tokens per target call: (1 - alpha^(gamma + 1)) / (1 - alpha). */
  predictedTokensPerTargetCall: number;
}

export interface SpeculativeResult extends GenerateResult { stats: SpeculativeStats }

/** (1 - alpha^(gamma + 1)) / (1 - alpha), gamma + 1 at alpha = 1 (Leviathan et al. 2023, eq. 1). */
export function expectedTokensPerCall(alpha: number, gamma: number): number {
  return alpha >= 1 ? gamma + 1 : (1 - alpha ** (gamma + 1)) / (1 - alpha);
}

/**
 * The distribution sampleNext draws from (samplingWeights on a float32 copy of the row), as float64
 * probabilities over the whole vocabulary, since the rejection rule needs p(x) and q(x); temperature 0
 * is a one-hot at the first argmax.
 */
export function samplingProbs(row: Float32Array, seen: Iterable<number>, o: SamplingOptions): Float64Array {
  const out = new Float64Array(row.length);
  const { ids, weights, total } = samplingWeights(Float32Array.from(row), seen, o);
  ids.forEach((id, j) => { out[id] = weights[j] / total; });
  return out;
}

/** An index drawn with probability weights[i] / sum(weights) (weights >= 0, not all 0). */
export function drawFrom(weights: Float64Array, g: RandomGenerator): number {
  let total = 0, last = 0;
  weights.forEach((x, i) => { total += x; if (x > 0) last = i; });
  let r = uniform(g) * total;
  for (let i = 0; i < weights.length; i++) {
    r -= weights[i];
    if (r < 0 && weights[i] > 0) return i;
  }
  return last;
}

function uniform(g: RandomGenerator): number {
  const u = new Float64Array(1);
  g.uniform(u);
  return u[0];
}

/**
 * The rejection step (Leviathan et al. 2023, Algorithm 1) over the target's logits `rows` (one per
 * draft, plus one after the last) for `drafts` drawn from q: kept = the number of drafts kept, next =
 * the target's token after them (from the residual at the first rejection, from p after all); beta
 * sums sum_x min(p(x), q(x)) over the `verified` positions. seen(i): the tokens before draft i.
 */
export function verifyDrafts(rows: Float32Array[], drafts: readonly number[], q: readonly Float64Array[], seen: (i: number) => Iterable<number>, o: SamplingOptions & { noCorrection?: boolean }, g: RandomGenerator): { kept: number; next: number; verified: number; beta: number } {
  let beta = 0;
  for (let k = 0; k < drafts.length; k++) {
    const p = samplingProbs(rows[k], seen(k), o), x = drafts[k], ratio = p[x] / q[k][x];
    beta += p.reduce((s, pi, j) => s + Math.min(pi, q[k][j]), 0);
    if (o.noCorrection || ratio >= 1 || (ratio > 0 && uniform(g) < ratio)) continue;
    const residual = p.map((pi, j) => Math.max(0, pi - q[k][j]));
    // the residual is empty only by rounding (p(x) < q(x) implies mass elsewhere): then p itself
    return { kept: k, next: drawFrom(residual.some((r) => r > 0) ? residual : p, g), verified: k + 1, beta };
  }
  return { kept: drafts.length, next: drawFrom(samplingProbs(rows[drafts.length], seen(drafts.length), o), g), verified: drafts.length, beta };
}

/**
 * Throws unless the draft's tokenizer is the target's: the same size, BOS and EOS, and every id
 * decoding to the same text (the draft's ids are fed to the target as they are).
 */
export function checkSameTokenizer(target: Tokenizer, draft: Tokenizer): void {
  const differ = (what: string, d: unknown, t: unknown) => {
    throw new Error(`the draft's tokenizer differs from the target's: ${what} ${JSON.stringify(d)} in the draft's, ${JSON.stringify(t)} in the target's; speculative decoding needs the target's tokenizer`);
  };
  if (draft.vocabSize !== target.vocabSize) differ("vocabulary size", draft.vocabSize, target.vocabSize);
  if (draft.bosId !== target.bosId) differ("BOS id", draft.bosId ?? null, target.bosId ?? null);
  if (draft.eosId !== target.eosId) differ("EOS id", draft.eosId ?? null, target.eosId ?? null);
  for (let i = 0; i < target.vocabSize; i++) {
    const t = target.decode([i]), d = draft.decode([i]);
    if (t !== d) differ(`token ${i} is`, d, t);
  }
}

/** One model's side of the decoding: its state over the window's first ids, and the ids not fed yet. */
export interface Lane {
  readonly model: CausalLM;
  readonly state: DecodingState;
  readonly pending: readonly number[];
}

class ModelLane implements Lane {
  state: DecodingState;
  pending: number[] = [];
  calls = 0;

  constructor(readonly model: CausalLM, readonly name: string, private readonly capacity: number) {
    this.state = model.newState(capacity);
  }

  restart(window: number[]): void {
    this.state = this.model.newState(this.capacity);
    this.pending = [...window];
  }

  /** Feeds the pending ids (one forward pass); returns the logits rows of the last `rows` of them. */
  feed(rows: number): Float32Array[] {
    const ids = this.pending;
    this.pending = [];
    const [V, all] = decodeStep(this.state, () => {
      const { logits } = this.model.forward(ops.tensor(Int32Array.from(ids), { shape: [1, ids.length] }), SeqContext.decode(this.state));
      return [logits.shape[2], logits.toTypedArray() as Float32Array] as const;
    });
    this.calls++;
    // checked on every pass so that the error does not wait for the first rejection
    if (!this.state.canTruncate(this.state.length - 1)) throw new Error(`speculative decoding: the ${this.name} model's decoding state cannot roll back (a recurrent state folds every position in); use a model with a KV cache`);
    return Array.from({ length: rows }, (_, i) => all.subarray((ids.length - rows + i) * V, (ids.length - rows + i + 1) * V));
  }

  /** Keeps the state's first `agree` positions at most (those the window still holds) and queues the rest of the window. */
  sync(window: number[], agree: number): void {
    const keep = Math.min(this.state.length, agree);
    if (keep < this.state.length) this.state.truncate(keep);
    this.pending = window.slice(keep);
  }
}

/**
 * Speculative decoding round by round, for callers that stream or inspect the caches; tokens holds
 * the prompt and every token produced. speculativeGenerate runs it with generate's stop rules.
 */
export class SpeculativeDecoder {
  readonly tokens: number[];
  /** The context window starts at this index of tokens (it slides as generate's does). */
  windowStart = 0;
  private readonly t: ModelLane;
  private readonly d: ModelLane;
  private readonly g: RandomGenerator;
  private readonly ctx: number;
  private readonly n = { tokens: 0, proposed: 0, verified: 0, accepted: 0, beta: 0 };

  constructor(target: CausalLM, draft: CausalLM, prompt: number[], private readonly o: Omit<SpeculativeOptions, "maxNewTokens">) {
    validateSampling(o);
    if (!Number.isInteger(o.gamma) || o.gamma < 1) throw new RangeError(`speculative decoding: gamma (draft tokens per round) must be an integer >= 1, got ${o.gamma}`);
    if ((o as { noCache?: boolean }).noCache) throw new RangeError("speculative decoding: noCache is not supported (verification rolls the KV caches back)");
    const vt = target.config.vocabSize, vd = draft.config.vocabSize;
    if (vt !== vd) throw new RangeError(`speculative decoding: the draft model has vocabSize ${vd} but the target has ${vt}; the draft must share the target's vocabulary`);
    this.ctx = checkPrompt("speculative decoding", target, prompt, o.context);
    const dmax = draft.config.maxSeqLen;
    if (this.ctx > dmax && (draft.config as { position?: string }).position === "learned") {
      throw new RangeError(`speculative decoding: the window is ${this.ctx} tokens but the draft's learned positions stop at ${dmax}; give a context of at most ${dmax} or a draft with a longer context`);
    }
    this.tokens = [...prompt];
    this.g = new RandomGenerator(o.seed ?? 0);
    this.t = new ModelLane(target, "target", this.ctx);
    this.d = new ModelLane(draft, "draft", this.ctx);
    this.t.pending = [...prompt];
    this.d.pending = [...prompt];
  }

  get target(): Lane { return this.t; }
  get draft(): Lane { return this.d; }

  /**
   * One round: the draft proposes up to gamma tokens (fewer near `limit` or the end of the window),
   * the target verifies them in one pass. Returns the 1 .. gamma + 1 new tokens (at most `limit`, >= 1),
   * already appended to tokens.
   */
  round(limit = Infinity): number[] {
    const { tokens, ctx, o, g } = this;
    // A full window slides as generate's does (keep the newest half, prefill it again), so every
    // token is predicted from the window generate would use.
    if (tokens.length - this.windowStart > ctx) {
      this.windowStart = tokens.length - Math.max(1, ctx >> 1);
      this.t.restart(tokens.slice(this.windowStart));
      this.d.restart(tokens.slice(this.windowStart));
    }
    const n = tokens.length, ws = this.windowStart;
    // position n + i is predicted from n - ws + i tokens, which must fit the window
    const gamma = Math.max(0, Math.min(o.gamma, limit - 1, ctx - (n - ws)));
    const drafts: number[] = [], q: Float64Array[] = [];
    // sampleNext's penalty sees every token so far (not only the window's)
    const seen = (i: number): Iterable<number> => ({ *[Symbol.iterator]() { yield* tokens; yield* drafts.slice(0, i); } });
    for (let i = 0; i < gamma; i++) {
      if (i > 0) this.d.pending.push(drafts[i - 1]);
      q.push(samplingProbs(this.d.feed(1)[0], seen(i), o));
      drafts.push(drawFrom(q[i], g));
    }
    this.t.pending.push(...drafts);
    const { kept: k, next, verified, beta } = verifyDrafts(this.t.feed(gamma + 1), drafts, q, seen, o, g);
    this.n.verified += verified;
    this.n.beta += beta;
    const fresh = [...drafts.slice(0, k), next];
    tokens.push(...fresh);
    const window = tokens.slice(ws);
    this.t.sync(window, n - ws + k);
    this.d.sync(window, n - ws + k);
    this.n.tokens += fresh.length;
    this.n.proposed += gamma;
    this.n.accepted += k;
    return fresh;
  }

  stats(): SpeculativeStats {
    const { n } = this, alpha = n.beta / n.verified;
    return {
      gamma: this.o.gamma, targetCalls: this.t.calls, draftCalls: this.d.calls, tokens: n.tokens,
      proposed: n.proposed, verified: n.verified, accepted: n.accepted, alpha, acceptRate: n.accepted / n.verified,
      tokensPerTargetCall: n.tokens / this.t.calls, predictedTokensPerTargetCall: expectedTokensPerCall(alpha, this.o.gamma),
    };
  }
}

/**
 * Generates from `target` as generate() does (same options, same stop rules), with `draft` proposing
 * `gamma` tokens per target call. Sampled output follows the target's distribution exactly and greedy
 * output is the target's greedy output, both as far as the target's logits for gamma + 1 positions in
 * one pass equal its logits one position at a time: they differ by float rounding (~1e-5), which can
 * flip a near-tie.
 */
export function speculativeGenerate(target: CausalLM, draft: CausalLM, prompt: number[], o: SpeculativeOptions): SpeculativeResult {
  const dec = new SpeculativeDecoder(target, draft, prompt, o);
  const sink = new OutputSink(o, prompt);
  const modes = [target.training, draft.training];
  target.eval();
  draft.eval();
  try {
    let left = o.maxNewTokens;
    rounds: while (left > 0) {
      for (const id of dec.round(left)) {
        left--;
        if (!sink.push(id)) break rounds;
      }
    }
  } finally {
    target.train(modes[0]);
    draft.train(modes[1]);
  }
  return { ...sink.finish(), stats: dec.stats() };
}
