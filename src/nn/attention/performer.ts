// Performer / FAVOR+ (Choromanski et al. 2021, "Rethinking Attention with Performers"): the softmax kernel
// exp(scale q.k) is estimated with positive random features (Lemma 1)
//   phi(x) = exp(w_r^T x' - ||x'||^2 / 2)_{r=1..m} / sqrt(m),  x' = x sqrt(scale)  (= x d^(-1/4) for 1/sqrt(d)),
// whose m projections w_r are orthogonal random features (ORF): each block of d rows is a Gram-Schmidt
// (QR) orthogonalized Gaussian matrix, rows rescaled by independent chi(d) lengths (norms of Gaussian
// vectors), so every w_r is marginally N(0, I_d): the reference code's scaling=0, not the "regularized"
// sqrt(d)-norm variant. The exponents are max-stabilized as in the reference implementation: per query over
// its m features; for keys one constant over all positions and features (the reference takes one global
// max, here one per (batch, kv head) so batch rows stay independent). Both constants cancel between
// numerator and normalizer, so they are treated as constants (no gradient). Causal attention is the
// linear-attention prefix-sum recurrence (linear.ts) on these features; the decoding state carries the keys'
// constant as a running max and rescales the carried sums when it grows. The projection is a buffer (not a
// parameter), redrawn every `redrawInterval` training forward passes from a seeded RandomGenerator.

import * as ops from "../../ops/index.js";
import { RandomGenerator } from "../../tensor/rng.js";
import type { Tensor } from "../../tensor/tensor.js";
import { GroupedAttention, LinearState, normalizedLinear } from "./linear.js";
import { SeqContext } from "../seq-context.js";
import type { AttentionConfig } from "./types.js";

export interface PerformerOptions {
  /** Random features m (default max(64, 2 d)). */
  features?: number;
  /** Redraw the projection every this many training forward passes (default 1000; Infinity = never). */
  redrawInterval?: number;
  /** Seed of the projection draws; layer l uses seed + l (default 0x5eed). */
  seed?: number;
  /** Positions per chunk of the parallel form (default 64). */
  chunk?: number;
}

export const PERFORMER_DEFAULTS = { redrawInterval: 1000, seed: 0x5eed, chunk: 64 } as const;
export const defaultFeatures = (headDim: number): number => Math.max(64, 2 * headDim);

/** Guards 0 / 0 only: the normalizer is a sum of positives whose overall scale is arbitrary (stabilizers). */
const TINY = 1e-30;

/** m x d orthogonal random features: orthogonal Gaussian blocks of d rows, each row scaled to a chi(d) length. */
export function orthogonalRandomFeatures(m: number, d: number, g: RandomGenerator): Tensor {
  const w = new Float64Array(m * d), block = new Float64Array(d * d);
  for (let r0 = 0; r0 < m; r0 += d) {
    g.normal(block);
    // Modified Gram-Schmidt over the rows (QR of the transpose): Haar-distributed orthonormal rows.
    for (let i = 0; i < d; i++) {
      const ri = block.subarray(i * d, (i + 1) * d);
      for (let j = 0; j < i; j++) {
        const rj = block.subarray(j * d, (j + 1) * d);
        let dot = 0;
        for (let t = 0; t < d; t++) dot += ri[t] * rj[t];
        for (let t = 0; t < d; t++) ri[t] -= dot * rj[t];
      }
      let nrm = 0;
      for (let t = 0; t < d; t++) nrm += ri[t] * ri[t];
      for (let t = 0; t < d; t++) ri[t] /= Math.sqrt(nrm);
    }
    w.set(block.subarray(0, Math.min(d, m - r0) * d), r0 * d);
  }
  const lengths = new Float64Array(m * d);
  g.normal(lengths);
  for (let r = 0; r < m; r++) {
    let n2 = 0;
    for (let t = 0; t < d; t++) n2 += lengths[r * d + t] ** 2;
    for (let t = 0; t < d; t++) w[r * d + t] *= Math.sqrt(n2);
  }
  return ops.tensor(Float32Array.from(w), { shape: [m, d] });
}

/** w^T x' - ||x'||^2 / 2 for every row w of the projection: [..., d] -> [..., m]. */
function exponents(x: Tensor, w: Tensor, scale: number): Tensor {
  const xs = ops.mul(x, Math.sqrt(scale));
  const proj = ops.matmul(xs, ops.transpose(w.dtype === x.dtype ? w : w.to(x.dtype), 0, 1));
  return ops.sub(proj, ops.mul(ops.sum(ops.square(xs), -1, true), 0.5));
}

