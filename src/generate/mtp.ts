// Self-speculative decoding with multi-token prediction modules (DeepSeek-V3 §2.2 and §5.4.3: the MTP
// modules, trained with the model, draft the tokens after the main model's next one). Each round:
// the main model verifies the drafts in one causal pass over [last token, d_1 .. d_n] and keeps a
// prefix of them by speculative decoding's rejection rule (generate/speculative.ts verifyDrafts: with
// temperature 0 a draft is kept iff it is the main model's argmax, so the output is its greedy
// output), plus one token of its own; its KV cache rolls back to the tokens kept. Then the depths
// draft again from the main model's hidden states: with N the window index of the last token (h^0
// known up to N - 1), depth k at position N - 1 reads h^{k-1}_{N-1} and t_{N-1+k} (the main model's
// token for k = 1, depth k - 1's draft after) and gives the draft for N + k.
// The depths' KV caches: depth k at position p reads t_{p+k}, real for p <= N - k. Each round a depth
// is fed the positions from its cache length to N - 1 in one pass (drafted inputs past N - k), then
// rolled back to the N - k + 1 positions whose inputs are all real, so the next round feeds the rest.

import { RandomGenerator } from "../tensor/rng.js";
import * as ops from "../ops/index.js";
import type { Tensor } from "../tensor/tensor.js";
import type { TransformerLM } from "../models/transformer.js";
import type { MTPModules } from "../models/mtp.js";
import { SeqContext, type DecodingState } from "../nn/seq-context.js";
import { checkPrompt, decodeStep, rowsOf, type GenerateOptions, type GenerateResult } from "./generate.js";
import { OutputSink } from "./output.js";
import { validateSampling } from "./sampling.js";
import { drawFrom, samplingProbs, verifyDrafts } from "./speculative.js";

export interface MTPGenerateOptions extends Omit<GenerateOptions, "noCache"> {
  mtp: MTPModules;
  /** Draft tokens per round: the first `draft` depths (default all of them). */
  draft?: number;
  /**
   * Called with each round's drafts before they are verified (tracing, tests): `at` tokens (prompt
   * included) precede them, probs are the distributions they were drawn from.
   */
  onDraft?: (d: { at: number; drafts: readonly number[]; probs: readonly Float64Array[] }) => void;
}

export interface MTPStats {
  /** Main-model forward passes (prefills and verify passes) and verify rounds. */
  calls: number;
  rounds: number;
  tokens: number;
  /** Per depth k (index k - 1): drafts proposed, verified (every earlier draft kept) and kept. */
  proposed: number[];
  verified: number[];
  accepted: number[];
  /** accepted / verified per depth (the rate of a draft being kept given that the earlier ones were). */
  acceptRate: number[];
  /** Tokens per verify round: the kept drafts + the main model's own token. */
  tokensPerRound: number;
}

export interface MTPResult extends GenerateResult { stats: MTPStats }

const stack = (rows: Float32Array[]): Tensor => {
  const W = rows[0].length, a = new Float32Array(rows.length * W);
  rows.forEach((r, i) => a.set(r, i * W));
  return ops.tensor(a, { shape: [1, rows.length, W] });
};
const ids = (xs: number[]): Tensor => ops.tensor(Int32Array.from(xs), { shape: [1, xs.length] });

/**
 * Generates from `model` as generate() does (same options and stop rules), the MTP modules drafting
 * up to `draft` tokens per main forward pass. Greedy output is the model's greedy output, and sampled
 * output follows its distribution, as far as its logits in a verify pass equal its logits one token
 * at a time (float rounding can flip a near-tie).
 */
