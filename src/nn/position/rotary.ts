// The rotary position scheme of a model, shared by its attention layers: the frequencies (plain RoPE or
// a scaling scheme from registry.ts), the pair layout, log-n query scaling and ReRoPE. The mixers call
// rotate() on q and k where they build them; attend() is the exact-attention path for schemes whose key
// rotation depends on more than the key's own position (dynamic scaling: on the current length; ReRoPE:
// two streams), which keep pre-RoPE keys in the KV cache and rotate them at each step.

import * as ops from "../../ops/index.js";
import { reropeAttention } from "../../ops/rerope.js";
import type { PositionMap, RopeFrequencies, RopeLayout } from "../../ops/rope.js";
import type { Tensor } from "../../tensor/tensor.js";
import { lognScales } from "./logn.js";
import { ropeScheme } from "./registry.js";
import { baseInvFreq, type RopeScaling } from "./types.js";

/** ReRoPE (Su post 12): relative positions past `window` advance by `leak` per token (0: ReRoPE). */
export interface Rerope { window: number; leak: number }

export interface RotaryConfig {
  theta: number;
  layout?: RopeLayout;
  scaling?: RopeScaling | null;
  rerope?: Rerope | null;
  /** Multiply query i by max(1, log_trainLen(i + 1)) (Su post 11's log n). */
  logn?: boolean;
  /** The training length (the model's maxSeqLen). */
  trainLen: number;
}

/** Keys x [B, Hkv, S, d] rotated at positions 0 .. S - 1 (through map). */
function rotateHeads(x: Tensor, f: RopeFrequencies, map?: PositionMap): Tensor {
  const [B, H, S, d] = x.shape;
  return ops.reshape(ops.rope(ops.reshape(x, [B * H, S, 1, d]), 0, f, map), [B, H, S, d]);
}

export class Rotary {
  private readonly cache = new Map<string, RopeFrequencies>();

  constructor(readonly cfg: RotaryConfig) {}

  /** The scaling's training length: originalMaxSeqLen when given, else the model's. */
  get trainLen(): number {
    return this.cfg.scaling?.originalMaxSeqLen ?? this.cfg.trainLen;
  }

  /** Whether keys go into the KV cache before rotation (and mixers must use attend()). */
  get rawKeys(): boolean {
    return !!this.cfg.rerope || (!!this.cfg.scaling && ropeScheme(this.cfg.scaling).dynamic);
  }

  /** The frequencies of head size d for sequences of seqLen positions (only dynamic schemes depend on it). */
  frequencies(d: number, seqLen: number): RopeFrequencies {
    const { scaling, theta, layout } = this.cfg;
    const s = scaling ? ropeScheme(scaling) : null;
    const n = s?.dynamic ? Math.max(seqLen, this.trainLen) : 0, key = `${d},${n}`;
    let f = this.cache.get(key);
    if (!f) {
      const out = scaling && s ? s.compute({ d, theta, p: scaling, trainLen: this.trainLen, seqLen: n }) : { invFreq: baseInvFreq(d, theta), attentionFactor: 1 };
      f = { invFreq: out.invFreq, mscale: out.attentionFactor, layout: layout ?? "interleaved" };
      if (this.cache.size > 16) this.cache.clear();
      this.cache.set(key, f);
    }
    return f;
  }

  /**
   * x [B, T, H, d] rotated at positions start .. start + T - 1 or explicit ones, for a sequence of
   * seqLen positions; queries (isQuery) also get the log-n scale.
   */
  rotate(x: Tensor, positions: number | Int32Array, seqLen: number, isQuery = false): Tensor {
    const r = ops.rope(x, positions, this.frequencies(x.shape[3], seqLen));
    return isQuery && this.cfg.logn ? this.scaleQueries(r, positions) : r;
  }

  private scaleQueries(q: Tensor, positions: number | Int32Array): Tensor {
    const [B, T] = q.shape;
    const s = lognScales(positions, T, this.trainLen);
    if (!s) return q;
    return ops.mul(q, ops.tensor(s, { shape: s.length === T ? [T, 1, 1] : [B, T, 1, 1], dtype: q.dtype }));
  }

  /**
   * Causal attention of pre-RoPE queries q [B, T, H, d] (the last T of S positions) on pre-RoPE keys and
   * values kh, vh [B, Hkv, S, d] -> [B, H, T, d], rotating both here: the dynamic frequencies for S
   * positions, and with ReRoPE the second stream. core: the exact attention for the plain case.
   */
  attend(q: Tensor, kh: Tensor, vh: Tensor, scale: number, core: (q: Tensor, k: Tensor, v: Tensor) => Tensor): Tensor {
    const S = kh.shape[2], T = q.shape[1], start = S - T;
    const f = this.frequencies(q.shape[3], S), rr = this.cfg.rerope;
    // log-n scales are per position, so they commute with the rotations: applied once for both streams
    const qs = this.cfg.logn ? this.scaleQueries(q, start) : q;
    const q1 = ops.transpose(ops.rope(qs, start, f), 1, 2), k1 = rotateHeads(kh, f);
    if (!rr) return core(q1, k1, vh);
    // stream 2 at positions leak * i + w (1 - leak) and leak * j: their difference is w + leak (i - j - w)
    const q2 = ops.transpose(ops.rope(qs, start, f, { scale: rr.leak, shift: rr.window * (1 - rr.leak) }), 1, 2);
    const k2 = rr.leak === 0 && f.mscale === 1 ? kh : rotateHeads(kh, f, { scale: rr.leak, shift: 0 });
    return reropeAttention(q1, k1, q2, k2, vh, { window: rr.window, scale });
  }
}
