// Turning logits into the next token: logit bias, repetition / frequency / presence penalties,
// temperature, top-k, top-p, min-p, typical-p, then a draw; and the log-probabilities a server reports.

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
  /** Min-p (Nguyen et al. 2024, HF MinPLogitsWarper): keep tokens with p >= minP * max p (0 = off). */
  minP?: number;
  /**
   * Locally typical sampling (Meister et al. 2022, sec. 4; HF TypicalLogitsWarper): tokens sorted by
   * |-log p - H| (H the entropy), the smallest such prefix with probability >= typicalP (1 = off).
   */
  typicalP?: number;
  /** OpenAI's penalties on generated tokens: logit -= frequency * count + presence * (count > 0). */
  frequencyPenalty?: number;
  presencePenalty?: number;
  /** Added to the logits of these ids before everything else (OpenAI's logit_bias). */
  logitBias?: ReadonlyMap<number, number>;
}

export function validateSampling(o: SamplingOptions): void {
  const bad = (what: string, v: unknown) => { throw new RangeError(`${what} must be ${v}`); };
  if (o.temperature !== undefined && !(o.temperature >= 0 && o.temperature < Infinity)) bad("temperature", `a finite number >= 0, got ${o.temperature}`);
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0)) bad("topK", `an integer >= 0, got ${o.topK}`);
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) bad("topP", `in (0, 1], got ${o.topP}`);
  if (o.repetitionPenalty !== undefined && !(o.repetitionPenalty > 0 && o.repetitionPenalty < Infinity)) bad("repetitionPenalty", `a finite number > 0, got ${o.repetitionPenalty}`);
  if (o.minP !== undefined && !(o.minP >= 0 && o.minP <= 1)) bad("minP", `in [0, 1], got ${o.minP}`);
  if (o.typicalP !== undefined && !(o.typicalP > 0 && o.typicalP <= 1)) bad("typicalP", `in (0, 1], got ${o.typicalP}`);
  for (const k of ["frequencyPenalty", "presencePenalty"] as const) if (o[k] !== undefined && !Number.isFinite(o[k])) bad(k, `a finite number, got ${o[k]}`);
  for (const [id, b] of o.logitBias ?? []) if (!Number.isInteger(id) || id < 0 || !Number.isFinite(b)) bad("logitBias", `a map of token ids (integers >= 0) to finite numbers, got ${id} -> ${b}`);
}

/**
 * Logit bias, then the OpenAI frequency / presence penalties over `generated` (the output so far, the
 * prompt excluded), in place; what samplingWeights applies before the repetition penalty.
 */
function biasAndPenalize(logits: Float32Array | Float64Array, generated: readonly number[], o: SamplingOptions): void {
  for (const [id, b] of o.logitBias ?? []) if (id < logits.length) logits[id] += b;
  const freq = o.frequencyPenalty ?? 0, pres = o.presencePenalty ?? 0;
  if (freq === 0 && pres === 0) return;
  const counts = new Map<number, number>();
  for (const id of generated) counts.set(id, (counts.get(id) ?? 0) + 1);
  for (const [id, c] of counts) logits[id] -= freq * c + pres;
}

/** Indices of `weights` (a descending distribution, unnormalized) kept by min-p, then typical-p. */
function minPTypical(weights: number[], o: SamplingOptions): number[] | null {
  const minP = o.minP ?? 0, typ = o.typicalP ?? 1;
  if (minP === 0 && typ === 1) return null;
  let keep = weights.map((_, i) => i);
  if (minP > 0) keep = keep.filter((i) => weights[i] >= minP * weights[0]);
  if (typ < 1) {
    const sum = keep.reduce((a, i) => a + weights[i], 0);
    const p = keep.map((i) => weights[i] / sum);
    const H = -p.reduce((a, q) => a + (q > 0 ? q * Math.log(q) : 0), 0);
    const order = keep.map((_, j) => j).sort((a, b) => Math.abs(-Math.log(p[a]) - H) - Math.abs(-Math.log(p[b]) - H));
    // HF keeps the prefix up to and including the first index where the cumulative mass reaches typicalP
    let acc = 0, n = 0;
    while (n < order.length && acc < typ) acc += p[order[n++]];
    keep = order.slice(0, n).map((j) => keep[j]).sort((a, b) => a - b);
  }
  return keep;
}

const ID_BITS = 2 ** 21;

