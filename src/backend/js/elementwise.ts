// Reference elementwise kernels: unary ops with their derivatives, broadcasting binary ops, where.

import type { BinaryOp, FloatArray, UnaryOp, UnaryParams } from "../backend.js";

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/**
 * erf to near float64 precision (the usual 1e-7 approximations would spoil float64 gradcheck): the
 * Maclaurin series for |x| < 3, the continued fraction of erfc beyond (Abramowitz & Stegun 7.1.5, 7.1.14).
 */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    let sum = ax, term = ax;
    const x2 = ax * ax;
    for (let n = 1; n < 200; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    const r = (2 / Math.sqrt(Math.PI)) * sum;
    return x < 0 ? -r : r;
  }
  // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...)))) (Lentz-free backward evaluation)
  let f = ax;
  for (let n = 60; n >= 1; n--) f = ax + (n / 2) / f;
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return x < 0 ? erfc - 1 : 1 - erfc;
}

function softplus(x: number, beta: number, threshold: number): number {
  const bx = beta * x;
  return bx > threshold ? x : Math.log1p(Math.exp(bx)) / beta;
}

export function unary(op: UnaryOp, x: FloatArray, y: FloatArray, n: number, p: UnaryParams): void {
  const a = p.a ?? 0, b = p.b ?? 0;
  switch (op) {
    case "neg": for (let i = 0; i < n; i++) y[i] = -x[i]; return;
    case "exp": for (let i = 0; i < n; i++) y[i] = Math.exp(x[i]); return;
    case "log": for (let i = 0; i < n; i++) y[i] = Math.log(x[i]); return;
    case "sqrt": for (let i = 0; i < n; i++) y[i] = Math.sqrt(x[i]); return;
    case "rsqrt": for (let i = 0; i < n; i++) y[i] = 1 / Math.sqrt(x[i]); return;
    case "abs": for (let i = 0; i < n; i++) y[i] = Math.abs(x[i]); return;
    case "square": for (let i = 0; i < n; i++) y[i] = x[i] * x[i]; return;
    case "tanh": for (let i = 0; i < n; i++) y[i] = Math.tanh(x[i]); return;
    case "sigmoid": for (let i = 0; i < n; i++) y[i] = 1 / (1 + Math.exp(-x[i])); return;
    case "relu": for (let i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0; return;
    // GELU (Hendrycks & Gimpel 2016): exact x*Phi(x), and the tanh approximation (their eq. 2).
    case "gelu_erf": for (let i = 0; i < n; i++) y[i] = 0.5 * x[i] * (1 + erf(x[i] * INV_SQRT2)); return;
    case "gelu_tanh":
      for (let i = 0; i < n; i++) {
        const v = x[i];
        y[i] = 0.5 * v * (1 + Math.tanh(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v)));
      }
      return;
    case "silu": for (let i = 0; i < n; i++) y[i] = x[i] / (1 + Math.exp(-x[i])); return;
    case "softplus": for (let i = 0; i < n; i++) y[i] = softplus(x[i], a, b); return;
    case "elu": for (let i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : a * Math.expm1(x[i]); return;
    case "clamp": for (let i = 0; i < n; i++) y[i] = Math.min(Math.max(x[i], a), b); return;
    case "powScalar": for (let i = 0; i < n; i++) y[i] = Math.pow(x[i], a); return;
    case "sin": for (let i = 0; i < n; i++) y[i] = Math.sin(x[i]); return;
    case "cos": for (let i = 0; i < n; i++) y[i] = Math.cos(x[i]); return;
  }
}

export function unaryBackward(op: UnaryOp, x: FloatArray, y: FloatArray, gy: FloatArray, gx: FloatArray, n: number, p: UnaryParams): void {
  const a = p.a ?? 0, b = p.b ?? 0;
  switch (op) {
    case "neg": for (let i = 0; i < n; i++) gx[i] = -gy[i]; return;
    case "exp": for (let i = 0; i < n; i++) gx[i] = gy[i] * y[i]; return;
    case "log": for (let i = 0; i < n; i++) gx[i] = gy[i] / x[i]; return;
    case "sqrt": for (let i = 0; i < n; i++) gx[i] = gy[i] * 0.5 / y[i]; return;
    case "rsqrt": for (let i = 0; i < n; i++) gx[i] = -0.5 * gy[i] * y[i] * y[i] * y[i]; return;
    case "abs": for (let i = 0; i < n; i++) gx[i] = gy[i] * Math.sign(x[i]); return;
    case "square": for (let i = 0; i < n; i++) gx[i] = 2 * gy[i] * x[i]; return;
    case "tanh": for (let i = 0; i < n; i++) gx[i] = gy[i] * (1 - y[i] * y[i]); return;
    case "sigmoid": for (let i = 0; i < n; i++) gx[i] = gy[i] * y[i] * (1 - y[i]); return;
    case "relu": for (let i = 0; i < n; i++) gx[i] = x[i] > 0 ? gy[i] : 0; return;
    case "gelu_erf":
      for (let i = 0; i < n; i++) {
        const v = x[i];
        gx[i] = gy[i] * (0.5 * (1 + erf(v * INV_SQRT2)) + v * INV_SQRT_2PI * Math.exp(-0.5 * v * v));
      }
      return;
    case "gelu_tanh":
      for (let i = 0; i < n; i++) {
        const v = x[i];
        const t = Math.tanh(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v));
        const dt = (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * v * v);
        gx[i] = gy[i] * (0.5 * (1 + t) + 0.5 * v * dt);
      }
      return;
    case "silu":
      for (let i = 0; i < n; i++) {
        const s = 1 / (1 + Math.exp(-x[i]));
        gx[i] = gy[i] * s * (1 + x[i] * (1 - s));
      }
      return;
    case "softplus":
      for (let i = 0; i < n; i++) gx[i] = a * x[i] > b ? gy[i] : gy[i] / (1 + Math.exp(-a * x[i]));
      return;
    case "elu": for (let i = 0; i < n; i++) gx[i] = x[i] > 0 ? gy[i] : gy[i] * a * Math.exp(x[i]); return;
    case "clamp": for (let i = 0; i < n; i++) gx[i] = x[i] >= a && x[i] <= b ? gy[i] : 0; return;
    case "powScalar": for (let i = 0; i < n; i++) gx[i] = gy[i] * a * Math.pow(x[i], a - 1); return;
    case "sin": for (let i = 0; i < n; i++) gx[i] = gy[i] * Math.cos(x[i]); return;
    case "cos": for (let i = 0; i < n; i++) gx[i] = -gy[i] * Math.sin(x[i]); return;
  }
}

