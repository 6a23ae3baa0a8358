// DDPM (Ho et al. 2020, "Denoising Diffusion Probabilistic Models"): the forward process
// x_t = sqrt(ᾱ_t) x_0 + sqrt(1 - ᾱ_t) ε (eq. 4), the simplified ε-prediction loss
// E ||ε - ε_θ(x_t, t)||² (eq. 14) and ancestral sampling (Algorithm 2). Su's "demolish and rebuild"
// reading (kexue.fm/archives/9119) is the same model. Any denoiser (x_t, t) -> ε works: an MLP on 2D
// toys now, a U-Net or DiT later. Steps are indexed t = 0 .. T-1 (the paper's t = 1 .. T).

import * as ops from "../ops/index.js";
import { noGrad } from "../tensor/autograd.js";
import type { RandomGenerator } from "../tensor/rng.js";
import { tidy } from "../tensor/scope.js";
import type { Tensor } from "../tensor/tensor.js";
import { checkStep, type DiffusionSchedule } from "./schedules.js";

/** ε_θ(x_t, t): x_t [B, ...] and the step index per row t [B] (float, as the time embedding reads it). */
export type Denoiser = (x: Tensor, t: Tensor) => Tensor;

/** A [B, 1, ...] tensor (x's dtype) holding one coefficient per row, broadcastable against x [B, ...]. */
export function perRow(x: Tensor, values: ArrayLike<number>): Tensor {
  return ops.tensor(Array.from(values), { dtype: x.dtype }).reshape(x.shape[0], ...x.shape.slice(1).map(() => 1));
}

/** A float [B] tensor of step indices for the denoiser. */
export function stepTensor(t: ArrayLike<number>, dtype: "float32" | "float64" = "float32"): Tensor {
  return ops.tensor(Array.from(t), { dtype });
}

/** q(x_t | x_0) sample (eq. 4) for per-row steps t and noise ε. */
export function qSample(s: DiffusionSchedule, x0: Tensor, t: Int32Array, eps: Tensor): Tensor {
  t.forEach((v) => checkStep(s, v));
  const a = Array.from(t, (v) => Math.sqrt(s.alphaBars[v])), b = Array.from(t, (v) => Math.sqrt(1 - s.alphaBars[v]));
  return ops.add(ops.mul(x0, perRow(x0, a)), ops.mul(eps, perRow(x0, b)));
}

/** Eq. 14 at given steps and noise: mean over rows of ||ε - ε_θ(x_t, t)||² (summed over the other dims). */
export function ddpmLossAt(model: Denoiser, s: DiffusionSchedule, x0: Tensor, t: Int32Array, eps: Tensor): Tensor {
  const xt = qSample(s, x0, t, eps);
  const diff = ops.sub(eps, model(xt, stepTensor(t, x0.dtype as "float32" | "float64")));
  return ops.div(ops.sum(ops.mul(diff, diff)), x0.shape[0]);
}

/** Eq. 14 with t ~ U{0 .. T-1} and ε ~ N(0, I) drawn from gen (Algorithm 1). */
export function ddpmLoss(model: Denoiser, s: DiffusionSchedule, x0: Tensor, gen: RandomGenerator): Tensor {
  const t = new Int32Array(x0.shape[0]);
  gen.randint(t, s.T);
  const eps = ops.randn(x0.shape, { generator: gen, dtype: x0.dtype });
  return ddpmLossAt(model, s, x0, t, eps);
}

export type DdpmVariance = "beta" | "betaTilde";

/** σ_t² of Algorithm 2: β_t, or β̃_t = (1 - ᾱ_{t-1}) / (1 - ᾱ_t) β_t (eq. 7; ᾱ_{-1} = 1, so β̃_0 = 0). */
export function ddpmSigma(s: DiffusionSchedule, t: number, variance: DdpmVariance): number {
  checkStep(s, t);
  if (variance === "beta") return Math.sqrt(s.betas[t]);
  if (variance !== "betaTilde") throw new RangeError(`ddpm: variance must be "beta" or "betaTilde", got ${JSON.stringify(variance)}`);
  const prev = t > 0 ? s.alphaBars[t - 1] : 1;
  return Math.sqrt(((1 - prev) / (1 - s.alphaBars[t])) * s.betas[t]);
}

/**
 * One ancestral step (Algorithm 2, line 4): x_{t-1} = (x_t - β_t / sqrt(1 - ᾱ_t) ε) / sqrt(α_t) + σ_t z,
 * with z = 0 at the last step (t = 0).
 */
export function ddpmStep(s: DiffusionSchedule, xt: Tensor, t: number, eps: Tensor, z: Tensor | null, variance: DdpmVariance = "beta"): Tensor {
  const sigma = ddpmSigma(s, t, variance);
  const mean = ops.div(ops.sub(xt, ops.mul(eps, s.betas[t] / Math.sqrt(1 - s.alphaBars[t]))), Math.sqrt(s.alphas[t]));
  if (t === 0 || !z) return mean;
  return ops.add(mean, ops.mul(z, sigma));
}

/** Algorithm 2: x_T ~ N(0, I), then T ancestral steps down to x_0; all noise from gen. */
export function ddpmSample(model: Denoiser, s: DiffusionSchedule, shape: number[], gen: RandomGenerator, o: { variance?: DdpmVariance } = {}): Tensor {
  return noGrad(() => {
    let x = ops.randn(shape, { generator: gen });
    for (let t = s.T - 1; t >= 0; t--) {
      x = tidy(() => {
        const eps = model(x, stepTensor(new Array(shape[0]).fill(t)));
        const z = t > 0 ? ops.randn(shape, { generator: gen }) : null;
        return ddpmStep(s, x, t, eps, z, o.variance);
      });
    }
    return x;
  });
}
