// Gated Attention Unit (GAU) and FLASH mixed-chunk attention (Hua et al. 2022, "Transformer Quality
// in Linear Time", sec. 2 and 3.2, Codes 1-2 of the appendix). One GAU layer replaces the attention +
// FFN pair of a block (it declares includesFFN, so its block has a single residual: x + gau(norm1(x))).
//   U = silu(X W_u), V = silu(X W_v)       [T, e], e = 2D (the gated linear unit, sec. 2)
//   Z = silu(X W_z)                        [T, s], s = min(128, D): one shared low-dimensional head
//   Q = Z * gamma_q + beta_q, K = Z * gamma_k + beta_k   (per-dim scale and offset; RoPE on top if cfg.rope)
//   O = (U * A V) W_o                                    (the GAU output, sec. 2)
// Kernels A (causal, j <= i; b_{i-j} a learned relative position bias, one scalar per distance):
//   "relu2"         A_ij = relu(q_i.k_j / n + b_{i-j})^2, n = maxSeqLen. Code 1 divides by n = seq_len
//                   of the training batch; any n that depends on the batch length makes a token's output
//                   depend on how many tokens follow it, so decoding could not reproduce training. A fixed
//                   n = maxSeqLen is the paper's n for full-context training windows, and row i then only
//                   depends on tokens <= i: step-by-step decoding equals full recomputation.
//   "softmax_plus"  A_i = softmax_j(log(n_i) / log(512) * (q_i.k_j / sqrt(s) + b_{i-j})), n_i = i + 1 =
//                   the number of keys query i sees (Su 2021, https://kexue.fm/archives/8823: scale by
//                   log_512 n so the softmax entropy stays put as n grows); also causal-exact.
//   mixed chunk     (sec. 3.2) tokens in chunks of c: relu(q_i.k_j / c + b_{i-j})^2 inside the chunk
//                   (quadratic) + linear attention over all earlier chunks, q'_i . sum_{h < g} K'_h^T V_h / c,
//                   with separate scale/offsets for q, k, q', k' (Code 2, which leaves the 1/c scalings out;
//                   lucidrains/FLASH-pytorch uses the same 1/c for both parts). Decoding keeps sum K'^T V of
//                   the finished chunks plus the current chunk's keys and values: exact, O(c) per token.

import * as ops from "../../ops/index.js";
import { RandomGenerator } from "../../tensor/rng.js";
import type { Tensor } from "../../tensor/tensor.js";
import { Linear, skipInit } from "../layers.js";
import { normal_ } from "../init-fns.js";
import { Module } from "../module.js";
import { RecurrentState, SeqContext, checkTruncate, validTruncate } from "../seq-context.js";
import type { Attention, AttentionConfig, AttentionState } from "./types.js";

/** e = GAU_EXPANSION * D (paper: 2). */
export const GAU_EXPANSION = 2;
/** s = min(GAU_QK_DIM, D) (paper: 128). */
export const GAU_QK_DIM = 128;
/** c = min(MIXED_CHUNK, maxSeqLen) for "gau_mixed" (the paper's default is 256; 64 suits small models). */
export const MIXED_CHUNK = 64;

export type GauKernel = "relu2" | "softmax_plus";

/** The layers u, v, z, o, the scale/offsets and the relative position bias shared by both variants. */
export abstract class GauLayer extends Module implements Attention {
  readonly wu: Linear;
  readonly wv: Linear;
  readonly wz: Linear;
  readonly wo: Linear;
  /** Per-dimension scale and offset of Z, one row per derived query/key: [heads, s]. */
  readonly gamma: Tensor;
  readonly beta: Tensor;
  /** b_d for query-key distance d in [0, biasLen). */
  readonly relBias: Tensor;
  readonly e: number;
  readonly s: number;
  /** The gated linear unit u * (A v) replaces the FFN (sec. 2). */
  readonly includesFFN = true;

