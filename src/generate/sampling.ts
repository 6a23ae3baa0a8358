// Turning logits into the next token: repetition penalty, temperature, top-k, top-p, then a draw.

import type { RandomGenerator } from "../tensor/rng.js";

export interface SamplingOptions {
  /** 0 = greedy (argmax). */
  temperature?: number;
  /** Keep the k most likely tokens (0 = off). */
  topK?: number;
  /** Nucleus sampling (Holtzman et al. 2020): the smallest set with cumulative probability >= p. */
  topP?: number;
  /** CTRL's penalty (Keskar et al. 2019, eq. in sec. 4.1): logits of seen tokens / p if > 0, * p otherwise. */
  repetitionPenalty?: number;
}

export function validateSampling(o: SamplingOptions): void {
  const bad = (what: string, v: unknown) => { throw new RangeError(`${what} must be ${v}`); };
  if (o.temperature !== undefined && !(o.temperature >= 0 && o.temperature < Infinity)) bad("temperature", `a finite number >= 0, got ${o.temperature}`);
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0)) bad("topK", `an integer >= 0, got ${o.topK}`);
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) bad("topP", `in (0, 1], got ${o.topP}`);
  if (o.repetitionPenalty !== undefined && !(o.repetitionPenalty > 0 && o.repetitionPenalty < Infinity)) bad("repetitionPenalty", `a finite number > 0, got ${o.repetitionPenalty}`);
}

/**
 * The distribution sampleNext draws from: the repetition penalty (applied to `logits` in place), then
 * temperature, top-k and top-p, as kept ids in descending logit order (ties in id order) with
 * unnormalized weights; greedy (temperature 0) keeps the argmax alone. Infinite logits are taken at
 * their limit, softmax's: when the largest logit is infinite (a penalty < 1 dividing a positive logit
 * past float32's range gives +Infinity), the tokens holding it share all the probability evenly. (HF's
 * multinomial raises on the NaN probabilities such a row gives, and llama.cpp's softmax turns them into
 * NaN: neither defines a result.) A NaN logit is refused.
 */
export function samplingWeights(logits: Float32Array | Float64Array, seen: Iterable<number>, o: SamplingOptions): { ids: number[]; weights: number[]; total: number; greedy: boolean } {
  const pen = o.repetitionPenalty ?? 1;
  if (pen !== 1) for (const id of new Set(seen)) logits[id] = logits[id] > 0 ? logits[id] / pen : logits[id] * pen;
  const nan = logits.findIndex(Number.isNaN);
  if (nan >= 0) throw new RangeError(`sampling: the logit of token ${nan} is NaN; the model's output is not finite`);
  const temp = o.temperature ?? 1;
  if (temp === 0) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    return { ids: [best], weights: [1], total: 1, greedy: true };
  }
  // descending; ties (infinities included) keep id order (Array.prototype.sort is stable)
  let ids = Array.from(logits.keys()).sort((a, b) => (logits[a] > logits[b] ? -1 : logits[a] < logits[b] ? 1 : 0));
  if (o.topK) ids = ids.slice(0, o.topK);
  const mx = logits[ids[0]];
  let weights = ids.map((i) => (Number.isFinite(mx) ? Math.exp((logits[i] - mx) / temp) : logits[i] === mx ? 1 : 0));
  let total = weights.reduce((a, b) => a + b, 0);
  if (o.topP !== undefined && o.topP < 1) {
    let acc = 0, keep = 0;
    while (keep < weights.length && acc < o.topP * total) acc += weights[keep++];
    ids = ids.slice(0, keep);
    weights = weights.slice(0, keep);
    total = acc;
  }
  return { ids, weights, total, greedy: false };
}

/** Pick the next id from one row of logits (modified in place by the penalty); see samplingWeights. */
export function sampleNext(logits: Float32Array | Float64Array, seen: Iterable<number>, o: SamplingOptions, g: RandomGenerator): number {
  const { ids, weights, total, greedy } = samplingWeights(logits, seen, o);
  if (greedy) return ids[0];
  const u = new Float64Array(1);
  g.uniform(u);
  let r = u[0] * total;
  for (let i = 0; i < weights.length; i++) {
    r -= weights[i];
    if (r <= 0) return ids[i];
  }
  return ids[ids.length - 1];
}
