// Linear attention (Katharopoulos et al. 2020, "Transformers are RNNs"): the softmax similarity is
// replaced by a kernel phi(q)^T phi(k) with phi(x) = elu(x) + 1 (eq. 7), so causal attention
//   out_i = phi(q_i)^T S_i / (phi(q_i)^T z_i + eps),  S_i = sum_{j<=i} phi(k_j) v_j^T,  z_i = sum_{j<=i} phi(k_j)
// (eq. 8-9) is an RNN whose state is (S, z) (sec. 3.4). Training uses the chunked parallel form: inside a
// chunk of C positions the masked quadratic form tril(phi(Q) phi(K)^T) V, across chunks the carried S, so
// memory is O(T C + (T / C) d^2) instead of the O(T d^2) of a prefix sum over the outer products. z rides
// along as one extra column of V ([v, 1]). Decoding runs the same recurrence with the state, O(1) a step.
// This file also holds the parts the other kernelized variants (performer.ts, transnormer.ts) share.

import * as ops from "../../ops/index.js";
import type { Tensor } from "../../tensor/tensor.js";
import { RecurrentState, SeqContext } from "../seq-context.js";
import { HeadProjections } from "./projections.js";
import type { AttentionConfig, AttentionState } from "./types.js";

/** Recurrent state of a kernelized layer: S = sum_j phi(k_j) v_j^T per kv head, [B, Hkv, 1, m, dv]. */
export class LinearState extends RecurrentState {
  s: Tensor | null = null;

  constructor(variant = "linear") {
    super(variant);
  }
}

/**
 * Causal sum_{j<=i} (fq_i . fk_j) v_j, chunk by chunk: fq [B, Hkv, g, T, m], fk [B, Hkv, 1, T, m],
 * v [B, Hkv, 1, T, dv] -> [B, Hkv, g, T, dv]. With a state, continues from it and updates it.
 */
export function causalLinear(fq: Tensor, fk: Tensor, v: Tensor, chunk: number, state?: LinearState): Tensor {
  const T = fq.shape[3];
  let s = state?.s ?? null;
  const outs: Tensor[] = [];
  for (let c0 = 0; c0 < T; c0 += chunk) {
    const n = Math.min(chunk, T - c0);
    const q = ops.narrow(fq, 3, c0, n), kt = ops.transpose(ops.narrow(fk, 3, c0, n), -1, -2), vc = ops.narrow(v, 3, c0, n);
    let o = ops.matmul(ops.tril(ops.matmul(q, kt)), vc);
    if (s) o = ops.add(o, ops.matmul(q, s));
    outs.push(o);
    if (state || c0 + n < T) {
      const kv = ops.matmul(kt, vc);
      s = s ? ops.add(s, kv) : kv;
    }
  }
  if (state) {
    state.s = s && s.detach();
    state.length += T;
  }
  return outs.length === 1 ? outs[0] : ops.cat(outs, 3);
}

/** causalLinear normalized by the same sum over [v, 1]: num_i / (den_i + eps) (eq. 9). */
export function normalizedLinear(fq: Tensor, fk: Tensor, v: Tensor, chunk: number, eps: number, state?: LinearState): Tensor {
  const dv = v.shape[4];
  const ones = ops.ones([...v.shape.slice(0, 4), 1], { dtype: v.dtype });
  const o = causalLinear(fq, fk, ops.cat([v, ones], 4), chunk, state);
  return ops.div(ops.narrow(o, 4, 0, dv), ops.add(ops.narrow(o, 4, dv, 1), eps));
}

/** phi(x) = elu(x) + 1 > 0 (eq. 7). */
export const eluPlusOne = (x: Tensor): Tensor => ops.add(ops.elu(x), 1);

/**
 * The shared q/k/v/o projections (projections.ts: attn.wq/wk/wv/wo, RoPE when cfg.rope) with the query heads
 * grouped by kv head for GQA: query head h reads kv head floor(h / g), g = nHeads / nKvHeads. RoPE rotates
 * q and k before any feature map, which keeps phi > 0 and the normalizer positive (RoFormer's
 * linear-attention form instead rotates phi(q), phi(k) in the numerator only).
 */
export abstract class GroupedAttention extends HeadProjections {
  /** x [B, T, D] -> q [B, Hkv, g, T, d]; k, v [B, Hkv, 1, T, d] (the kv heads broadcast over the group). */
  protected project(x: Tensor, ctx: SeqContext): [Tensor, Tensor, Tensor] {
    const [B, T] = x.shape;
    const { nHeads, nKvHeads } = this.cfg;
    const d = this.headDim;
    const [q, k, v] = this.projectHeads(x, ctx);
    const heads = (t: Tensor, g: number) => ops.permute(ops.reshape(t, [B, T, nKvHeads, g, d]), [0, 2, 3, 1, 4]);
    return [heads(q, nHeads / nKvHeads), heads(k, 1), heads(v, 1)];
  }

  /** o [B, Hkv, g, T, d] -> [B, T, nHeads * d] (heads concatenated, before wo). */
  protected mergeHeads(o: Tensor): Tensor {
    const [B, , , T] = o.shape;
    return ops.reshape(ops.permute(o, [0, 3, 1, 2, 4]), [B, T, this.cfg.dModel]);
  }
}

export interface LinearOptions {
  /** Added to the normalizer phi(q_i)^T z_i (default 1e-6). */
  eps?: number;
  /** Positions per chunk of the parallel form (default 64). */
  chunk?: number;
}

export const LINEAR_DEFAULTS = { eps: 1e-6, chunk: 64 } as const;

export class LinearAttention extends GroupedAttention {
  readonly eps: number;
  readonly chunk: number;

  constructor(cfg: AttentionConfig, opts: LinearOptions = {}) {
    super(cfg);
    this.eps = opts.eps ?? LINEAR_DEFAULTS.eps;
    this.chunk = opts.chunk ?? LINEAR_DEFAULTS.chunk;
  }

  newState(): LinearState {
    return new LinearState();
  }

  forward(x: Tensor, ctx = SeqContext.causal()): Tensor {
    ctx.require("linear", { positions: true });
    const [q, k, v] = this.project(x, ctx);
    const o = normalizedLinear(eluPlusOne(q), eluPlusOne(k), v, this.chunk, this.eps, (ctx.state as LinearState | null) ?? undefined);
    return this.wo.forward(this.mergeHeads(o));
  }
}
