// PFGM (Xu, Liu, Tegmark & Jaakkola 2022, "Poisson Flow Generative Models", arXiv 2209.11178; Su's reading
// kexue.fm/archives/9305). Data x ∈ R^N become charges x̃ = (x, 0) on the z = 0 plane of R^{N+1}; their
// field points away from the plane and, far out, becomes radial, so its field lines carry the data to a
// uniform distribution on a large hemisphere. Generation runs the lines backwards:
// - the empirical Poisson field E(x̃) = 1/n Σ_i (x̃ - x̃_i) / ||x̃ - x̃_i||^{N+1} (sec. 3.1);
// - training points: data perturbed by noise of a random, log-uniform scale (sec. 3.3, Algorithm 2 of
//   App. B.1.1: x + ||ε_x|| (1 + τ)^m u, z = |ε_z| (1 + τ)^m, ε ~ N(0, σ² I), m ~ U[0, M], u a uniform
//   direction);
// - the target: the normalized field -√N Ê / (||Ê|| + γ), Ê = c(x̃) Σ_i (x̃ - x̃_i) / ||x̃ - x̃_i||^{N+1} over
//   a large batch, c(x̃) = 1 / Σ_i ||x̃ - x̃_i||^{-(N+1)} (Algorithm 1; c only rescales, it keeps the sum in range);
// - sampling: the backward ODE dx/dz = E_x / E_z (eq. 5) from the z = z_max plane (the hemisphere prior
//   projected onto it, App. A.4) down to z_min, with fixed steps in t = ln z: dx/dt = z f_x / f_z.
// The constants (σ 0.01, τ 0.03, M 291, γ 5, z_max 40, z_min 1e-3, prior norms clipped to [1, 3000]) are
// the reference implementation's CIFAR-10 settings (github Newbeeer/Poisson_flow, configs/, losses.py,
// methods.py); a 2D caller picks its own γ (bench/generative.ts).

import * as ops from "../ops/index.js";
import { floatData } from "../ops/util.js";
import { noGrad } from "../tensor/autograd.js";
import type { RandomGenerator } from "../tensor/rng.js";
import { tidy } from "../tensor/scope.js";
import type { Tensor } from "../tensor/tensor.js";
import type { TimeMLP } from "./time-mlp.js";

/** f(x̃): the predicted normalized field at augmented points x̃ [B, N+1] (x, z), as [B, N+1]. */
export type PoissonFieldFn = (xt: Tensor) => Tensor;

export interface PfgmConfig {
  /** σ of the perturbation noise ε ~ N(0, σ² I) (the reference's model.sigma_end). */
  sigma: number;
  /** τ and M: the noise scale is multiplied by (1 + τ)^m, m ~ U[0, M]. */
  tau: number;
  M: number;
  /** γ in the normalized target -√N Ê / (||Ê|| + γ). */
  gamma: number;
  /** The prior plane z = zMax, the ODE's end z = zMin, and the clip of prior norms to [1, upperNorm]. */
  zMax: number;
  zMin: number;
  upperNorm: number;
}

export const PFGM_DEFAULTS: Readonly<PfgmConfig> = { sigma: 0.01, tau: 0.03, M: 291, gamma: 5, zMax: 40, zMin: 1e-3, upperNorm: 3000 };

/** Validates a partial config over the defaults: one error per bad field. */
export function pfgmConfig(c: Partial<PfgmConfig> = {}): PfgmConfig {
  const o = { ...PFGM_DEFAULTS, ...c };
  for (const k of ["sigma", "tau", "M", "zMax", "zMin", "upperNorm"] as const) {
    if (!(typeof o[k] === "number" && Number.isFinite(o[k]) && o[k] > 0)) throw new RangeError(`pfgm: ${k} must be a finite number > 0, got ${o[k]}`);
  }
  if (!(typeof o.gamma === "number" && Number.isFinite(o.gamma) && o.gamma >= 0)) throw new RangeError(`pfgm: gamma must be a finite number >= 0, got ${o.gamma}`);
  if (o.zMin >= o.zMax) throw new RangeError(`pfgm: zMin must be < zMax, got zMin ${o.zMin} and zMax ${o.zMax}`);
  return o;
}

function rows2(t: Tensor, what: string, fn: string): { v: Float64Array; n: number; d: number } {
  if (t.ndim !== 2 || t.shape[0] < 1) throw new RangeError(`${fn}: ${what} must be a [n, d] tensor with n >= 1, got shape [${t.shape.join(", ")}]`);
  return { v: Float64Array.from(floatData(t, fn)), n: t.shape[0], d: t.shape[1] };
}

/** Augmented points xt [B, N+1] against data [n, N]: both as float64, with N checked. */
function fieldArgs(xt: Tensor, data: Tensor, fn: string) {
  const p = rows2(xt, "xt", fn), x = rows2(data, "data", fn);
  if (p.d !== x.d + 1) throw new RangeError(`${fn}: xt must have N + 1 = ${x.d + 1} columns for data of N = ${x.d}, got ${p.d}`);
  return { p, x, N: x.d };
}

