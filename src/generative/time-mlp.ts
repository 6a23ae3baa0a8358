// A time-conditioned MLP for low-dimensional data (the 2D toys): the input x concatenated with a
// sinusoidal embedding of t, then Linear + SiLU layers. It serves as an ε-predictor (DDPM, DDIM, PF-ODE,
// t = the step index) and as a velocity field (rectified flow, t in [0, 1], scaled by timeScale).

import { Linear } from "../nn/layers.js";
import { Module } from "../nn/module.js";
import * as ops from "../ops/index.js";
import { floatData } from "../ops/util.js";
import type { RandomGenerator } from "../tensor/rng.js";
import type { Tensor } from "../tensor/tensor.js";

/**
 * Sinusoidal embedding of scalar times t [B] -> [B, dim]: [cos(t f_j), sin(t f_j)], f_j = maxPeriod^(-j/half),
 * j < half = dim/2 (the Transformer's positional encoding, Vaswani et al. 2017 sec. 3.5, as ADM's
 * timestep_embedding orders it: cosines first). t is data here, not a parameter: no gradient flows to it.
 */
export function timestepEmbedding(t: Tensor, dim: number, maxPeriod = 10000): Tensor {
  if (!Number.isSafeInteger(dim) || dim < 2 || dim % 2) throw new RangeError(`timestepEmbedding: dim must be an even integer >= 2, got ${dim}`);
  if (t.ndim !== 1) throw new RangeError(`timestepEmbedding: t must be a [B] tensor, got shape [${t.shape.join(", ")}]`);
  const tv = floatData(t, "timestepEmbedding"), B = t.shape[0], half = dim / 2;
  const out = new (t.dtype === "float64" ? Float64Array : Float32Array)(B * dim);
  for (let j = 0; j < half; j++) {
    const f = Math.exp((-Math.log(maxPeriod) * j) / half);
    for (let b = 0; b < B; b++) {
      out[b * dim + j] = Math.cos(tv[b] * f);
      out[b * dim + half + j] = Math.sin(tv[b] * f);
    }
  }
  return ops.tensor(out, { shape: [B, dim] });
}

export interface TimeMlpOptions {
  hidden?: number;
  /** Number of hidden Linear + SiLU layers (default 3). */
  layers?: number;
  embDim?: number;
  /** t is multiplied by this before the embedding (1000 for t in [0, 1], as continuous-time models do). */
  timeScale?: number;
  generator?: RandomGenerator;
}

export class TimeMLP extends Module {
  private readonly net: Linear[];
  readonly embDim: number;
  readonly timeScale: number;

  constructor(readonly dataDim: number, o: TimeMlpOptions = {}) {
    super();
    const { hidden = 256, layers = 3, embDim = 64, timeScale = 1, generator } = o;
    if (!Number.isSafeInteger(layers) || layers < 1) throw new RangeError(`TimeMLP: layers must be a positive integer, got ${layers}`);
    this.embDim = embDim;
    this.timeScale = timeScale;
    const dims = [dataDim + embDim, ...new Array(layers).fill(hidden), dataDim];
    this.net = this.childList("net", dims.slice(1).map((d, i) => new Linear(dims[i], d, true, { generator })));
  }

  forward(x: Tensor, t: Tensor): Tensor {
    if (x.ndim !== 2 || x.shape[1] !== this.dataDim) throw new RangeError(`TimeMLP: x must be [B, ${this.dataDim}], got [${x.shape.join(", ")}]`);
    if (t.shape[0] !== x.shape[0]) throw new RangeError(`TimeMLP: t has ${t.shape[0]} entries for ${x.shape[0]} rows`);
    let h = ops.cat([x, timestepEmbedding(this.timeScale === 1 ? t : ops.mul(t, this.timeScale), this.embDim)], 1);
    this.net.forEach((l, i) => { h = l.forward(h); if (i < this.net.length - 1) h = ops.silu(h); });
    return h;
  }
}
