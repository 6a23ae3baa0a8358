// TransNormer (Qin et al. 2022, "The Devil in Linear Transformer"): two attention kinds by depth.
// - DiagAttention in the lower half of the layers (layer < nLayers / 2), against attention dilution:
//   softmax attention inside non-overlapping blocks of `blockSize` positions (block-diagonal), causal
//   within the block. Blocks are aligned to absolute positions; decoding keeps a KV cache of the current
//   block only.
// - NormAttention in the upper half, against unbounded gradients: O = Norm(Q (K^T V)) with the softmax
//   normalizer removed, kernel phi = 1 + elu on q and k (act_fun "1+elu" of the official code; the same
//   function as Katharopoulos' elu + 1) and Norm = RMSNorm with a learned gain (attn.norm.weight) over the
//   concatenated head outputs, as the official NormLinearAttention normalizes its embed_dim output. The
//   causal form sum_{j<=i} phi(q_i)^T phi(k_j) v_j is the linear-attention recurrence (linear.ts) without a
//   denominator; decoding carries its state S.

import * as ops from "../../ops/index.js";
import type { Tensor } from "../../tensor/tensor.js";
import { RMSNorm } from "../layers.js";
import { KVCache } from "./kv-cache.js";
import { GroupedAttention, LINEAR_DEFAULTS, LinearState, causalLinear, eluPlusOne } from "./linear.js";
import { SeqContext, checkTruncate, validTruncate } from "../seq-context.js";
import type { Attention, AttentionConfig, AttentionState } from "./types.js";

export interface TransNormerOptions {
  /** DiagAttention block size (default 64). */
  blockSize?: number;
  /** NormAttention: positions per chunk of the parallel form (default 64). */
  chunk?: number;
  /** NormAttention: RMSNorm epsilon (default 1e-6). */
  normEps?: number;
}

export const TRANSNORMER_DEFAULTS = { blockSize: 64, chunk: LINEAR_DEFAULTS.chunk, normEps: 1e-6 } as const;

/** Decoding state of a DiagAttention layer: keys/values of the current block. */
export class BlockState implements AttentionState {
  length = 0;
  constructor(readonly cache: KVCache) {}

  /** Rollback inside the current block only (earlier blocks' keys are gone). */
  canTruncate(n: number): boolean {
    return validTruncate(this, n) && n >= this.length - this.cache.length;
  }

  truncate(n: number): void {
    checkTruncate(this, n);
    const blockStart = this.length - this.cache.length;
    if (n < blockStart) throw new Error(`transnormer: rollback to ${n} not supported (only within the current block, from ${blockStart})`);
    this.cache.truncate(n - blockStart);
    this.length = n;
  }
}

export class DiagAttention extends GroupedAttention {
  readonly blockSize: number;

  constructor(cfg: AttentionConfig, opts: TransNormerOptions = {}) {
    super(cfg);
    this.blockSize = opts.blockSize ?? TRANSNORMER_DEFAULTS.blockSize;
  }

  newState(capacity: number): BlockState {
    return new BlockState(new KVCache(Math.min(capacity, this.blockSize)));
  }

  forward(x: Tensor, ctx = SeqContext.causal()): Tensor {
    // Blocks are aligned to absolute positions counted from ctx.start.
    ctx.require("transnormer", {});
    const start = ctx.start;
    const [q5, k5, v5] = this.project(x, ctx);
    const [B, Hkv, g, T, d] = q5.shape;
    const q = ops.reshape(q5, [B, Hkv * g, T, d]), k = ops.reshape(k5, [B, Hkv, T, d]), v = ops.reshape(v5, [B, Hkv, T, d]);
    const st = (ctx.state as BlockState | null) ?? undefined;
    const outs: Tensor[] = [];
    // One softmax attention per piece of the input that lies inside one block.
    for (let t = 0; t < T;) {
      const at = (start + t) % this.blockSize;
      const n = Math.min(T - t, this.blockSize - at);
      let kb = ops.narrow(k, 2, t, n), vb = ops.narrow(v, 2, t, n);
      if (st) {
        if (at === 0) st.cache.reset();
        [kb, vb] = st.cache.append(kb, vb);
      }
      outs.push(ops.attention(ops.narrow(q, 2, t, n), kb, vb, { causal: true, scale: this.cfg.scale }));
      t += n;
    }
    if (st) st.length += T;
    const o = outs.length === 1 ? outs[0] : ops.cat(outs, 2);
    return this.wo.forward(this.mergeHeads(ops.reshape(o, [B, Hkv, g, T, d])));
  }
}

export class NormAttention extends GroupedAttention {
  readonly norm: RMSNorm;
  readonly chunk: number;

  constructor(cfg: AttentionConfig, opts: TransNormerOptions = {}) {
    super(cfg);
    this.chunk = opts.chunk ?? TRANSNORMER_DEFAULTS.chunk;
    this.norm = this.child("norm", new RMSNorm(cfg.dModel, opts.normEps ?? TRANSNORMER_DEFAULTS.normEps));
  }

  newState(): LinearState {
    return new LinearState("transnormer");
  }

  forward(x: Tensor, ctx = SeqContext.causal()): Tensor {
    ctx.require("transnormer", { positions: true });
    const [q, k, v] = this.project(x, ctx);
    const o = causalLinear(eluPlusOne(q), eluPlusOne(k), v, this.chunk, (ctx.state as LinearState | null) ?? undefined);
    return this.wo.forward(this.norm.forward(this.mergeHeads(o)));
  }
}

/** DiagAttention in the lower half of the layers, NormAttention in the upper half. */
export function makeTransNormer(cfg: AttentionConfig, opts: TransNormerOptions = {}): Attention {
  return cfg.layer < cfg.nLayers / 2 ? new DiagAttention(cfg, opts) : new NormAttention(cfg, opts);
}