/** exp(e - c) / sqrt(m) with a stabilizer c that is a constant for the graph. */
const positive = (e: Tensor, c: Tensor): Tensor => ops.mul(ops.exp(ops.sub(e, c.detach())), 1 / Math.sqrt(e.shape[e.ndim - 1]));

const queryFeatures = (q: Tensor, w: Tensor, scale: number): Tensor => {
  const e = exponents(q, w, scale);
  return positive(e, ops.amax(e, -1, true));
};

/** The keys' stabilizer: one max per (batch, kv head) over positions and features of e [B, Hkv, 1, T, m]. */
const keyMax = (e: Tensor): Tensor => ops.amax(e, [2, 3, 4], true).detach();

/**
 * Causal FAVOR+ attention of q [B, H, T, d], k [B, H, T, d], v [B, H, T, dv] with `features` orthogonal
 * random features drawn from `generator`: the estimate of softmax(scale q k^T + causal mask) v.
 */
export function favorAttention(q: Tensor, k: Tensor, v: Tensor, o: { features: number; generator: RandomGenerator; scale?: number; chunk?: number }): Tensor {
  const d = q.shape[3];
  const w = orthogonalRandomFeatures(o.features, d, o.generator);
  const scale = o.scale ?? 1 / Math.sqrt(d);
  const ek = exponents(ops.unsqueeze(k, 2), w, scale);
  const fk = positive(ek, keyMax(ek));
  const out = normalizedLinear(queryFeatures(ops.unsqueeze(q, 2), w, scale), fk, ops.unsqueeze(v, 2), o.chunk ?? PERFORMER_DEFAULTS.chunk, TINY);
  return ops.squeeze(out, 2);
}

/** Linear-attention state plus the keys' running stabilizer [B, Hkv, 1, 1, 1]. */
export class PerformerState extends LinearState {
  keyMax: Tensor | null = null;
}

export class PerformerAttention extends GroupedAttention {
  readonly features: number;
  readonly redrawInterval: number;
  readonly chunk: number;
  /** Projection buffer [m, d] (not a parameter). */
  readonly projection: Tensor;
  /** Buffer [training forward passes so far, counter of the projection's generator]: with the
   * projection it makes a resumed run redraw exactly when and what an uninterrupted one would. */
  private readonly drawState: Tensor;
  private readonly generator: RandomGenerator;

  constructor(cfg: AttentionConfig, opts: PerformerOptions = {}) {
    super(cfg);
    this.features = opts.features ?? defaultFeatures(this.headDim);
    this.redrawInterval = opts.redrawInterval ?? PERFORMER_DEFAULTS.redrawInterval;
    this.chunk = opts.chunk ?? PERFORMER_DEFAULTS.chunk;
    this.generator = new RandomGenerator((opts.seed ?? PERFORMER_DEFAULTS.seed) + cfg.layer);
    this.projection = this.buffer("projection", orthogonalRandomFeatures(this.features, this.headDim, this.generator));
    this.drawState = this.buffer("draw_state", ops.tensor([0, this.generator.getState().counter], { dtype: "float64" }));
  }

  /** Training forward passes so far. */
  get passes(): number {
    return this.drawState.data[0];
  }

  redraw(): void {
    const g = this.generator, st = this.drawState.data;
    g.setState({ seed: g.getState().seed, counter: st[1] });
    this.projection.data.set(orthogonalRandomFeatures(this.features, this.headDim, g).toTypedArray());
    st[1] = g.getState().counter;
  }

  newState(): PerformerState {
    return new PerformerState("performer");
  }

  forward(x: Tensor, ctx = SeqContext.causal()): Tensor {
    ctx.require("performer", { positions: true });
    if (this.training && !ctx.state) {
      if (this.passes > 0 && this.passes % this.redrawInterval === 0) this.redraw();
      this.drawState.data[0]++;
    }
    const st = (ctx.state as PerformerState | null) ?? undefined;
    const [q, k, v] = this.project(x, ctx);
    const { scale } = this.cfg;
    const ek = exponents(k, this.projection, scale);
    let c = keyMax(ek);
    if (st?.s && st.keyMax) {
      c = ops.maximum(c, st.keyMax);
      st.s = ops.mul(st.s, ops.exp(ops.sub(st.keyMax, c)));
    }
    if (st) st.keyMax = c;
    const o = normalizedLinear(queryFeatures(q, this.projection, scale), positive(ek, c), v, this.chunk, TINY, st);
    return this.wo.forward(this.mergeHeads(o));
  }
}
