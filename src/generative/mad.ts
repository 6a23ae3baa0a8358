// Self-consuming ("autophagous") training loops, Alemohammad et al. 2023, "Self-Consuming Generative
// Models Go MAD" (arXiv 2307.01850, ICLR 2024), sec. 3: generation 0 trains on real data; generation t
// trains on samples of generation t - 1's model, either
// - the fully synthetic loop (sec. 3.1, no real data after generation 0), or
// - the fresh data loop (sec. 3.3): a fixed share of each training set drawn fresh from the real distribution,
// without sampling bias (λ = 1: plain samples, not truncated / guided ones). The paper measures quality by
// precision and diversity by recall (Kynkäänniemi et al. 2019), beside FID; here beside MMD² (metrics.ts).

import * as ops from "../ops/index.js";
import { floatData } from "../ops/util.js";
import { RandomGenerator } from "../tensor/rng.js";
import { tidy } from "../tensor/scope.js";
import type { Tensor } from "../tensor/tensor.js";
import { checkPoints } from "./wgan-gp.js";

/** Squared distance of each point to its k-th nearest other point of the same set (brute force). */
function kthNeighbourSq(v: Float64Array, n: number, d: number, k: number): Float64Array {
  const out = new Float64Array(n), row = new Float64Array(n - 1);
  for (let i = 0; i < n; i++) {
    let m = 0;
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      let s = 0;
      for (let c = 0; c < d; c++) { const t = v[i * d + c] - v[j * d + c]; s += t * t; }
      row[m++] = s;
    }
    out[i] = row.sort()[k - 1];
  }
  return out;
}

/** The share of `query` points inside the union of the balls B(x, r_k(x)) around the `ref` points. */
function coverage(q: Float64Array, nq: number, ref: Float64Array, nr: number, radiusSq: Float64Array, d: number): number {
  let inside = 0;
  for (let i = 0; i < nq; i++) {
    for (let j = 0; j < nr; j++) {
      let s = 0;
      for (let c = 0; c < d; c++) { const t = q[i * d + c] - ref[j * d + c]; s += t * t; }
      if (s <= radiusSq[j]) { inside++; break; }
    }
  }
  return inside / nq;
}

/**
 * Improved precision and recall (Kynkäänniemi et al. 2019, sec. 2): each set's manifold is the union of
 * balls around its points with radius the distance to the k-th nearest neighbour (k = 3 in the paper);
 * precision = share of generated points inside the real manifold (quality), recall = share of real points
 * inside the generated manifold (diversity). On raw points here (the paper embeds images with VGG-16).
 */
export function precisionRecall(real: Tensor, fake: Tensor, o: { k?: number } = {}): { precision: number; recall: number } {
  const d = checkPoints(real, "real", "precisionRecall");
  if (checkPoints(fake, "fake", "precisionRecall") !== d) throw new RangeError(`precisionRecall: real has ${d} features per point, fake has ${fake.shape[1]}`);
  const k = o.k ?? 3, nr = real.shape[0], nf = fake.shape[0];
  if (!Number.isSafeInteger(k) || k < 1 || k >= Math.min(nr, nf)) throw new RangeError(`precisionRecall: k must be an integer in [1, ${Math.min(nr, nf) - 1}] (fewer than each set's points), got ${k}`);
  const r = Float64Array.from(floatData(real, "precisionRecall")), f = Float64Array.from(floatData(fake, "precisionRecall"));
  return {
    precision: coverage(f, nf, r, nr, kthNeighbourSq(r, nr, d, k), d),
    recall: coverage(r, nr, f, nf, kthNeighbourSq(f, nf, d, k), d),
  };
}

/** A trained model's sampler: n points [n, d]. */
export type Sampler = (n: number, gen: RandomGenerator) => Tensor;

export interface MadOptions {
  /** Generations including generation 0 (trained on real data only). */
  generations: number;
  /** Points in each generation's training set. */
  trainSize: number;
  /** Share of each training set drawn fresh from the real distribution after generation 0: 0 is the fully synthetic loop. */
  freshFraction: number;
  /** Draws n real points (the fresh data). */
  real: Sampler;
  /** Trains generation t's model on its data set and returns its sampler. */
  train: (data: Tensor, generation: number) => Sampler;
  /** Scores generation t's sampler (e.g. MMD², precision, recall against held-out real data). */
  evaluate?: (sample: Sampler, generation: number) => Record<string, number>;
  /** Keep each generation's sampler in the result (default false: only the last one is kept). */
  keepSamplers?: boolean;
  seed?: number;
}

export interface MadGeneration { generation: number; realCount: number; syntheticCount: number; scores: Record<string, number> }

/** Run the loop; returns the per-generation bookkeeping and scores, and the samplers kept. */
export function madLoop(o: MadOptions): { generations: MadGeneration[]; samplers: Sampler[] } {
  const { generations, trainSize, freshFraction } = o;
  if (!Number.isSafeInteger(generations) || generations < 1) throw new RangeError(`madLoop: generations must be a positive integer, got ${generations}`);
  if (!Number.isSafeInteger(trainSize) || trainSize < 1) throw new RangeError(`madLoop: trainSize must be a positive integer, got ${trainSize}`);
  if (!(freshFraction >= 0 && freshFraction <= 1)) throw new RangeError(`madLoop: freshFraction must be in [0, 1], got ${freshFraction}`);
  const gen = new RandomGenerator(o.seed ?? 0);
  const out: MadGeneration[] = [], samplers: Sampler[] = [];
  let prev: Sampler | null = null;
  for (let t = 0; t < generations; t++) {
    const realCount = prev ? Math.round(freshFraction * trainSize) : trainSize, syntheticCount = trainSize - realCount;
    const data = tidy(() => {
      const parts = [realCount && o.real(realCount, gen), syntheticCount && prev!(syntheticCount, gen)].filter((x): x is Tensor => !!x);
      return parts.length === 1 ? parts[0] : ops.cat(parts, 0);
    });
    if (data.ndim !== 2 || data.shape[0] !== trainSize) throw new RangeError(`madLoop: generation ${t}'s data has shape [${data.shape.join(", ")}], expected ${trainSize} rows (check the samplers)`);
    const sampler = o.train(data, t);
    out.push({ generation: t, realCount, syntheticCount, scores: o.evaluate?.(sampler, t) ?? {} });
    if (o.keepSamplers) samplers.push(sampler);
    prev = sampler;
  }
  if (!o.keepSamplers && prev) samplers.push(prev);
  return { generations: out, samplers };
}