/**
 * Σ_i w_i (x̃ - x̃_i) / ||x̃ - x̃_i||^{N+1} per row, x̃_i = (x_i, 0), with w = 1/n (`normalize` false: the
 * field E) or w = c(x̃) (true: Ê, each term scaled by the row's smallest distance first so that the
 * powers stay in range, as the reference's losses.py does).
 */
function fieldSum(xt: Tensor, data: Tensor, normalize: boolean, fn: string): { e: Float64Array; B: number; N: number } {
  const { p, x, N } = fieldArgs(xt, data, fn), D = N + 1, e = new Float64Array(p.n * D), d2 = new Float64Array(x.n);
  const half = (N + 1) / 2, pow = N === 2 ? (r: number) => r * Math.sqrt(r) : (r: number) => Math.pow(r, half);
  for (let b = 0; b < p.n; b++) {
    const z = p.v[b * D + N];
    let d2Min = Infinity;
    for (let i = 0; i < x.n; i++) {
      let s = z * z;
      for (let k = 0; k < N; k++) { const t = p.v[b * D + k] - x.v[i * N + k]; s += t * t; }
      d2[i] = s;
      if (s < d2Min) d2Min = s;
    }
    if (d2Min === 0) throw new RangeError(`${fn}: row ${b} of xt sits on a data point, where the field is undefined`);
    let wSum = 0;
    for (let i = 0; i < x.n; i++) {
      // ||x̃ - x̃_i||^{-(N+1)} = (1 / d²)^{(N+1)/2}, relative to the nearest charge when normalizing
      const w = pow((normalize ? d2Min : 1) / d2[i]);
      wSum += w;
      for (let k = 0; k < N; k++) e[b * D + k] += w * (p.v[b * D + k] - x.v[i * N + k]);
      e[b * D + N] += w * z;
    }
    const scale = normalize ? 1 / wSum : 1 / x.n;
    for (let k = 0; k < D; k++) e[b * D + k] *= scale;
  }
  return { e, B: p.n, N };
}

/** The empirical Poisson field E at points xt [B, N+1] of the charges data [n, N] (on z = 0), as [B, N+1] float64. */
export function poissonField(xt: Tensor, data: Tensor): Tensor {
  const { e, B, N } = fieldSum(xt, data, false, "poissonField");
  return ops.tensor(e, { shape: [B, N + 1] });
}

/** Algorithm 1's regression target -√N Ê / (||Ê|| + γ) at xt [B, N+1] from the batch data [n, N], as [B, N+1] float64. */
export function normalizedFieldTarget(xt: Tensor, data: Tensor, gamma: number): Tensor {
  if (!(Number.isFinite(gamma) && gamma >= 0)) throw new RangeError(`normalizedFieldTarget: gamma must be a finite number >= 0, got ${gamma}`);
  const { e, B, N } = fieldSum(xt, data, true, "normalizedFieldTarget"), D = N + 1;
  for (let b = 0; b < B; b++) {
    let s = 0;
    for (let k = 0; k < D; k++) s += e[b * D + k] ** 2;
    const f = -Math.sqrt(N) / (Math.sqrt(s) + gamma);
    for (let k = 0; k < D; k++) e[b * D + k] *= f;
  }
  return ops.tensor(e, { shape: [B, D] });
}

/** Algorithm 2: perturbed augmented points [B, N+1] (x's dtype) of data x [B, N]. */
export function perturb(x: Tensor, gen: RandomGenerator, c: Partial<PfgmConfig> = {}): Tensor {
  const o = pfgmConfig(c), { v, n: B, d: N } = rows2(x, "x", "perturb"), D = N + 1;
  const m = new Float64Array(B), ez = new Float64Array(B), ex = new Float64Array(B * N), u = new Float64Array(B * N);
  gen.uniform(m, 0, o.M);
  gen.normal(ez, 0, o.sigma);
  gen.normal(ex, 0, o.sigma);
  gen.normal(u);
  const out = new (x.dtype === "float64" ? Float64Array : Float32Array)(B * D);
  for (let b = 0; b < B; b++) {
    const mult = (1 + o.tau) ** m[b];
    let nx = 0, nu = 0;
    for (let k = 0; k < N; k++) { nx += ex[b * N + k] ** 2; nu += u[b * N + k] ** 2; }
    const r = (Math.sqrt(nx) * mult) / Math.sqrt(nu);
    for (let k = 0; k < N; k++) out[b * D + k] = v[b * N + k] + r * u[b * N + k];
    out[b * D + N] = Math.abs(ez[b]) * mult;
  }
  return ops.tensor(out, { shape: [B, D] });
}

/**
 * Algorithm 1's loss: mean over rows of ||f(ỹ) - target(ỹ)||², ỹ = perturb(x), the target from the larger
 * batch `large` [n, N] (the reference draws x as the first rows of it; any data batch works).
 */