export function mtpGenerate(model: TransformerLM, prompt: number[], o: MTPGenerateOptions): MTPResult {
  validateSampling(o);
  if ((o as { noCache?: boolean }).noCache) throw new RangeError("mtp: noCache is not supported (verification rolls the KV cache back)");
  const { mtp } = o;
  mtp.checkBase(model);
  const D = o.draft ?? mtp.depth;
  if (!Number.isSafeInteger(D) || D < 1 || D > mtp.depth) throw new RangeError(`mtp: draft (tokens drafted per round) must be an integer in [1, ${mtp.depth}] (the modules' depth), got ${D}`);
  const ctx = checkPrompt("mtp", model, prompt, o.context);
  const g = new RandomGenerator(o.seed ?? 0);
  const sink = new OutputSink(o, prompt);
  const tokens = [...prompt];
  const n = { calls: 0, rounds: 0, tokens: 0, proposed: new Array<number>(D).fill(0), verified: new Array<number>(D).fill(0), accepted: new Array<number>(D).fill(0) };
  let ws = 0, left = o.maxNewTokens;
  let state!: DecodingState, depthStates!: DecodingState[];
  // h[k][p]: h^k at window position p (h[0] the main model's hidden states)
  let h: Float32Array[][];
  const restart = () => { state = model.newState(ctx); depthStates = mtp.newStates(ctx); h = Array.from({ length: D + 1 }, () => []); };
  restart();
  let drafts: number[] = [], q: Float64Array[] = [];

  /** The main model on `feed` (continuing its state); returns its logits rows and stores its hidden rows from window position `at`. */
  const mainPass = (feed: number[]): Float32Array[] => {
    const at = state.length;
    n.calls++;
    return decodeStep(state, () => {
      const out = model.forward(ids(feed), SeqContext.decode(state));
      if (!state.canTruncate(state.length - 1)) throw new Error("mtp: the model's decoding state cannot roll back (a recurrent state folds every position in); use a model with a KV cache");
      rowsOf(out.hidden!).forEach((r, i) => { h[0][at + i] = Float32Array.from(r); });
      return rowsOf(out.logits);
    });
  };
  // the token at window position j (a draft past the known ones)
  const tokenAt = (j: number) => (ws + j < tokens.length ? tokens[ws + j] : drafts[ws + j - tokens.length]);
  const seen = (i: number): Iterable<number> => ({ *[Symbol.iterator]() { yield* tokens; yield* drafts.slice(0, i); } });

  /** Drafts up to `count` tokens after the last one (window position N = tokens.length - 1 - ws). */
  const draft = (count: number) => {
    drafts = []; q = [];
    const N = tokens.length - 1 - ws;
    for (let k = 1; k <= count; k++) {
      const s = depthStates[k - 1], from = s.length;
      const pos = Array.from({ length: N - from }, (_, i) => from + i);
      const logits = decodeStep(s, () => {
        const out = mtp.step(k, stack(pos.map((p) => h[k - 1][p])), ids(pos.map((p) => tokenAt(p + k))), model, SeqContext.decode(s));
        rowsOf(out).forEach((r, i) => { h[k][from + i] = Float32Array.from(r); });
        return mtp.logits(k, ops.narrow(out, 1, pos.length - 1, 1), model).toTypedArray() as Float32Array;
      });
      q.push(samplingProbs(logits, seen(k - 1), o));
      drafts.push(drawFrom(q[k - 1], g));
      // keep the positions whose inputs are all real (p + k <= N)
      s.truncate(Math.max(0, N - k + 1));
      n.proposed[k - 1]++;
    }
  };
  const emit = (id: number): boolean => {
    if (left <= 0 || !sink.push(id)) { left = 0; return false; }
    tokens.push(id);
    n.tokens++;
    return --left > 0;
  };

  const wasTraining = [model.training, mtp.training];
  model.eval();
  mtp.eval();
  try {
    let primed = false;
    while (left > 0) {
      if (tokens.length - ws > ctx) {
        // slide as generate does: keep the newest half, prefill it again
        ws = tokens.length - Math.max(1, ctx >> 1);
        restart();
        primed = false;
      }
      let fresh: number[];
      if (!primed) {
        const rows = mainPass(tokens.slice(ws + state.length));
        fresh = [drawFrom(samplingProbs(rows[rows.length - 1], tokens, o), g)];
        primed = true;
      } else {
        const L = state.length, rows = mainPass([tokens[tokens.length - 1], ...drafts]);
        n.rounds++;
        const r = verifyDrafts(rows, drafts, q, seen, o, g);
        for (let k = 0; k < r.verified; k++) n.verified[k]++;
        for (let k = 0; k < r.kept; k++) n.accepted[k]++;
        state.truncate(L + 1 + r.kept);
        fresh = [...drafts.slice(0, r.kept), r.next];
      }
      drafts = [];
      let go = true;
      for (const id of fresh) if (!(go = emit(id))) break;
      if (!go) break;
      // token N + k is predicted in the verify pass from a window of N + k tokens: no more than ctx
      const N = tokens.length - 1 - ws;
      const count = Math.min(D, left - 1, ctx - 1 - N);
      if (count > 0) { draft(count); o.onDraft?.({ at: tokens.length, drafts, probs: q }); }
    }
  } finally {
    model.train(wasTraining[0]);
    mtp.train(wasTraining[1]);
  }
  const stats: MTPStats = {
    ...n, acceptRate: n.verified.map((v, k) => (v ? n.accepted[k] / v : 0)),
    tokensPerRound: n.rounds ? (n.accepted.reduce((a, b) => a + b, 0) + n.rounds) / n.rounds : 0,
  };
  return { ...sink.finish(), stats };
}