  protected constructor(readonly cfg: AttentionConfig, heads: number, biasLen: number) {
    super();
    const D = cfg.dModel;
    this.e = GAU_EXPANSION * D;
    this.s = Math.min(GAU_QK_DIM, D);
    if (cfg.rope && this.s % 2 !== 0) throw new RangeError(`gau: RoPE needs an even query/key size, got s = ${this.s}`);
    // Init roles: u and the shared z are input expansions like an FFN's first layer; v and o take the
    // value and output roles of attention.
    // Built without the layers' default init: the GAU's own init (below) draws the weights, biases stay 0.
    [this.wu, this.wv, this.wz, this.wo] = skipInit(() => [
      this.child("wu", new Linear(D, this.e, cfg.bias, { role: "ffn_in" })),
      this.child("wv", new Linear(D, this.e, cfg.bias, { role: "v" })),
      this.child("wz", new Linear(D, this.s, cfg.bias, { role: "ffn_in" })),
      this.child("wo", new Linear(this.e, D, cfg.bias, { role: "o" })),
    ]);
    this.gamma = this.param("gamma", ops.zeros([heads, this.s]));
    this.beta = this.param("beta", ops.zeros([heads, this.s]));
    this.relBias = this.param("rel_bias", ops.zeros([biasLen]));
    // Code 1: gamma ~ N(0, 0.02), beta = 0; weights N(0, 0.02) as nanoGPT, from a generator seeded by
    // the layer index. A model's init scheme re-draws every weight that declared a role above; gamma,
    // beta and rel_bias keep these values.
    const generator = new RandomGenerator(0x6a0 + cfg.layer);
    for (const t of [this.wu.weight, this.wv.weight, this.wz.weight, this.wo.weight, this.gamma]) normal_(t, 0, 0.02, { generator });
  }

  abstract newState(capacity: number): AttentionState;

  /** qk: the derived queries/keys, each [B, T, s]; v [B, T, e] -> A V [B, T, e]. */
  protected abstract mix(qk: Tensor[], v: Tensor, start: number, state?: AttentionState): Tensor;

  forward(x: Tensor, ctx = SeqContext.causal()): Tensor {
    // The relative bias b_{i-j} reads distances in storage order: positions must be contiguous.
    ctx.require("gau", {});
    const start = ctx.start, state = ctx.state ?? undefined;
    const [B, T] = x.shape;
    const u = ops.silu(this.wu.forward(x));
    const v = ops.silu(this.wv.forward(x));
    const z = ops.silu(this.wz.forward(x));
    let qk = ops.add(ops.mul(ops.unsqueeze(z, 2), this.gamma), this.beta); // [B, T, heads, s]
    if (this.cfg.rope) qk = this.cfg.rope.rotate(qk, start, start + T);
    const parts = ops.split(qk, 1, 2).map((t) => ops.reshape(t, [B, T, this.s]));
    return this.wo.forward(ops.mul(u, this.mix(parts, v, start, state)));
  }

  /** [rows, cols] matrix of b_{i - j + offset}; entries above that diagonal read b_0 (the mask removes them). */
  protected biasMatrix(rows: number, cols: number, offset: number): Tensor {
    const idx = new Int32Array(rows * cols);
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) idx[i * cols + j] = Math.max(0, i - j + offset);
    return ops.reshape(ops.indexSelect(this.relBias, 0, ops.tensor(idx)), [rows, cols]);
  }
}

/** Decoding state of a quadratic GAU: the keys [B, S, s] and values [B, S, e] so far. */
export class GauCache implements AttentionState {
  length = 0;
  private k: Tensor | null = null;
  private v: Tensor | null = null;

  constructor(readonly capacity: number) {}

  canTruncate(n: number): boolean {
    return validTruncate(this, n);
  }

  truncate(n: number): void {
    checkTruncate(this, n);
    if (n === this.length) return;
    this.k = n ? ops.narrow(this.k!, 1, 0, n).detach() : null;
    this.v = n ? ops.narrow(this.v!, 1, 0, n).detach() : null;
    this.length = n;
  }

  append(k: Tensor, v: Tensor): [Tensor, Tensor] {
    const T = k.shape[1];
    if (this.length + T > this.capacity) throw new RangeError(`GAU cache full: ${this.length} + ${T} tokens exceed the context of ${this.capacity}`);
    const ka = this.k ? ops.cat([this.k, k], 1) : k;
    const va = this.v ? ops.cat([this.v, v], 1) : v;
    this.k = ka.detach();
    this.v = va.detach();
    this.length += T;
    return [ka, va];
  }
}

/** Quadratic GAU ("gau": relu^2, "gau_softmax_plus"). */
export class GatedAttentionUnit extends GauLayer {
  constructor(cfg: AttentionConfig, readonly kernel: GauKernel = "relu2") {
    super(cfg, 2, cfg.maxSeqLen);
  }

  newState(capacity: number): GauCache {
    return new GauCache(capacity);
  }

