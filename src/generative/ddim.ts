// DDIM (Song, Meng & Ermon 2021, "Denoising Diffusion Implicit Models"), eq. 12:
// x_{t-1} = sqrt(ᾱ_{t-1}) x̂_0 + sqrt(1 - ᾱ_{t-1} - σ_t²) ε_θ + σ_t z, x̂_0 = (x_t - sqrt(1 - ᾱ_t) ε_θ) / sqrt(ᾱ_t),
// σ_t = η sqrt((1 - ᾱ_{t-1}) / (1 - ᾱ_t)) sqrt(1 - ᾱ_t / ᾱ_{t-1}) (eq. 16). η = 0 is the deterministic
// sampler, η = 1 DDPM's posterior variance. "t-1" is the previous step of a subsequence τ (sec. 4.2), so
// steps can be skipped; ᾱ before the first step is 1.

import * as ops from "../ops/index.js";
import { noGrad } from "../tensor/autograd.js";
import type { RandomGenerator } from "../tensor/rng.js";
import { tidy } from "../tensor/scope.js";
import type { Tensor } from "../tensor/tensor.js";
import { stepTensor, type Denoiser } from "./ddpm.js";
import { checkStep, type DiffusionSchedule } from "./schedules.js";

/**
 * The step subsequence τ, ascending: "uniform" is range(0, T, T / S) of the DDIM repository (skip type
 * "uniform"), "quad" the squares of linspace(0, sqrt(0.8 T), S) (its "quad" type, for CIFAR-10).
 */
export function ddimTimesteps(T: number, steps: number, kind: "uniform" | "quad" = "uniform"): number[] {
  if (!Number.isSafeInteger(T) || T <= 0) throw new RangeError(`ddimTimesteps: T must be a positive integer, got ${T}`);
  if (!Number.isSafeInteger(steps) || steps < 1 || steps > T) throw new RangeError(`ddimTimesteps: steps must be an integer in [1, ${T}], got ${steps}`);
  if (kind === "uniform") {
    const skip = Math.floor(T / steps), out: number[] = [];
    for (let t = 0; t < T; t += skip) out.push(t);
    return out;
  }
  if (kind !== "quad") throw new RangeError(`ddimTimesteps: kind must be "uniform" or "quad", got ${JSON.stringify(kind)}`);
  const top = Math.sqrt(T * 0.8);
  return Array.from({ length: steps }, (_, i) => Math.floor((steps === 1 ? 0 : (top * i) / (steps - 1)) ** 2));
}

/** σ_t of eq. 16 for the jump t -> tPrev (tPrev = -1: to x_0). */
export function ddimSigma(s: DiffusionSchedule, t: number, tPrev: number, eta: number): number {
  const a = s.alphaBars[t], ap = tPrev >= 0 ? s.alphaBars[tPrev] : 1;
  return eta * Math.sqrt((1 - ap) / (1 - a)) * Math.sqrt(1 - a / ap);
}

/** One DDIM step t -> tPrev (eq. 12); z may be null when η = 0. */
export function ddimStep(s: DiffusionSchedule, xt: Tensor, t: number, tPrev: number, eps: Tensor, z: Tensor | null, eta: number): Tensor {
  checkStep(s, t);
  if (!Number.isSafeInteger(tPrev) || tPrev < -1 || tPrev >= t) throw new RangeError(`ddimStep: tPrev must be an integer in [-1, ${t}) (the previous step, -1 for x_0), got ${tPrev}`);
  if (!(eta >= 0)) throw new RangeError(`ddimStep: eta must be >= 0, got ${eta}`);
  const a = s.alphaBars[t], ap = tPrev >= 0 ? s.alphaBars[tPrev] : 1;
  const sigma = ddimSigma(s, t, tPrev, eta);
  const x0 = ops.div(ops.sub(xt, ops.mul(eps, Math.sqrt(1 - a))), Math.sqrt(a));
  const dir = ops.mul(eps, Math.sqrt(Math.max(1 - ap - sigma * sigma, 0)));
  const out = ops.add(ops.mul(x0, Math.sqrt(ap)), dir);
  if (sigma === 0) return out;
  if (!z) throw new Error(`ddimStep: eta = ${eta} > 0 needs the noise z`);
  return ops.add(out, ops.mul(z, sigma));
}

/** DDIM sampling over ddimTimesteps(T, steps) from x_T ~ N(0, I) (or the given xT of `shape`); noise from gen. */
export function ddimSample(model: Denoiser, s: DiffusionSchedule, shape: number[], gen: RandomGenerator, o: { steps: number; eta?: number; skip?: "uniform" | "quad"; xT?: Tensor }): Tensor {
  if (o.xT && o.xT.shape.join() !== shape.join()) throw new RangeError(`ddimSample: xT has shape [${o.xT.shape}], expected [${shape}]`);
  // "quad" repeats its first steps at large S (floor of squares below 1); the repository's step from t to
  // the same t leaves x unchanged, so repeats are dropped
  const seq = [...new Set(ddimTimesteps(s.T, o.steps, o.skip))], eta = o.eta ?? 0;
  return noGrad(() => {
    let x = o.xT ?? ops.randn(shape, { generator: gen });
    for (let i = seq.length - 1; i >= 0; i--) {
      const t = seq[i], tPrev = i > 0 ? seq[i - 1] : -1;
      x = tidy(() => {
        const eps = model(x, stepTensor(new Array(shape[0]).fill(t)));
        const z = eta > 0 ? ops.randn(shape, { generator: gen }) : null;
        return ddimStep(s, x, t, tPrev, eps, z, eta);
      });
    }
    return x;
  });
}
