// The ImageMethod "ddpm": a small U-Net (unet.ts) trained with DDPM's ε-prediction loss (Ho et al. 2020,
// eq. 14; ddpm.ts) on a linear or cosine β schedule (schedules.ts), sampled by ancestral steps (Algorithm 2,
// all T steps) or by DDIM (Song et al. 2021, eq. 12; ddim.ts) with skipped steps and η. With classes > 0
// the net is label-conditional, labels are replaced by the null label with probability labelDropout in
// training, and sampling may use classifier-free guidance (Ho & Salimans 2022, eq. 6:
// ε̃ = (1 + w) ε(x, c) - w ε(x, ∅); our guidance scale g = 1 + w, so g = 1 is the conditional model alone).

import * as ops from "../ops/index.js";
import { RandomGenerator } from "../tensor/rng.js";
import type { Tensor } from "../tensor/tensor.js";
import { ddimSample } from "./ddim.js";
import { ddpmLoss, ddpmSample, type DdpmVariance, type Denoiser } from "./ddpm.js";
import type { ImageMethod, ImageModel, ImageSampleOptions } from "./image-method.js";
import { diffusionSchedule, type BetaScheduleKind, type DiffusionSchedule } from "./schedules.js";
import { UNet } from "./unet.js";

export interface DdpmConfig {
  schedule: BetaScheduleKind;
  /** Diffusion steps. */
  T: number;
  /** U-Net widths at 28x28, 14x14, 7x7. */
  channels: [number, number, number];
  /** GroupNorm groups (divides every width). */
  groups: number;
  /** One self-attention block at 7x7. */
  attention: boolean;
  /** 0 = unconditional; otherwise the number of class labels. */
  classes: number;
  /** Probability of the null label in training (classifier-free guidance), used when classes > 0. */
  labelDropout: number;
  /** Ancestral sampling's σ_t²: β_t or the posterior β̃_t (Ho et al. sec. 3.2: both gave similar results). */
  variance: DdpmVariance;
}

const DEFAULTS: DdpmConfig = {
  schedule: "linear", T: 1000, channels: [16, 32, 32], groups: 8, attention: true, classes: 0, labelDropout: 0.1, variance: "beta",
};

const posInt = (v: unknown) => Number.isSafeInteger(v) && (v as number) > 0;
const CHECKS: Record<keyof DdpmConfig, [(v: unknown) => boolean, string]> = {
  schedule: [(v) => v === "linear" || v === "cosine", `"linear" or "cosine"`],
  T: [posInt, "a positive integer"],
  channels: [(v) => Array.isArray(v) && v.length === 3 && v.every(posInt), "three positive integers (widths at 28x28, 14x14, 7x7)"],
  groups: [posInt, "a positive integer"],
  attention: [(v) => typeof v === "boolean", "true or false"],
  classes: [(v) => Number.isSafeInteger(v) && (v as number) >= 0, "a non-negative integer (0 = unconditional)"],
  labelDropout: [(v) => typeof v === "number" && v >= 0 && v < 1, "a number in [0, 1)"],
  variance: [(v) => v === "beta" || v === "betaTilde", `"beta" or "betaTilde"`],
};

/** Defaults overridden by `config`; one clear error per unknown or bad field. */
export function ddpmConfig(config: Record<string, unknown>): DdpmConfig {
  const out: Record<string, unknown> = { ...DEFAULTS };
  for (const [k, v] of Object.entries(config)) {
    if (!Object.hasOwn(CHECKS, k)) throw new RangeError(`ddpm config: unknown field ${JSON.stringify(k)}; expected one of: ${Object.keys(CHECKS).join(", ")}`);
    const [ok, what] = CHECKS[k as keyof DdpmConfig];
    if (!ok(v)) throw new RangeError(`ddpm config: ${k} must be ${what}, got ${JSON.stringify(v)}`);
    out[k] = v;
  }
  const c = out as unknown as DdpmConfig;
  const bad = c.channels.find((w) => w % c.groups);
  if (bad !== undefined) throw new RangeError(`ddpm config: every width in channels ${JSON.stringify(c.channels)} must be a multiple of groups (${c.groups}); ${bad} is not`);
  return c;
}

export class DdpmModel implements ImageModel {
  readonly module: UNet;
  readonly config: Record<string, unknown>;
  readonly imageShape = [1, 28, 28] as const;
  readonly cfg: DdpmConfig;
  readonly schedule: DiffusionSchedule;

