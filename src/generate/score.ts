// Scoring text: mean negative log-likelihood and perplexity of a token sequence, in non-overlapping
// windows of the model's context or a given length (each window predicts its tokens 1..n from their
// prefixes); optionally the loss at each position in the window (how loss varies with context length).

import { noGrad } from "../tensor/autograd.js";
import * as ops from "../ops/index.js";
import type { CausalLM } from "../models/causal-lm.js";

export interface ScoreResult {
  tokens: number;
  /** Mean NLL in nats per predicted token. */
  loss: number;
  perplexity: number;
  /** Per predicted token: its id and log-probability (when asked). */
  logprobs?: { id: number; logprob: number }[];
  /** Per position t in the window (the prediction made from t + 1 tokens): summed NLL and count. */
  byPosition?: { nll: Float64Array; count: Float64Array };
}

export interface ScoreOptions {
  logprobs?: boolean;
  /** Window length in tokens (default: the model's training length maxSeqLen). */
  window?: number;
  byPosition?: boolean;
}

export function scoreTokens(model: CausalLM, ids: number[], opts: ScoreOptions = {}): ScoreResult {
  const win = opts.window ?? model.config.maxSeqLen;
  if (!Number.isInteger(win) || win < 1) throw new RangeError(`eval: the window must be a positive integer, got ${win}`);
  if (ids.length < 2) throw new RangeError(`eval: needs at least 2 tokens, got ${ids.length}`);
  let total = 0, count = 0;
  const pos = opts.byPosition ? { nll: new Float64Array(win), count: new Float64Array(win) } : undefined;
  const lp: { id: number; logprob: number }[] = [];
  const wasTraining = model.training;
  model.eval();
  noGrad(() => {
    // Windows overlap by one token so every token after the first is predicted exactly once.
    for (let s = 0; s + 1 < ids.length; s += win) {
      const chunk = ids.slice(s, Math.min(s + win + 1, ids.length));
      const x = ops.tensor(Int32Array.from(chunk.slice(0, -1)), { shape: [1, chunk.length - 1] });
      const logp = ops.logSoftmax(model.forward(x).logits, -1).toTypedArray();
      const V = model.config.vocabSize;
      for (let t = 0; t + 1 < chunk.length; t++) {
        const l = logp[t * V + chunk[t + 1]];
        total -= l;
        count++;
        if (pos) { pos.nll[t] -= l; pos.count[t]++; }
        if (opts.logprobs) lp.push({ id: chunk[t + 1], logprob: l });
      }
    }
  });
  model.train(wasTraining);
  const loss = total / count;
  return { tokens: count, loss, perplexity: Math.exp(loss), ...(opts.logprobs ? { logprobs: lp } : {}), ...(pos ? { byPosition: pos } : {}) };
}
