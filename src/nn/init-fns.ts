// In-place initializers, as torch.nn.init: each fills a float tensor (a parameter, or any leaf) and
// returns it, drawing from `generator` (default: the global defaultGenerator). Fans are computed as
// torch's _calculate_fan_in_and_fan_out: a weight is [out, in, ...receptive field].

import { defaultGenerator, type RandomGenerator } from "../tensor/rng.js";
import { fmtShape } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";

export interface InitOptions { generator?: RandomGenerator }
export type FanMode = "fan_in" | "fan_out";
export type Nonlinearity = "linear" | "conv1d" | "conv2d" | "conv3d" | "sigmoid" | "tanh" | "relu" | "leaky_relu" | "selu";
export interface KaimingOptions extends InitOptions {
  /** The negative slope of the rectifier after this layer (leaky_relu only); torch's default 0. */
  a?: number;
  mode?: FanMode;
  nonlinearity?: Nonlinearity;
}

type Floats = Float32Array | Float64Array;

/** Write `fill`'s values into t in logical order (views included); t must be a float leaf. */
function fillWith(t: Tensor, op: string, fill: (out: Floats) => void): Tensor {
  if (t.dtype !== "float32" && t.dtype !== "float64") throw new TypeError(`init.${op}: expected a float32 or float64 tensor, got ${t.dtype}`);
  if (t.node) throw new Error(`init.${op}: ${t} was computed by an op (its values may be saved for backward); initialize a leaf such as a parameter`);
  const data = t.data as Floats;
  if (t.isContiguous) {
    fill(t.offset === 0 && data.length === t.numel ? data : data.subarray(t.offset, t.offset + t.numel));
    return t;
  }
  const vals = new Float64Array(t.numel);
  fill(vals);
  const idx = new Array<number>(t.ndim).fill(0);
  for (let i = 0; i < vals.length; i++) {
    let p = t.offset;
    for (let d = 0; d < t.ndim; d++) p += idx[d] * t.strides[d];
    data[p] = vals[i];
    for (let d = t.ndim - 1; d >= 0 && ++idx[d] === t.shape[d]; d--) idx[d] = 0;
  }
  return t;
}

/** torch.nn.init.calculate_gain: the recommended gain for a nonlinearity. */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case "linear": case "conv1d": case "conv2d": case "conv3d": case "sigmoid": return 1;
    case "tanh": return 5 / 3;
    case "relu": return Math.SQRT2;
    case "leaky_relu": {
      const slope = param ?? 0.01;
      return Math.sqrt(2 / (1 + slope * slope));
    }
    case "selu": return 3 / 4;
    default: throw new RangeError(`calculateGain: unknown nonlinearity ${JSON.stringify(nonlinearity)}; expected one of linear, conv1d, conv2d, conv3d, sigmoid, tanh, relu, leaky_relu, selu`);
  }
}

/** [fanIn, fanOut] of a weight [out, in, ...k]: in * prod(k) and out * prod(k). */
export function calculateFanInAndFanOut(t: Tensor): [number, number] {
  if (t.ndim < 2) throw new RangeError(`fan in and fan out need a tensor of at least 2 dimensions, got ${fmtShape(t.shape)}`);
  const receptive = t.shape.slice(2).reduce((a, b) => a * b, 1);
  return [t.shape[1] * receptive, t.shape[0] * receptive];
}

export function uniform_(t: Tensor, a = 0, b = 1, o: InitOptions = {}): Tensor {
  return fillWith(t, "uniform_", (d) => (o.generator ?? defaultGenerator).uniform(d, a, b));
}

export function normal_(t: Tensor, mean = 0, std = 1, o: InitOptions = {}): Tensor {
  return fillWith(t, "normal_", (d) => (o.generator ?? defaultGenerator).normal(d, mean, std));
}

export const constant_ = (t: Tensor, value: number): Tensor => fillWith(t, "constant_", (d) => d.fill(value));
export const zeros_ = (t: Tensor): Tensor => constant_(t, 0);
export const ones_ = (t: Tensor): Tensor => constant_(t, 1);

