// Tensor creation: from values, constants, ranges and seeded random draws.

import { dtypeOf, type DType, type Storage } from "../tensor/dtype.js";
import { allocStorage } from "../tensor/recycle.js";
import { trackStorage } from "../tensor/memory.js";
import { defaultGenerator, type RandomGenerator } from "../tensor/rng.js";
import { fmtShape, numel, type Shape } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";

export interface CreateOptions { dtype?: DType; requiresGrad?: boolean }

type Nested = number | boolean | Nested[];

function inferShape(v: Nested): number[] {
  const shape: number[] = [];
  let cur: Nested = v;
  while (Array.isArray(cur)) { shape.push(cur.length); cur = cur[0]; }
  return shape;
}

function flattenInto(v: Nested, shape: number[], depth: number, out: number[]): void {
  if (depth === shape.length) {
    if (Array.isArray(v)) throw new RangeError("tensor: ragged nested array (deeper than the first element)");
    out.push(Number(v));
    return;
  }
  if (!Array.isArray(v) || v.length !== shape[depth]) throw new RangeError(`tensor: ragged nested array, expected length ${shape[depth]} at depth ${depth}`);
  for (const e of v) flattenInto(e, shape, depth + 1, out);
}

/** Build a tensor from nested arrays, a number, or a typed array (with a shape). */
export function tensor(values: Nested | Storage, opts: CreateOptions & { shape?: Shape } = {}): Tensor {
  let data: Storage;
  let shape: number[];
  if (ArrayBuffer.isView(values)) {
    const dtype = opts.dtype ?? dtypeOf(values);
    shape = opts.shape ? [...opts.shape] : [values.length];
    if (numel(shape) !== values.length) throw new RangeError(`tensor: shape ${fmtShape(shape)} needs ${numel(shape)} values, got ${values.length}`);
    data = dtype === dtypeOf(values) ? values : allocStorage(dtype, values.length);
    if (data !== values) data.set(values);
  } else {
    shape = inferShape(values);
    const flat: number[] = [];
    flattenInto(values, shape, 0, flat);
    if (opts.shape) {
      if (numel(opts.shape) !== flat.length) throw new RangeError(`tensor: shape ${fmtShape(opts.shape)} needs ${numel(opts.shape)} values, got ${flat.length}`);
      shape = [...opts.shape];
    }
    data = allocStorage(opts.dtype ?? "float32", flat.length);
    data.set(flat);
  }
  trackStorage(data);
  const t = new Tensor(data, shape, { dtype: opts.dtype ?? dtypeOf(data) });
  t.requiresGrad = opts.requiresGrad ?? false;
  return t;
}

export function full(shape: Shape, value: number, opts: CreateOptions = {}): Tensor {
  const t = Tensor.empty(shape, opts.dtype ?? "float32");
  t.data.fill(value);
  t.requiresGrad = opts.requiresGrad ?? false;
  return t;
}

/** A tensor with arbitrary contents (torch.empty): for code that writes every element before reading. */
export function empty(shape: Shape, opts: CreateOptions = {}): Tensor {
  const t = Tensor.empty(shape, opts.dtype ?? "float32");
  t.requiresGrad = opts.requiresGrad ?? false;
  return t;
}

export const zeros = (shape: Shape, opts: CreateOptions = {}) => full(shape, 0, opts);
export const ones = (shape: Shape, opts: CreateOptions = {}) => full(shape, 1, opts);
export const onesLike = (t: Tensor) => full(t.shape, 1, { dtype: t.dtype });
export const zerosLike = (t: Tensor) => full(t.shape, 0, { dtype: t.dtype });

export function arange(start: number, end?: number, step = 1, opts: CreateOptions = {}): Tensor {
  const [lo, hi] = end === undefined ? [0, start] : [start, end];
  if (step === 0) throw new RangeError("arange: step must be nonzero");
  const n = Math.max(0, Math.ceil((hi - lo) / step));
  const t = Tensor.empty([n], opts.dtype ?? "float32");
  for (let i = 0; i < n; i++) t.data[i] = lo + i * step;
  return t;
}

function random(shape: Shape, opts: CreateOptions & { generator?: RandomGenerator }, draw: (g: RandomGenerator, d: Float32Array | Float64Array) => void): Tensor {
  const dtype = opts.dtype ?? "float32";
  if (dtype !== "float32" && dtype !== "float64") throw new TypeError(`random tensors are float32 or float64, not ${dtype}`);
  const t = Tensor.empty(shape, dtype);  // draw() writes every element
  draw(opts.generator ?? defaultGenerator, t.data as Float32Array | Float64Array);
  t.requiresGrad = opts.requiresGrad ?? false;
  return t;
}

/** Standard normal draws (Philox + Box-Muller), scaled by std and shifted by mean. */
export function randn(shape: Shape, opts: CreateOptions & { generator?: RandomGenerator; mean?: number; std?: number } = {}): Tensor {
  return random(shape, opts, (g, d) => g.normal(d, opts.mean ?? 0, opts.std ?? 1));
}

/** Uniform draws in (low, high). */
export function rand(shape: Shape, opts: CreateOptions & { generator?: RandomGenerator; low?: number; high?: number } = {}): Tensor {
  return random(shape, opts, (g, d) => g.uniform(d, opts.low ?? 0, opts.high ?? 1));
}

export function randint(high: number, shape: Shape, opts: { generator?: RandomGenerator } = {}): Tensor {
  const t = Tensor.empty(shape, "int32");
  (opts.generator ?? defaultGenerator).randint(t.data as Int32Array, high);
  return t;
}
