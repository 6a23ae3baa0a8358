// The ImageMethod "ldm": latent diffusion (Rombach et al. 2022) on MNIST in two stages switched on the
// optimizer step. Steps [0, aeSteps) train the KL autoencoder (autoencoder.ts); from aeSteps on, the
// autoencoder is frozen (encoded without gradient, so the optimizer skips its parameters) and the latent
// denoiser (ldm.ts) is trained with DDPM's ε loss on z = scale · (μ + σ ε), dropping labels to ∅ with
// probability pUncond for classifier-free guidance (Ho & Salimans 2022, sec. 3.2). The scale is the LDM
// repository's scale_by_std: 1 / std(z) measured once on the first diffusion batch (Stable Diffusion's
// 0.18215 is that number for its autoencoder), kept in the buffer `latent_scale` so a resumed run reads it
// from the checkpoint instead of measuring again. Sampling: z_T ~ N(0, I) -> DDIM (or DDPM) with
// guidance -> z / scale -> decoder.

import { Module } from "../nn/module.js";
import * as ops from "../ops/index.js";
import { noGrad } from "../tensor/autograd.js";
import { RandomGenerator } from "../tensor/rng.js";
import { tidy } from "../tensor/scope.js";
import type { Tensor } from "../tensor/tensor.js";
import { KLAutoencoder } from "./autoencoder.js";
import { ddimSample } from "./ddim.js";
import { ddpmLoss, ddpmSample } from "./ddpm.js";
import { checkImageBatch, type ImageMethod, type ImageModel, type ImageSampleOptions } from "./image-method.js";
import { guidedDenoiser, LatentDenoiser } from "./ldm.js";
import { diffusionSchedule, type BetaScheduleKind, type DiffusionSchedule } from "./schedules.js";

export const LDM_DEFAULTS = {
  latentChannels: 4,
  /** Autoencoder channels at 28 x 28 (twice that at 14 and 7) and its GroupNorm groups. */
  aeChannels: 16,
  aeGroups: 8,
  /** β of the KL term (the paper's 1e-6 is for 256 x 256 images and an L1 + LPIPS reconstruction). */
  klWeight: 1e-4,
  recon: "l2",
  aeSteps: 500,
  dim: 64,
  depth: 3,
  heads: 4,
  ctxTokens: 1,
  T: 1000,
  schedule: "linear",
  pUncond: 0.1,
  sampler: "ddim",
  steps: 50,
  eta: 0,
  guidance: 1,
} as const;

export type LdmConfig = { -readonly [K in keyof typeof LDM_DEFAULTS]: (typeof LDM_DEFAULTS)[K] extends string ? string : number };

const int = (v: unknown, min: number) => Number.isSafeInteger(v) && (v as number) >= min;

/** The full config from a partial one: one error per bad field, naming it and what was expected. */
export function ldmConfig(partial: Record<string, unknown>): LdmConfig {
  const c = { ...LDM_DEFAULTS, ...partial } as Record<string, unknown>;
  const bad = (k: string, want: string) => { throw new RangeError(`ldm config: ${k} must be ${want}, got ${JSON.stringify(c[k])}`); };
  for (const k of Object.keys(partial)) if (!Object.hasOwn(LDM_DEFAULTS, k)) throw new RangeError(`ldm config: unknown field ${JSON.stringify(k)}; expected one of ${Object.keys(LDM_DEFAULTS).join(", ")}`);
  for (const k of ["latentChannels", "aeChannels", "aeGroups", "dim", "depth", "heads", "ctxTokens", "T", "steps"]) if (!int(c[k], 1)) bad(k, "a positive integer");
  if (!int(c.aeSteps, 0)) bad("aeSteps", "an integer >= 0");
  if ((c.aeChannels as number) % (c.aeGroups as number)) bad("aeChannels", `divisible by aeGroups (${c.aeGroups})`);
  if ((c.dim as number) % (c.heads as number)) bad("dim", `divisible by heads (${c.heads})`);
  if ((c.dim as number) % 2) bad("dim", "even (the sinusoidal time embedding)");
  if ((c.steps as number) > (c.T as number)) bad("steps", `at most T (${c.T})`);
  if (!(typeof c.klWeight === "number" && c.klWeight >= 0 && Number.isFinite(c.klWeight))) bad("klWeight", "a finite number >= 0");
  if (!(typeof c.pUncond === "number" && c.pUncond >= 0 && c.pUncond < 1)) bad("pUncond", "a number in [0, 1)");
  if (!(typeof c.eta === "number" && c.eta >= 0 && Number.isFinite(c.eta))) bad("eta", "a finite number >= 0");
  if (!(typeof c.guidance === "number" && c.guidance >= 0 && Number.isFinite(c.guidance))) bad("guidance", "a finite number >= 0");
  if (c.recon !== "l1" && c.recon !== "l2") bad("recon", `"l1" or "l2"`);
  if (c.schedule !== "linear" && c.schedule !== "cosine") bad("schedule", `"linear" or "cosine"`);
  if (c.sampler !== "ddim" && c.sampler !== "ddpm") bad("sampler", `"ddim" or "ddpm"`);
  return c as LdmConfig;
}

/** The autoencoder, the latent denoiser and the latent scale (0 until the first diffusion step). */
export class LatentDiffusion extends Module {
  readonly ae: KLAutoencoder;
  readonly denoiser: LatentDenoiser;
  readonly latentScale: Tensor;
  readonly schedule: DiffusionSchedule;