/**
 * Token ids by descending logit, ties (infinities included) in id order: what a stable sort with that
 * comparator gives. For float32 rows (up to 2^21 ids) it is one numeric typed-array sort of packed
 * keys, (order key of the logit's bits, descending) * 2^21 + id, exact in a float64 (32 + 21 bits):
 * faster than a comparator sort, the more so the larger the vocabulary. -0 is keyed as +0 (they tie).
 */
export function sortedIds(logits: Float32Array | Float64Array): number[] {
  const V = logits.length;
  if (!(logits instanceof Float32Array) || V > ID_BITS) {
    return Array.from(logits.keys()).sort((a, b) => (logits[a] > logits[b] ? -1 : logits[a] < logits[b] ? 1 : 0));
  }
  const bits = new Uint32Array(logits.buffer, logits.byteOffset, V);
  const keys = new Float64Array(V);
  for (let i = 0; i < V; i++) {
    const u = logits[i] === 0 ? 0 : bits[i];
    // IEEE-754 bits in ascending value order: negatives flipped, positives above them
    const ord = u & 0x80000000 ? ~u >>> 0 : (u | 0x80000000) >>> 0;
    keys[i] = (0xffffffff - ord) * ID_BITS + i;
  }
  keys.sort();
  return Array.from(keys, (k) => k % ID_BITS);
}

/**
 * The distribution sampleNext draws from: the logit bias, the frequency / presence penalties over
 * `generated` and the repetition penalty over `seen` (all applied to `logits` in place), then
 * temperature, top-k, top-p, min-p and typical-p, as kept ids in descending logit order (ties in id
 * order) with unnormalized weights; greedy (temperature 0) keeps the argmax alone. Infinite logits are taken at
 * their limit, softmax's: when the largest logit is infinite (a penalty < 1 dividing a positive logit
 * past float32's range gives +Infinity), the tokens holding it share all the probability evenly. (HF's
 * multinomial raises on the NaN probabilities such a row gives, and llama.cpp's softmax turns them into
 * NaN: neither defines a result.) A NaN logit is refused.
 */
export function samplingWeights(logits: Float32Array | Float64Array, seen: Iterable<number>, o: SamplingOptions, generated: readonly number[] = []): { ids: number[]; weights: number[]; total: number; greedy: boolean } {
  biasAndPenalize(logits, generated, o);
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
  let ids = sortedIds(logits);
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
  const kept = minPTypical(weights, o);
  if (kept) {
    ids = kept.map((i) => ids[i]);
    weights = kept.map((i) => weights[i]);
    total = weights.reduce((a, b) => a + b, 0);
  }
  return { ids, weights, total, greedy: false };
}

/**
 * Pick the next id from one row of logits (modified in place by the bias and penalties); see
 * samplingWeights. generated: the output so far, for the frequency / presence penalties.
 */
export function sampleNext(logits: Float32Array | Float64Array, seen: Iterable<number>, o: SamplingOptions, g: RandomGenerator, generated?: readonly number[]): number {
  const { ids, weights, total, greedy } = samplingWeights(logits, seen, o, generated);
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

export interface TokenLogprob { id: number; logprob: number }

/**
 * The log-probability of `id` and the `top` most likely alternatives (descending, ties in id order)
 * under log-softmax of `logits`: pass the row sampleNext processed (bias and penalties applied, before
 * temperature and truncation), as OpenAI's logprobs / top_logprobs report the model's distribution.
 */
export function tokenLogprobs(logits: Float32Array | Float64Array, id: number, top: number): { logprob: number; top: TokenLogprob[] } {
  let mx = -Infinity;
  for (const v of logits) if (v > mx) mx = v;
  let s = 0;
  for (const v of logits) s += Math.exp(v - mx);
  const lse = mx + Math.log(s);
  const best: number[] = [];
  if (top > 0) {
    // a partial selection: the `top` best so far, kept sorted by insertion (ties: lower id first)
    for (let i = 0; i < logits.length; i++) {
      if (best.length === top && !(logits[i] > logits[best[top - 1]])) continue;
      if (best.length < top) best.push(i); else best[top - 1] = i;
      for (let j = best.length - 1; j > 0 && logits[best[j - 1]] < logits[best[j]]; j--) [best[j - 1], best[j]] = [best[j], best[j - 1]];
    }
  }
  return { logprob: logits[id] - lse, top: best.map((i) => ({ id: i, logprob: logits[i] - lse })) };
}