/** Glorot & Bengio 2010: U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)). */
export function xavierUniform_(t: Tensor, o: InitOptions & { gain?: number } = {}): Tensor {
  const [fanIn, fanOut] = calculateFanInAndFanOut(t);
  const a = (o.gain ?? 1) * Math.sqrt(6 / (fanIn + fanOut));
  return uniform_(t, -a, a, o);
}

/** Glorot & Bengio 2010: N(0, std²), std = gain * sqrt(2 / (fan_in + fan_out)). */
export function xavierNormal_(t: Tensor, o: InitOptions & { gain?: number } = {}): Tensor {
  const [fanIn, fanOut] = calculateFanInAndFanOut(t);
  return normal_(t, 0, (o.gain ?? 1) * Math.sqrt(2 / (fanIn + fanOut)), o);
}

/** He et al. 2015: std = gain / sqrt(fan), gain from the nonlinearity (default leaky_relu with slope a). */
function kaimingStd(t: Tensor, o: KaimingOptions): number {
  const [fanIn, fanOut] = calculateFanInAndFanOut(t);
  const fan = (o.mode ?? "fan_in") === "fan_in" ? fanIn : fanOut;
  return fan === 0 ? 0 : calculateGain(o.nonlinearity ?? "leaky_relu", o.a ?? 0) / Math.sqrt(fan);
}

/** U(-b, b), b = sqrt(3) * gain / sqrt(fan); with a = sqrt(5) this is torch.nn.Linear's U(±1/sqrt(fan_in)). */
export function kaimingUniform_(t: Tensor, o: KaimingOptions = {}): Tensor {
  const bound = Math.sqrt(3) * kaimingStd(t, o);
  return uniform_(t, -bound, bound, o);
}

/** N(0, std²), std = gain / sqrt(fan). */
export function kaimingNormal_(t: Tensor, o: KaimingOptions = {}): Tensor {
  return normal_(t, 0, kaimingStd(t, o), o);
}

/** erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7). */
function erf(x: number): number {
  const s = Math.sign(x), z = Math.abs(x), k = 1 / (1 + 0.3275911 * z);
  const poly = k * (0.254829592 + k * (-0.284496736 + k * (1.421413741 + k * (-1.453152027 + k * 1.061405429))));
  return s * (1 - poly * Math.exp(-z * z));
}

/** erfinv by Giles 2010 ("Approximating the erfinv function", the single-precision polynomials). */
function erfinv(y: number): number {
  let w = -Math.log((1 - y) * (1 + y)), p: number;
  if (w < 5) {
    w -= 2.5;
    p = 2.81022636e-8;
    for (const c of [3.43273939e-7, -3.5233877e-6, -4.39150654e-6, 0.00021858087, -0.00125372503, -0.00417768164, 0.246640727, 1.50140941]) p = c + p * w;
  } else {
    w = Math.sqrt(w) - 3;
    p = -0.000200214257;
    for (const c of [0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613, 0.00943887047, 1.00167406, 2.83297682]) p = c + p * w;
  }
  return p * y;
}

/**
 * N(mean, std²) truncated to [a, b] (absolute bounds, as torch's trunc_normal_), by the inverse CDF:
 * a uniform draw between the bounds' CDF values mapped back, so it terminates for any bounds.
 */
export function truncNormal_(t: Tensor, o: InitOptions & { mean?: number; std?: number; a?: number; b?: number } = {}): Tensor {
  const { mean = 0, std = 1, a = -2, b = 2 } = o;
  if (!(a < b) || !(std > 0)) throw new RangeError(`truncNormal_: expected a < b and std > 0, got a = ${a}, b = ${b}, std = ${std}`);
  const cdf = (x: number) => 0.5 * (1 + erf((x - mean) / std / Math.SQRT2));
  const lo = 2 * cdf(a) - 1, hi = 2 * cdf(b) - 1;
  return fillWith(t, "truncNormal_", (d) => {
    (o.generator ?? defaultGenerator).uniform(d, lo, hi);
    for (let i = 0; i < d.length; i++) d[i] = Math.min(b, Math.max(a, mean + std * Math.SQRT2 * erfinv(Math.max(-1 + 1e-12, Math.min(1 - 1e-12, d[i])))));
  });
}