  protected mix([q, k]: Tensor[], v: Tensor, _start: number, state?: AttentionState): Tensor {
    const T = q.shape[1];
    if (state) [k, v] = (state as GauCache).append(k, v);
    const S = k.shape[1], past = S - T;
    if (S > this.cfg.maxSeqLen) throw new RangeError(`gau: ${S} positions exceed maxSeqLen ${this.cfg.maxSeqLen}`);
    const scores = ops.matmul(q, ops.transpose(k, 1, 2)); // [B, T, S]
    const bias = this.biasMatrix(T, S, past);
    if (this.kernel === "relu2") {
      const a = ops.square(ops.relu(ops.add(ops.div(scores, this.cfg.maxSeqLen), bias)));
      return ops.matmul(ops.tril(a, past), v);
    }
    const rowScale = new Float64Array(T);
    for (let i = 0; i < T; i++) rowScale[i] = Math.log(past + i + 1) / Math.log(512);
    const logits = ops.mul(ops.add(ops.div(scores, Math.sqrt(this.s)), bias), ops.tensor(rowScale, { shape: [T, 1], dtype: q.dtype }));
    const future = ops.triu(ops.ones([T, S], { dtype: q.dtype }), past + 1);
    return ops.matmul(ops.softmax(ops.maskedFill(logits, future, -Infinity), -1), v);
  }
}

/**
 * Decoding state of the mixed-chunk GAU (the paper's "FLASH", unrelated to FlashAttention): sum K'^T V / c
 * over finished chunks, and the current chunk's k, k', v.
 */
export class MixedChunkState extends RecurrentState {
  /** [B, 1, s, e] */
  kv: Tensor | null = null;
  /** [k (quadratic), k' (linear), v] of the unfinished chunk, each [B, m, .], m = length mod c. */
  chunk: Tensor[] | null = null;

  constructor() {
    super("gau_mixed");
  }
}

/** FLASH mixed-chunk attention ("gau_mixed"). */
export class MixedChunkGAU extends GauLayer {
  constructor(cfg: AttentionConfig, readonly chunk = Math.min(MIXED_CHUNK, cfg.maxSeqLen)) {
    super(cfg, 4, chunk);
  }

  /** The state is O(c + s e) whatever the length, so it needs no capacity. */
  newState(): MixedChunkState {
    return new MixedChunkState();
  }

  protected mix([qq, kq, ql, kl]: Tensor[], v: Tensor, start: number, state?: AttentionState): Tensor {
    const c = this.chunk, { s, e } = this;
    const [B, T] = v.shape;
    const st = state as MixedChunkState | undefined;
    // Keys/values from the unfinished chunk go first; then the layout is padded with zeros to whole
    // chunks aligned at absolute positions (zero values: padded keys contribute nothing).
    const keys = st?.chunk ? [kq, kl, v].map((t, i) => ops.cat([st.chunk![i], t], 1)) : [kq, kl, v];
    const m = keys[0].shape[1] - T;
    const front = (start - m) % c, L = front + m + T, G = Math.ceil(L / c);
    const layout = (t: Tensor, lead: number): Tensor => {
      const pieces = [ops.zeros([B, lead, t.shape[2]], { dtype: t.dtype }), t, ops.zeros([B, G * c - lead - t.shape[1], t.shape[2]], { dtype: t.dtype })];
      return ops.reshape(ops.cat(pieces.filter((p) => p.shape[1] > 0), 1), [B, G, c, t.shape[2]]);
    };
    const [Kq, Kl, V] = keys.map((t) => layout(t, front));
    const Qq = layout(qq, front + m), Ql = layout(ql, front + m);

    // Local quadratic attention inside each chunk.
    const sim = ops.add(ops.div(ops.matmul(Qq, ops.transpose(Kq, 2, 3)), c), this.biasMatrix(c, c, 0));
    const quad = ops.matmul(ops.tril(ops.square(ops.relu(sim))), V);
    // Global linear attention: chunk g sees sum_{h < g} K'_h^T V_h (exclusive cumsum over chunks).
    const kv = ops.div(ops.matmul(ops.transpose(Kl, 2, 3), V), c); // [B, G, s, e]
    let prev = ops.zeros([B, 1, s, e], { dtype: v.dtype });
    if (G > 1) prev = ops.cat([prev, ops.narrow(ops.cumsum(kv, 1), 1, 0, G - 1)], 1);
    if (st?.kv) prev = ops.add(prev, st.kv);
    const out = ops.add(quad, ops.matmul(Ql, prev));

    if (st) {
      const done = Math.floor(L / c);
      if (done > 0) {
        const finished = ops.sum(ops.narrow(kv, 1, 0, done), 1, true).detach();
        st.kv = st.kv ? ops.add(st.kv, finished).detach() : finished;
      }
      const rest = L - done * c;
      st.chunk = rest > 0 ? [Kq, Kl, V].map((t) => ops.narrow(ops.reshape(t, [B, G * c, t.shape[3]]), 1, done * c, rest).detach()) : null;
      st.length += T;
    }
    return ops.narrow(ops.reshape(out, [B, G * c, e]), 1, front + m, T);
  }
}
