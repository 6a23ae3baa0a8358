// Scoring text: mean negative log-likelihood and perplexity of a token sequence, in non-overlapping
// windows of the model's context (each window predicts its tokens 1..n from their prefixes).

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
}

export function scoreTokens(model: CausalLM, ids: number[], opts: { logprobs?: boolean; window?: number } = {}): ScoreResult {
  const win = Math.min(opts.window ?? model.config.maxSeqLen, model.config.maxSeqLen);
  if (ids.length < 2) throw new RangeError(`eval: needs at least 2 tokens, got ${ids.length}`);
  let total = 0, count = 0;
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
        if (opts.logprobs) lp.push({ id: chunk[t + 1], logprob: l });
      }
    }
  });
  model.train(wasTraining);
  const loss = total / count;
  return { tokens: count, loss, perplexity: Math.exp(loss), ...(opts.logprobs ? { logprobs: lp } : {}) };
}
