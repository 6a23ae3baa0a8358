// DDPM noise schedules over T discrete steps, float64, indexed t = 0 .. T-1 (paper step t + 1):
// - linear: β from 1e-4 to 0.02 (Ho et al. 2020, "Denoising Diffusion Probabilistic Models", sec. 4);
// - cosine: ᾱ_t = f(t)/f(0), f(t) = cos²(((t/T + s)/(1 + s)) π/2), s = 0.008, and
//   β_t = 1 - ᾱ_t/ᾱ_{t-1} clipped to 0.999 (Nichol & Dhariwal 2021, "Improved DDPM", eq. 17).
// α_t = 1 - β_t and ᾱ_t = Π_{s<=t} α_s (Ho et al. eq. 4's notation).

export type BetaScheduleKind = "linear" | "cosine";

export interface DiffusionSchedule {
  readonly kind: BetaScheduleKind;
  readonly T: number;
  readonly betas: Float64Array;
  readonly alphas: Float64Array;
  readonly alphaBars: Float64Array;
}

export interface ScheduleOptions {
  /** linear: the first and last β (default 1e-4 and 0.02, Ho et al.). */
  betaStart?: number;
  betaEnd?: number;
  /** cosine: the offset s (default 0.008, Nichol & Dhariwal). */
  s?: number;
}

export function diffusionSchedule(kind: BetaScheduleKind, T: number, o: ScheduleOptions = {}): DiffusionSchedule {
  if (!Number.isSafeInteger(T) || T <= 0) throw new RangeError(`diffusionSchedule: T (the number of diffusion steps) must be a positive integer, got ${T}`);
  const betas = new Float64Array(T);
  if (kind === "linear") {
    const b0 = o.betaStart ?? 1e-4, b1 = o.betaEnd ?? 0.02;
    if (!(b0 > 0 && b1 >= b0 && b1 < 1)) throw new RangeError(`diffusionSchedule: linear needs 0 < betaStart <= betaEnd < 1, got ${b0} and ${b1}`);
    // numpy.linspace(b0, b1, T) as in Ho et al.'s get_beta_schedule
    for (let t = 0; t < T; t++) betas[t] = T === 1 ? b0 : b0 + ((b1 - b0) * t) / (T - 1);
  } else if (kind === "cosine") {
    const s = o.s ?? 0.008;
    if (!(s >= 0)) throw new RangeError(`diffusionSchedule: cosine offset s must be >= 0, got ${s}`);
    const f = (t: number) => Math.cos((((t / T) + s) / (1 + s)) * (Math.PI / 2)) ** 2;
    for (let t = 0; t < T; t++) betas[t] = Math.min(1 - f(t + 1) / f(t), 0.999);
  } else {
    throw new RangeError(`diffusionSchedule: kind must be "linear" or "cosine", got ${JSON.stringify(kind)}`);
  }
  const alphas = betas.map((b) => 1 - b);
  const alphaBars = new Float64Array(T);
  let p = 1;
  for (let t = 0; t < T; t++) alphaBars[t] = p *= alphas[t];
  return { kind, T, betas, alphas, alphaBars };
}

/** The step t must be an integer in [0, T). */
export function checkStep(s: DiffusionSchedule, t: number, what = "t"): void {
  if (!Number.isSafeInteger(t) || t < 0 || t >= s.T) throw new RangeError(`${what} must be an integer step in [0, ${s.T}), got ${t}`);
}
