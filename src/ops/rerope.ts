// ReRoPE / Leaky ReRoPE attention (Su 2023, "Transformer升级之路 12", kexue.fm/archives/9708) in FlashAttention's
// O(N) memory. The relative position of query i and key j is i - j inside the window (i - j < w) and
// w + s (i - j - w) past it (s = 0: ReRoPE; 0 < s < 1: Leaky ReRoPE; s > 1: the training side of inverse
// Leaky ReRoPE, post 13). RoPE scores depend on positions through differences only, so the caller gives
// two rotations of the same q, k: stream 1 at the true positions (q1, k1) and stream 2 at positions
// s * i + w (1 - s) and s * j (q2, k2), whose difference is the clipped one.
// The softmax over the union of the two visible sets is two flash passes merged by their logsumexps
// (as FlashDecoding merges split-KV partials): stream 1 is causal with a sliding window w; stream 2 sees
// keys j <= i - w, i.e. the causal mask on keys 0 .. S - w - 1 with the queries aligned w positions later.
// The backward of each pass needs only the merged O and logsumexp L: FA2's backward recomputes
// P = exp(S - L) and D = rowsum(dO * O), which are then the merged softmax's own.

import type { FlashArgs, FloatArray } from "../backend/backend.js";
import { backend } from "../backend/registry.js";
import { record } from "../tensor/autograd.js";
import { Tensor } from "../tensor/tensor.js";
import { attentionShapes } from "./attention.js";
import { commonFloat, floatData, wrap } from "./util.js";

export interface ReropeOptions {
  /** Window w >= 1: relative positions below w are exact. */
  window: number;
  /** Defaults to 1/sqrt(d). */
  scale?: number;
}

/** The first n rows of every [S, d] block of x [G, S, d] (contiguous), as a new contiguous array. */
function leadingRows(x: FloatArray, G: number, S: number, n: number, d: number): FloatArray {
  const out = new (x.constructor as Float32ArrayConstructor)(G * n * d);
  for (let g = 0; g < G; g++) out.set(x.subarray(g * S * d, (g * S + n) * d), g * n * d);
  return out;
}

/**
 * Causal attention of queries q1, q2 [B, H, Tq, d] on keys k1, k2 and values v [B, Hkv, S, d] (the
 * queries are the last Tq of the S positions): a pair with i - j < window scores q1 . k1, the others
 * q2 . k2. Gradients reach all five inputs.
 */
export function reropeAttention(q1: Tensor, k1: Tensor, q2: Tensor, k2: Tensor, v: Tensor, opts: ReropeOptions): Tensor {
  const dtype = commonFloat("reropeAttention", q1, k1, q2, k2, v);
  const [B, H, Hkv, Tq, S, d] = attentionShapes("reropeAttention", q1, k1, v);
  if (q2.shape.some((s, i) => s !== q1.shape[i]) || k2.shape.some((s, i) => s !== k1.shape[i])) {
    throw new RangeError(`reropeAttention: the second stream must have the first's shapes (q ${q1.shape}, k ${k1.shape}), got q ${q2.shape}, k ${k2.shape}`);
  }
  const w = opts.window;
  if (!Number.isInteger(w) || w < 1) throw new RangeError(`reropeAttention: window must be an integer >= 1, got ${w}`);
  const scale = opts.scale ?? 1 / Math.sqrt(d);
  const vd = floatData(v, "reropeAttention");
  const base = { B, H, Hkv, Tq, d, scale, causal: true, cuSeqlens: null, blockMask: null };
  const a: FlashArgs = { ...base, S, window: w, q: floatData(q1, "reropeAttention"), k: floatData(k1, "reropeAttention"), v: vd, o: Tensor.empty(q1.shape, dtype).data as FloatArray, lse: Tensor.empty([B, H, Tq], dtype).data as FloatArray };
  backend().flashForward(a);
  const Sb = S - w, G = B * Hkv;
  const b: FlashArgs | null = Sb > 0 ? {
    ...base, S: Sb, window: 0, q: floatData(q2, "reropeAttention"), k: leadingRows(floatData(k2, "reropeAttention"), G, S, Sb, d), v: leadingRows(vd, G, S, Sb, d),
    o: Tensor.empty(q1.shape, dtype).data as FloatArray, lse: Tensor.empty([B, H, Tq], dtype).data as FloatArray,
  } : null;
  if (b) backend().flashForward(b);
  // O = (e^(L1) O1 + e^(L2) O2) / (e^(L1) + e^(L2)); stream 1 always sees the query's own key (L1 finite)
  const out = Tensor.empty(q1.shape, dtype), lse = Tensor.empty([B, H, Tq], dtype);
  const od = out.data as FloatArray, ld = lse.data as FloatArray;
  for (let r = 0; r < B * H * Tq; r++) {
    const l1 = a.lse[r], l2 = b ? b.lse[r] : -Infinity;
    const m = Math.max(l1, l2), e1 = Math.exp(l1 - m), e2 = Math.exp(l2 - m), L = m + Math.log(e1 + e2);
    const w1 = Math.exp(l1 - L), w2 = Math.exp(l2 - L);
    for (let x = r * d; x < (r + 1) * d; x++) od[x] = w1 * a.o[x] + (b ? w2 * b.o[x] : 0);
    ld[r] = L;
  }
  const saved = [wrap(a.q, q1.shape, dtype), wrap(a.k, k1.shape, dtype), wrap(vd, v.shape, dtype), out, lse];
  if (b) saved.push(wrap(b.q, q2.shape, dtype), wrap(b.k, [B, Hkv, Sb, d], dtype), wrap(b.v, [B, Hkv, Sb, d], dtype));
  return record(out, "rerope_attention", [q1, k1, q2, k2, v], (g) => {
    const dO = floatData(g, "reropeAttention");
    const grad = (t: Tensor) => Tensor.empty(t.shape, dtype);
    const gq1 = grad(q1), gk1 = grad(k1), gv = grad(v), gq2 = Tensor.zeros(q2.shape, dtype), gk2 = Tensor.zeros(k2.shape, dtype);
    backend().flashBackward({ ...a, o: od, lse: ld, dO, dq: gq1.data as FloatArray, dk: gk1.data as FloatArray, dv: gv.data as FloatArray });
    if (b) {
      const dk = new (od.constructor as Float32ArrayConstructor)(G * Sb * d), dv = new (od.constructor as Float32ArrayConstructor)(G * Sb * d);
      backend().flashBackward({ ...b, o: od, lse: ld, dO, dq: gq2.data as FloatArray, dk, dv });
      const k2g = gk2.data as FloatArray, vg = gv.data as FloatArray;
      for (let gi = 0; gi < G; gi++) {
        k2g.set(dk.subarray(gi * Sb * d, (gi + 1) * Sb * d), gi * S * d);
        for (let x = 0; x < Sb * d; x++) vg[gi * S * d + x] += dv[gi * Sb * d + x];
      }
    }
    return [gq1, gk1, gq2, gk2, gv];
  }, saved);
}
