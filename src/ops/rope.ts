// Rotary position embedding (Su et al. 2021, RoFormer eq. 34): the pair (x_a, x_b) of frequency t rotates by
// the angle pos * invFreq[t]. Two pairings (layouts): "interleaved" pairs dims (2t, 2t+1) as Meta's Llama
// and llama2.c do; "half" pairs (t, t + d/2) as HF's rotate_half and GPT-NeoX do (the weight rows of q and
// k are permuted between the two, models/hf/weights.ts). The backward is the transposed rotation (by
// -angle, with the same magnitude mscale), recorded as the same op so gradients of any order exist.
// Position schemes (nn/position/) give the frequencies, an attention factor folded into cos and sin as
// HF's YaRN does, and an affine map of the positions (ReRoPE's second stream rotates at s * pos + b).

import { record } from "../tensor/autograd.js";
import { fmtShape } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import { commonFloat, floatData } from "./util.js";

export type RopeLayout = "interleaved" | "half";

/** What a position scheme hands the rotation: d/2 inverse frequencies, a magnitude, the pairing. */
export interface RopeFrequencies {
  invFreq: Float64Array;
  /** Multiplies cos and sin (HF's attention_factor for YaRN / LongRoPE); default 1. */
  mscale?: number;
  layout?: RopeLayout;
}

/** Positions used as scale * pos + shift (default 1, 0). */
export interface PositionMap { scale: number; shift: number }

type Table = { cos: Float64Array; sin: Float64Array };

/** theta^(-2t/d) for t in [0, d/2): plain RoPE's frequencies (RoFormer eq. 15), one array per (d, theta). */
export function defaultInvFreq(d: number, theta: number): Float64Array {
  const key = `${d},${theta}`;
  let f = plainFreqs.get(key);
  if (!f) {
    f = new Float64Array(d / 2);
    for (let t = 0; t < d / 2; t++) f[t] = Math.pow(theta, (-2 * t) / d);
    if (plainFreqs.size > 64) plainFreqs.clear();
    plainFreqs.set(key, f);
  }
  return f;
}
const plainFreqs = new Map<string, Float64Array>();

function angles(n: number, pos: (p: number) => number, f: Float64Array, m: number, map: PositionMap): Table {
  const half = f.length;
  const t: Table = { cos: new Float64Array(n * half), sin: new Float64Array(n * half) };
  for (let p = 0; p < n; p++) {
    const x = map.scale * pos(p) + map.shift;
    for (let j = 0; j < half; j++) {
      const a = x * f[j];
      t.cos[p * half + j] = m * Math.cos(a);
      t.sin[p * half + j] = m * Math.sin(a);
    }
  }
  return t;
}

// Tables per frequency array: implicit ranges by (start, T, mscale, map); explicit positions while the
// positions array lives (a packed or tree forward passes the same SeqContext.positions to every layer).
const cache = new WeakMap<Float64Array, { ranges: Map<string, Table>; explicit: WeakMap<Int32Array, Map<string, Table>> }>();

function table(f: Float64Array, m: number, map: PositionMap, start: number | Int32Array, T: number): Table {
  let c = cache.get(f);
  if (!c) cache.set(f, (c = { ranges: new Map(), explicit: new WeakMap() }));
  const key = `${m},${map.scale},${map.shift}`;
  if (typeof start === "number") {
    const rk = `${start},${T},${key}`;
    let t = c.ranges.get(rk);
    if (!t) {
      t = angles(T, (p) => start + p, f, m, map);
      if (c.ranges.size > 64) c.ranges.clear();
      c.ranges.set(rk, t);
    }
    return t;
  }
  let byKey = c.explicit.get(start);
  if (!byKey) c.explicit.set(start, (byKey = new Map()));
  let t = byKey.get(key);
  if (!t) byKey.set(key, (t = angles(start.length, (p) => start[p], f, m, map)));
  return t;
}

/** perRow: the table has one row per (b, p) instead of one per p; a and b index the pair of frequency j. */
function rotate(src: Float32Array | Float64Array, dst: Float32Array | Float64Array, B: number, T: number, H: number, d: number, tb: Table, sign: number, perRow: boolean, layout: RopeLayout): void {
  const half = d / 2, { cos, sin } = tb;
  const il = layout === "interleaved";
  for (let b = 0; b < B; b++) {
    for (let p = 0; p < T; p++) {
      const r = (perRow ? b * T + p : p) * half;
      for (let h = 0; h < H; h++) {
        const o = ((b * T + p) * H + h) * d;
        for (let j = 0; j < half; j++) {
          const c = cos[r + j], s = sign * sin[r + j];
          const ia = o + (il ? 2 * j : j), ib = il ? ia + 1 : ia + half;
          const x0 = src[ia], x1 = src[ib];
          dst[ia] = x0 * c - x1 * s;
          dst[ib] = x0 * s + x1 * c;
        }
      }
    }
  }
}

/**
 * Rotate x of shape [B, T, H, d] for positions start .. start + T - 1, or for explicit per-token positions
 * (Int32Array of length T shared by the batch, or B * T row by row: packing, tree decoding). freqs: a theta
 * (plain RoPE, interleaved) or a scheme's frequencies; map: positions used as scale * pos + shift.
 */
export function rope(x: Tensor, start: number | Int32Array = 0, freqs: number | RopeFrequencies = 10000, map: PositionMap = { scale: 1, shift: 0 }): Tensor {
  commonFloat("rope", x);
  if (x.ndim !== 4 || x.shape[3] % 2 !== 0) throw new RangeError(`rope: expected [B, T, H, even d], got ${fmtShape(x.shape)}`);
  const [B, T, , d] = x.shape;
  const fr = typeof freqs === "number" ? { invFreq: defaultInvFreq(d, freqs) } : freqs;
  if (fr.invFreq.length !== d / 2) throw new RangeError(`rope: ${fr.invFreq.length} frequencies for head size ${d} (expected ${d / 2})`);
  const explicit = typeof start !== "number";
  if (explicit && start.length !== T && start.length !== B * T) throw new RangeError(`rope: ${start.length} positions for ${B} x ${T} tokens`);
  const tb = table(fr.invFreq, fr.mscale ?? 1, map, start, T);
  return rotation(x, tb, 1, explicit && start.length !== T, fr.layout ?? "interleaved");
}

function rotation(x: Tensor, tb: Table, sign: number, perRow: boolean, layout: RopeLayout): Tensor {
  const [B, T, H, d] = x.shape;
  const out = Tensor.empty(x.shape, x.dtype);
  rotate(floatData(x, "rope"), out.data as Float32Array, B, T, H, d, tb, sign, perRow, layout);
  const back = (g: Tensor) => [rotation(g, tb, -sign, perRow, layout)];
  return record(out, "rope", [x], back, [], back);
}