  constructor(readonly cfg: LdmConfig, generator?: RandomGenerator) {
    super();
    this.ae = this.child("ae", new KLAutoencoder({ latentChannels: cfg.latentChannels, channels: cfg.aeChannels, groups: cfg.aeGroups }, generator));
    this.denoiser = this.child("unet", new LatentDenoiser({
      latentChannels: cfg.latentChannels, latentSize: 7, dim: cfg.dim, depth: cfg.depth, heads: cfg.heads, ctxTokens: cfg.ctxTokens, numClasses: 10,
    }, generator));
    this.latentScale = this.buffer("latent_scale", ops.zeros([1]));
    this.schedule = diffusionSchedule(cfg.schedule as BetaScheduleKind, cfg.T);
  }

  /** The latent scale, or an error when the diffusion stage has not started. */
  scale(): number {
    const s = this.latentScale.data[0] as number;
    if (!(s > 0)) throw new Error("ldm: the latent scale is not measured yet: sampling needs training past aeSteps (the autoencoder stage)");
    return s;
  }

  /** Scaled latents z = scale · (μ + σ ε) of images x, without gradient; measures the scale if unset (scale_by_std). */
  private latents(x: Tensor, gen: RandomGenerator): Tensor {
    return noGrad(() => {
      const { mean, logvar } = this.ae.encode(x);
      const z = ops.add(mean, ops.mul(ops.exp(ops.mul(logvar, 0.5)), ops.randn(mean.shape, { generator: gen })));
      if (!((this.latentScale.data[0] as number) > 0)) {
        const v = z.toTypedArray() as Float32Array;
        let m = 0, q = 0;
        for (const a of v) m += a;
        m /= v.length;
        for (const a of v) q += (a - m) ** 2;
        this.latentScale.data[0] = 1 / Math.sqrt(q / (v.length - 1)); // torch.std (unbiased), as scale_by_std
      }
      return ops.mul(z, this.latentScale.data[0] as number);
    });
  }

  loss(x: Tensor, labels: Int32Array, gen: RandomGenerator, step: number): Tensor {
    checkImageBatch("ldm", [1, 28, 28], x.shape);
    if (labels.length !== x.shape[0]) throw new RangeError(`ldm: ${labels.length} labels for ${x.shape[0]} images`);
    if (!int(step, 0)) throw new RangeError(`ldm: step must be an integer >= 0, got ${step}`);
    const c = this.cfg;
    if (step < c.aeSteps) {
      const eps = ops.randn([x.shape[0], c.latentChannels, 7, 7], { generator: gen });
      return this.ae.lossAt(x, eps, c.klWeight, c.recon as "l1" | "l2").loss;
    }
    const z = this.latents(x, gen);
    const u = new Float32Array(labels.length);
    gen.uniform(u, 0, 1);
    const y = labels.map((l, i) => (u[i] < c.pUncond ? this.denoiser.nullLabel : l));
    return ddpmLoss((zt, t) => this.denoiser.forward(zt, t, y), this.schedule, z, gen);
  }

  sample(n: number, gen: RandomGenerator, o: ImageSampleOptions = {}): Tensor {
    if (!int(n, 1)) throw new RangeError(`ldm: the sample count must be a positive integer, got ${n}`);
    const c = this.cfg, scale = this.scale();
    const sampler = o.sampler ?? c.sampler, steps = o.steps ?? c.steps, w = o.guidance ?? c.guidance, eta = o.eta ?? c.eta;
    const checked = ldmConfig({ sampler, steps, guidance: w, eta, T: c.T });
    if (sampler === "ddpm" && o.steps !== undefined && o.steps !== c.T) throw new RangeError(`ldm: the ddpm sampler runs all T = ${c.T} steps, got steps ${o.steps} (use sampler "ddim" to skip steps)`);
    const labels = o.labels ?? Int32Array.from({ length: n }, (_, i) => i % 10);
    if (labels.length !== n) throw new RangeError(`ldm: ${labels.length} labels for ${n} samples`);
    for (const l of labels) if (!(Number.isInteger(l) && l >= 0 && l < 10)) throw new RangeError(`ldm: sample labels must be integers in [0, 9], got ${l}`);
    const out: Tensor[] = [];
    for (let i = 0; i < n; i += SAMPLE_CHUNK) {
      const m = Math.min(SAMPLE_CHUNK, n - i), model = guidedDenoiser(this.denoiser, labels.slice(i, i + m), checked.guidance);
      const shape = [m, c.latentChannels, 7, 7];
      out.push(tidy(() => {
        const z = sampler === "ddpm" ? ddpmSample(model, this.schedule, shape, gen) : ddimSample(model, this.schedule, shape, gen, { steps, eta });
        return noGrad(() => ops.clamp(this.decodeChunked(ops.div(z, scale)), -1, 1));
      }));
    }
    return out.length === 1 ? out[0] : ops.cat(out, 0);
  }

  /** The decoder over rows in chunks (its 28 x 28 convolutions' im2col buffers grow with the batch). */
  decodeChunked(z: Tensor): Tensor {
    const parts = ops.split(z, DECODE_CHUNK, 0).map((p) => this.ae.decode(p));
    return parts.length === 1 ? parts[0] : ops.cat(parts, 0);
  }
}

const SAMPLE_CHUNK = 250, DECODE_CHUNK = 50;

export const ldmMethod: ImageMethod = {
  name: "ldm",
  description: "latent diffusion: a KL autoencoder (aeSteps), then class-conditional diffusion in its latent (cross-attention, classifier-free guidance)",
  defaults: LDM_DEFAULTS,
  trainDefaults: { lr: 5e-4, batch: 64 },
  create(config: Record<string, unknown>, seed: number): ImageModel {
    const cfg = ldmConfig(config);
    const m = new LatentDiffusion(cfg, new RandomGenerator(seed));
    return {
      module: m,
      config: { ...cfg },
      imageShape: [1, 28, 28],
      loss: (x, labels, gen, step) => m.loss(x, labels, gen, step),
      sample: (n, gen, o) => m.sample(n, gen, o),
    };
  },
};
