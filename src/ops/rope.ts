// Rotary position embedding (Su et al. 2021, RoFormer eq. 34) in the interleaved-pair convention of
// Meta's Llama and llama2.c: dims (2j, 2j+1) rotate by pos * theta^(-2j/d). Backward rotates by -angle.

import { record } from "../tensor/autograd.js";
import { fmtShape } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import { commonFloat, floatData } from "./util.js";

const tables = new Map<string, { cos: Float64Array; sin: Float64Array }>();

/** cos/sin of pos * theta^(-2j/d), j in [0, d/2), one row per position pos(p), p in [0, n). */
function angles(n: number, pos: (p: number) => number, d: number, theta: number) {
  const half = d / 2;
  const t = { cos: new Float64Array(n * half), sin: new Float64Array(n * half) };
  for (let p = 0; p < n; p++) {
    for (let j = 0; j < half; j++) {
      const a = pos(p) * Math.pow(theta, (-2 * j) / d);
      t.cos[p * half + j] = Math.cos(a);
      t.sin[p * half + j] = Math.sin(a);
    }
  }
  return t;
}

/** The table for positions start .. start + T - 1. Cached. */
function table(start: number, T: number, d: number, theta: number) {
  const key = `${start},${T},${d},${theta}`;
  let t = tables.get(key);
  if (!t) {
    t = angles(T, (p) => start + p, d, theta);
    if (tables.size > 64) tables.clear();
    tables.set(key, t);
  }
  return t;
}

// Tables of explicit positions, kept while the positions array lives: a packed or tree forward passes
// the same SeqContext.positions to q and k of every layer (a positions array is not changed once used).
const explicitTables = new WeakMap<Int32Array, Map<string, { cos: Float64Array; sin: Float64Array }>>();

function explicitTable(pos: Int32Array, d: number, theta: number) {
  let byShape = explicitTables.get(pos);
  if (!byShape) explicitTables.set(pos, (byShape = new Map()));
  const key = `${d},${theta}`;
  let t = byShape.get(key);
  if (!t) byShape.set(key, (t = angles(pos.length, (p) => pos[p], d, theta)));
  return t;
}

/** perRow: the table has one row per (b, p) instead of one per p. */
function rotate(src: Float32Array | Float64Array, dst: Float32Array | Float64Array, B: number, T: number, H: number, d: number, cos: Float64Array, sin: Float64Array, sign: number, perRow: boolean): void {
  const half = d / 2;
  for (let b = 0; b < B; b++) {
    for (let p = 0; p < T; p++) {
      const r = (perRow ? b * T + p : p) * half;
      for (let h = 0; h < H; h++) {
        const o = ((b * T + p) * H + h) * d;
        for (let j = 0; j < half; j++) {
          const c = cos[r + j], s = sign * sin[r + j];
          const x0 = src[o + 2 * j], x1 = src[o + 2 * j + 1];
          dst[o + 2 * j] = x0 * c - x1 * s;
          dst[o + 2 * j + 1] = x0 * s + x1 * c;
        }
      }
    }
  }
}

/**
 * Rotate x of shape [B, T, H, d] for positions start .. start + T - 1, or for explicit per-token
 * positions (Int32Array of length T shared by the batch, or B * T row by row: packing, tree decoding).
 */
export function rope(x: Tensor, start: number | Int32Array = 0, theta = 10000): Tensor {
  const dtype = commonFloat("rope", x);
  if (x.ndim !== 4 || x.shape[3] % 2 !== 0) throw new RangeError(`rope: expected [B, T, H, even d], got ${fmtShape(x.shape)}`);
  const [B, T, H, d] = x.shape;
  const explicit = typeof start !== "number";
  if (explicit && start.length !== T && start.length !== B * T) throw new RangeError(`rope: ${start.length} positions for ${B} x ${T} tokens`);
  const perRow = explicit && start.length !== T;
  const { cos, sin } = explicit ? explicitTable(start, d, theta) : table(start, T, d, theta);
  return rotation(x, cos, sin, 1, perRow);
}

/** x rotated by sign * angle as a differentiable op: its backward is the rotation by -sign * angle (RoPE
 * is orthogonal), recorded as the same op, so gradients of any order exist. */
function rotation(x: Tensor, cos: Float64Array, sin: Float64Array, sign: number, perRow: boolean): Tensor {
  const [B, T, H, d] = x.shape;
  const out = Tensor.empty(x.shape, x.dtype);
  rotate(floatData(x, "rope"), out.data as Float32Array, B, T, H, d, cos, sin, sign, perRow);
  const back = (g: Tensor) => [rotation(g, cos, sin, -sign, perRow)];
  return record(out, "rope", [x], back, [], back);
}
