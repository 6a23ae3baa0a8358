// The probability-flow ODE of the VP SDE (Song et al. 2021, "Score-Based Generative Modeling through
// Stochastic Differential Equations"): the VP SDE dx = -½ β(t) x dt + sqrt(β(t)) dw (eq. 11) with
// β(t) = β_min + t (β_max - β_min), t in [0, 1], has the ODE (eq. 13) dx/dt = f(x, t) - ½ g(t)² ∇ log p_t(x)
// whose marginals are the SDE's. With an ε-prediction model the score is -ε_θ / σ(t), σ(t)² = 1 - ᾱ(t),
// ᾱ(t) = exp(-∫_0^t β) = exp(-(β_min t + ½ (β_max - β_min) t²)) (eq. 33), so
// dx/dt = -½ β(t) (x - ε_θ(x, t) / σ(t)). Integrated from t = 1 down to t = ε with Euler or Heun (the
// explicit trapezoid, Karras et al. 2022 Algorithm 1). Su's "ODE" post (kexue.fm/archives/9228) derives the same.

import * as ops from "../ops/index.js";
import { noGrad } from "../tensor/autograd.js";
import type { RandomGenerator } from "../tensor/rng.js";
import { tidy } from "../tensor/scope.js";
import type { Tensor } from "../tensor/tensor.js";
import { stepTensor, type Denoiser } from "./ddpm.js";

/** β_min = 0.1 and β_max = 20 (Song et al.) are DDPM's linear 1e-4 .. 0.02 with T = 1000, scaled by T. */
export interface VpSde { betaMin: number; betaMax: number }
export const VP_DEFAULT: VpSde = { betaMin: 0.1, betaMax: 20 };

export const vpBeta = (sde: VpSde, t: number) => sde.betaMin + t * (sde.betaMax - sde.betaMin);
export const vpAlphaBar = (sde: VpSde, t: number) => Math.exp(-(sde.betaMin * t + 0.5 * (sde.betaMax - sde.betaMin) * t * t));

/**
 * A denoiser trained on T discrete DDPM steps, read at continuous t in [0, 1]: its step label is t (T - 1),
 * as score_sde's get_model_fn does for discrete-time VP models.
 */
export function discreteTime(model: Denoiser, T: number): Denoiser {
  return (x, t) => model(x, ops.mul(t, T - 1));
}

/** dx/dt of eq. 13 at time t for all rows (the denoiser sees continuous t). */
export function pfOdeDrift(sde: VpSde, model: Denoiser, x: Tensor, t: number): Tensor {
  if (!(t > 0 && t <= 1)) throw new RangeError(`pfOde: t must be in (0, 1], got ${t}`);
  const eps = model(x, stepTensor(new Array(x.shape[0]).fill(t), x.dtype as "float32" | "float64"));
  const sigma = Math.sqrt(1 - vpAlphaBar(sde, t));
  return ops.mul(ops.sub(x, ops.div(eps, sigma)), -0.5 * vpBeta(sde, t));
}

export type OdeMethod = "euler" | "heun";

/** One step t -> tNext: Euler x + h d(x, t), or Heun x + h/2 (d(x, t) + d(x + h d(x, t), tNext)). */
export function pfOdeStep(sde: VpSde, model: Denoiser, x: Tensor, t: number, tNext: number, method: OdeMethod): Tensor {
  const h = tNext - t, d1 = pfOdeDrift(sde, model, x, t);
  const euler = ops.add(x, ops.mul(d1, h));
  if (method === "euler") return euler;
  if (method !== "heun") throw new RangeError(`pfOde: method must be "euler" or "heun", got ${JSON.stringify(method)}`);
  const d2 = pfOdeDrift(sde, model, euler, tNext);
  return ops.add(x, ops.mul(ops.add(d1, d2), h / 2));
}

/** Sample: x(1) ~ N(0, I), then `steps` uniform steps from t = 1 to t = eps (default 1e-3, score_sde's sampling eps). */
export function pfOdeSample(model: Denoiser, shape: number[], gen: RandomGenerator, o: { steps: number; method?: OdeMethod; sde?: VpSde; eps?: number }): Tensor {
  const { steps, method = "euler", sde = VP_DEFAULT, eps = 1e-3 } = o;
  if (!Number.isSafeInteger(steps) || steps < 1) throw new RangeError(`pfOdeSample: steps must be a positive integer, got ${steps}`);
  return noGrad(() => {
    let x = ops.randn(shape, { generator: gen });
    for (let i = 0; i < steps; i++) {
      const t = 1 + ((eps - 1) * i) / steps, tNext = 1 + ((eps - 1) * (i + 1)) / steps;
      x = tidy(() => pfOdeStep(sde, model, x, t, tNext, method));
    }
    return x;
  });
}