function apply(op: BinaryOp): (u: number, v: number) => number {
  switch (op) {
    case "add": return (u, v) => u + v;
    case "sub": return (u, v) => u - v;
    case "mul": return (u, v) => u * v;
    case "div": return (u, v) => u / v;
    case "pow": return Math.pow;
    case "maximum": return (u, v) => (u >= v ? u : v);
    case "minimum": return (u, v) => (u <= v ? u : v);
    case "eq": return (u, v) => (u === v ? 1 : 0);
    case "gt": return (u, v) => (u > v ? 1 : 0);
    case "lt": return (u, v) => (u < v ? 1 : 0);
  }
}

export function binary(op: BinaryOp, a: FloatArray, aOff: number, aStrides: number[], b: FloatArray, bOff: number, bStrides: number[], out: FloatArray, shape: number[]): void {
  const f = apply(op);
  const rank = shape.length;
  let n = 1;
  for (const d of shape) n *= d;
  if (n === 0) return;
  if (rank === 0) { out[0] = f(a[aOff], b[bOff]); return; }
  // Walk the output in order; the innermost axis is a tight loop, outer axes an odometer.
  const last = rank - 1;
  const inner = shape[last], sa = aStrides[last], sb = bStrides[last];
  const idx = new Array<number>(rank).fill(0);
  let ia = aOff, ib = bOff;
  for (let o = 0; o < n; o += inner) {
    for (let j = 0, pa = ia, pb = ib; j < inner; j++, pa += sa, pb += sb) out[o + j] = f(a[pa], b[pb]);
    for (let d = last - 1; d >= 0; d--) {
      idx[d]++;
      ia += aStrides[d];
      ib += bStrides[d];
      if (idx[d] < shape[d]) break;
      ia -= aStrides[d] * shape[d];
      ib -= bStrides[d] * shape[d];
      idx[d] = 0;
    }
  }
}

export function where(cond: FloatArray, a: FloatArray, b: FloatArray, out: FloatArray, n: number): void {
  for (let i = 0; i < n; i++) out[i] = cond[i] !== 0 ? a[i] : b[i];
}