export function pfgmLoss(f: PoissonFieldFn, x: Tensor, large: Tensor, gen: RandomGenerator, c: Partial<PfgmConfig> = {}): Tensor {
  const o = pfgmConfig(c), y = perturb(x, gen, o);
  const target = ops.cast(normalizedFieldTarget(y, large, o.gamma), x.dtype);
  const diff = ops.sub(f(y), target);
  return ops.div(ops.sum(ops.mul(diff, diff)), x.shape[0]);
}

/**
 * n prior points x [n, N] on the plane z = zMax (App. A.4): the uniform hemisphere projected along rays
 * from the origin. With g ~ N(0, I_N), g0 ~ N(0, 1), x = zMax g / |g0| has the radius density
 * ∝ R^{N-1} / (R² + zMax²)^{(N+1)/2} (R² / zMax² = χ²_N / χ²_1, the reference's inverse-beta draw);
 * norms are clipped to [1, upperNorm] as the reference does.
 */
export function pfgmPrior(n: number, N: number, gen: RandomGenerator, c: Partial<PfgmConfig> = {}): Tensor {
  const o = pfgmConfig(c);
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`pfgmPrior: n must be a positive integer, got ${n}`);
  if (!Number.isSafeInteger(N) || N < 1) throw new RangeError(`pfgmPrior: N must be a positive integer, got ${N}`);
  const g = new Float64Array(n * N), g0 = new Float64Array(n), out = new Float32Array(n * N);
  gen.normal(g);
  gen.normal(g0);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < N; k++) s += g[i * N + k] ** 2;
    const r = Math.sqrt(s), R = Math.min(Math.max((o.zMax * r) / Math.abs(g0[i]), 1), o.upperNorm);
    for (let k = 0; k < N; k++) out[i * N + k] = (R * g[i * N + k]) / r;
  }
  return ops.tensor(out, { shape: [n, N] });
}

export interface PfgmSampleOptions {
  /** Fixed steps in t = ln z from ln zMax to ln zMin. */
  steps: number;
  method?: "euler" | "heun";
  zMax?: number;
  zMin?: number;
}

/**
 * The backward ODE (eq. 5) from x0 [n, N] at z = zMax to z = zMin in t = ln z: dx/dt = z f_x / f_z (the
 * reference's methods.py ode), Euler or Heun steps. f_z < 0 above the data (the target is minus the
 * outward field); it is clamped to <= -1e-5 so that a stray sign cannot reverse a step. Returns x at zMin.
 */
export function pfgmSample(f: PoissonFieldFn, x0: Tensor, o: PfgmSampleOptions): Tensor {
  const c = pfgmConfig({ zMax: o.zMax ?? PFGM_DEFAULTS.zMax, zMin: o.zMin ?? PFGM_DEFAULTS.zMin });
  if (!Number.isSafeInteger(o.steps) || o.steps < 1) throw new RangeError(`pfgmSample: steps must be a positive integer, got ${o.steps}`);
  const method = o.method ?? "euler";
  if (method !== "euler" && method !== "heun") throw new RangeError(`pfgmSample: method must be "euler" or "heun", got ${JSON.stringify(method)}`);
  if (x0.ndim !== 2) throw new RangeError(`pfgmSample: x0 must be a [n, N] tensor, got shape [${x0.shape.join(", ")}]`);
  const [n, N] = x0.shape, t0 = Math.log(c.zMax), dt = (Math.log(c.zMin) - t0) / o.steps;
  const drift = (x: Tensor, t: number): Tensor => {
    const z = Math.exp(t), v = f(ops.cat([x, ops.full([n, 1], z, { dtype: x.dtype })], 1));
    if (v.ndim !== 2 || v.shape[0] !== n || v.shape[1] !== N + 1) throw new RangeError(`pfgmSample: the field must return [${n}, ${N + 1}], got [${v.shape.join(", ")}]`);
    const fz = ops.clamp(v.narrow(1, N, 1), -Infinity, -1e-5);
    return ops.mul(ops.div(v.narrow(1, 0, N), fz), z);
  };
  return noGrad(() => {
    let x = x0;
    for (let k = 0; k < o.steps; k++) {
      const t = t0 + k * dt;
      x = tidy(() => {
        const d1 = drift(x, t);
        if (method === "euler") return ops.add(x, ops.mul(d1, dt));
        const d2 = drift(ops.add(x, ops.mul(d1, dt)), t + dt);
        return ops.add(x, ops.mul(ops.add(d1, d2), dt / 2));
      });
    }
    return x;
  });
}

/**
 * A TimeMLP on N + 1 inputs as the field network f(x̃): it reads x̃ / (1 + z) (bounded by the ratio of x's
 * norm to z, which the prior makes heavy-tailed, rather than by the norm itself) and embeds ln z as its time.
 */
export function timeMlpField(net: TimeMLP): PoissonFieldFn {
  return (xt) => {
    const N = xt.shape[1] - 1, z = xt.narrow(1, N, 1);
    return net.forward(ops.div(xt, ops.add(z, 1)), ops.log(z).reshape(-1));
  };
}