  constructor(config: Record<string, unknown>, generator: RandomGenerator) {
    this.cfg = ddpmConfig(config);
    this.config = { ...this.cfg };
    this.schedule = diffusionSchedule(this.cfg.schedule, this.cfg.T);
    const { channels, groups, attention, classes } = this.cfg;
    this.module = new UNet({ inChannels: 1, channels, groups, attention, classes, generator });
  }

  loss(x: Tensor, labels: Int32Array, gen: RandomGenerator, _step: number): Tensor {
    const B = x.shape[0], img = x.ndim === 2 ? x.reshape(B, ...this.imageShape) : x;
    let y: Int32Array | undefined;
    if (this.cfg.classes) {
      if (labels.length !== B) throw new RangeError(`ddpm: ${B} images but ${labels.length} labels`);
      const u = new Float64Array(B);
      gen.uniform(u);
      y = labels.map((l, i) => (u[i] < this.cfg.labelDropout ? this.cfg.classes : l));
    }
    return ddpmLoss((xt, t) => this.module.forward(xt, t, y), this.schedule, img, gen);
  }

  /**
   * The denoiser for sampling: unconditional, conditional on labels, or guided (scale g: ε∅ + g (ε_c - ε∅)). A
   * conditional model given no labels samples with the null label, i.e. unconditionally.
   */
  private denoiser(n: number, o: ImageSampleOptions): Denoiser {
    const { classes } = this.cfg, g = o.guidance ?? 1;
    if (!(Number.isFinite(g) && g >= 0)) throw new RangeError(`ddpm: guidance must be a number >= 0, got ${g}`);
    if (!classes) {
      if (o.labels) throw new RangeError("ddpm: labels given to an unconditional model (config classes 0)");
      if (g !== 1) throw new RangeError(`ddpm: guidance ${g} needs a class-conditional model (config classes > 0)`);
      return (x, t) => this.module.forward(x, t);
    }
    const y = o.labels ?? new Int32Array(n).fill(classes);
    if (y.length !== n) throw new RangeError(`ddpm: ${y.length} labels for ${n} samples`);
    if (g === 1) return (x, t) => this.module.forward(x, t, y);
    const none = new Int32Array(n).fill(classes);
    return (x, t) => {
      const u = this.module.forward(x, t, none);
      return ops.add(u, ops.mul(ops.sub(this.module.forward(x, t, y), u), g));
    };
  }

  sample(n: number, gen: RandomGenerator, o: ImageSampleOptions = {}): Tensor {
    if (!posInt(n)) throw new RangeError(`ddpm: the number of samples must be a positive integer, got ${n}`);
    const sampler = o.sampler ?? "ddpm", shape = [n, ...this.imageShape], T = this.cfg.T;
    let x: Tensor;
    if (sampler === "ddpm") {
      if (o.steps !== undefined && o.steps !== T) throw new RangeError(`ddpm: the ancestral sampler runs all T = ${T} steps, got steps ${o.steps}; use sampler "ddim" to skip steps`);
      if (o.eta !== undefined || o.spacing !== undefined) throw new RangeError(`ddpm: eta and spacing are DDIM's; the ancestral sampler has neither (use sampler "ddim")`);
      x = ddpmSample(this.denoiser(n, o), this.schedule, shape, gen, { variance: this.cfg.variance });
    } else if (sampler === "ddim") {
      const steps = o.steps ?? Math.min(50, T), eta = o.eta ?? 0;
      if (!(Number.isSafeInteger(steps) && steps >= 1 && steps <= T)) throw new RangeError(`ddpm: ddim steps must be an integer in [1, ${T}], got ${steps}`);
      if (!(Number.isFinite(eta) && eta >= 0)) throw new RangeError(`ddpm: eta must be a number >= 0, got ${eta}`);
      const skip = o.spacing ?? "uniform";
      if (skip !== "uniform" && skip !== "quad") throw new RangeError(`ddpm: spacing must be "uniform" or "quad", got ${JSON.stringify(skip)}`);
      x = ddimSample(this.denoiser(n, o), this.schedule, shape, gen, { steps, eta, skip });
    } else {
      throw new RangeError(`ddpm: unknown sampler ${JSON.stringify(sampler)}; expected "ddpm" (ancestral, T steps) or "ddim"`);
    }
    return ops.clamp(x, -1, 1);
  }
}

export const ddpmMethod: ImageMethod = {
  name: "ddpm",
  description: "DDPM (Ho et al. 2020): a small U-Net ε-predictor; ancestral or DDIM sampling, optional classifier-free guidance",
  defaults: DEFAULTS as unknown as Readonly<Record<string, unknown>>,
  create(config: Record<string, unknown>, seed: number): ImageModel {
    return new DdpmModel(config, new RandomGenerator(seed));
  },
};
