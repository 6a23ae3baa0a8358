// Rotary position embedding (Su et al. 2021, RoFormer eq. 34) in the interleaved-pair convention of
// Meta's Llama and llama2.c: dims (2j, 2j+1) rotate by pos * theta^(-2j/d). Backward rotates by -angle.

import { record } from "../tensor/autograd.js";
import { fmtShape } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";
import { commonFloat, floatData, output } from "./util.js";

const tables = new Map<string, { cos: Float64Array; sin: Float64Array }>();

/** cos/sin of pos * theta^(-2j/d) for pos in [start, start + T), j in [0, d/2). Cached. */
function table(start: number, T: number, d: number, theta: number) {
  const key = `${start},${T},${d},${theta}`;
  let t = tables.get(key);
  if (!t) {
    const half = d / 2;
    t = { cos: new Float64Array(T * half), sin: new Float64Array(T * half) };
    for (let p = 0; p < T; p++) {
      for (let j = 0; j < half; j++) {
        const a = (start + p) * Math.pow(theta, (-2 * j) / d);
        t.cos[p * half + j] = Math.cos(a);
        t.sin[p * half + j] = Math.sin(a);
      }
    }
    if (tables.size > 64) tables.clear();
    tables.set(key, t);
  }
  return t;
}

function rotate(src: Float32Array | Float64Array, dst: Float32Array | Float64Array, B: number, T: number, H: number, d: number, cos: Float64Array, sin: Float64Array, sign: number): void {
  const half = d / 2;
  for (let b = 0; b < B; b++) {
    for (let p = 0; p < T; p++) {
      for (let h = 0; h < H; h++) {
        const o = ((b * T + p) * H + h) * d;
        for (let j = 0; j < half; j++) {
          const c = cos[p * half + j], s = sign * sin[p * half + j];
          const x0 = src[o + 2 * j], x1 = src[o + 2 * j + 1];
          dst[o + 2 * j] = x0 * c - x1 * s;
          dst[o + 2 * j + 1] = x0 * s + x1 * c;
        }
      }
    }
  }
}

/** Rotate x of shape [B, T, H, d] for positions start .. start + T - 1. */
export function rope(x: Tensor, start = 0, theta = 10000): Tensor {
  const dtype = commonFloat("rope", x);
  if (x.ndim !== 4 || x.shape[3] % 2 !== 0) throw new RangeError(`rope: expected [B, T, H, even d], got ${fmtShape(x.shape)}`);
  const [B, T, H, d] = x.shape;
  const { cos, sin } = table(start, T, d, theta);
  const out = output(x.shape, dtype);
  rotate(floatData(x, "rope"), out.data as Float32Array, B, T, H, d, cos, sin, 1);
  return record(out, "rope", [x], (g) => {
    const gx = output(x.shape, dtype);
    rotate(floatData(g, "rope"), gx.data as Float32Array, B, T, H, d, cos, sin, -1);
    return [gx];
  });
}
