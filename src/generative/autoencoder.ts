// The first stage of latent diffusion (Rombach et al. 2022, "High-Resolution Image Synthesis with Latent
// Diffusion Models", sec. 3.1): a convolutional autoencoder whose encoder gives a diagonal Gaussian
// q(z | x) = N(μ, σ²) over a latent of latentChannels x 7 x 7 (downsampling factor f = 4 on 28 x 28), trained
// with a reconstruction loss plus β KL(q(z | x) || N(0, I)) ("KL-reg", the paper's weight ~1e-6 at its scale).
// Layout after the LDM repository's Encoder / Decoder (ldm/modules/diffusionmodules/model.py) cut down to
// MNIST: GroupNorm + SiLU before every conv, stride-2 convs down, nearest upsampling + conv up; the
// log-variance is clamped to [-30, 20] as its DiagonalGaussianDistribution does.

import { Conv2d, GroupNorm } from "../nn/layers.js";
import { Module } from "../nn/module.js";
import * as ops from "../ops/index.js";
import type { RandomGenerator } from "../tensor/rng.js";
import type { Tensor } from "../tensor/tensor.js";

/** GroupNorm -> SiLU -> [nearest x2 upsampling] -> conv: the pre-activation step both halves are made of. */
class NormActConv extends Module {
  private readonly norm: GroupNorm;
  private readonly conv: Conv2d;
  constructor(groups: number, cin: number, cout: number, private readonly mode: "same" | "down" | "up", generator?: RandomGenerator) {
    super();
    this.norm = this.child("norm", new GroupNorm(groups, cin));
    this.conv = this.child("conv", new Conv2d(cin, cout, 3, { stride: mode === "down" ? 2 : 1, padding: 1, generator }));
  }
  forward(x: Tensor): Tensor {
    const h = ops.silu(this.norm.forward(x));
    return this.conv.forward(this.mode === "up" ? ops.upsampleNearest2d(h, 2) : h);
  }
}

export interface AutoencoderConfig {
  /** Channels of the latent (the paper's c; 4 x 7 x 7 = 196 numbers per 784-pixel image at the default). */
  latentChannels: number;
  /** Channels at 28 x 28; the 14 x 14 and 7 x 7 levels have twice as many. Divisible by groups. */
  channels: number;
  /** GroupNorm groups. */
  groups: number;
}

export interface AutoencoderLoss {
  loss: Tensor;
  /** Σ over pixels of the reconstruction error, mean over images. */
  recon: Tensor;
  /** KL(q(z|x) || N(0, I)) summed over the latent, mean over images. */
  kl: Tensor;
}

/** Images [B, 1, 28, 28] -> N(μ, σ²) over [B, c, 7, 7] -> images. */
export class KLAutoencoder extends Module {
  private readonly encIn: Conv2d;
  private readonly enc: NormActConv[];
  private readonly decIn: Conv2d;
  private readonly dec: NormActConv[];

  constructor(readonly cfg: AutoencoderConfig, generator?: RandomGenerator) {
    super();
    const { latentChannels: z, channels: c, groups: g } = cfg;
    this.encIn = this.child("encoder_in", new Conv2d(1, c, 3, { padding: 1, generator }));
    this.enc = this.childList("encoder", [
      new NormActConv(g, c, 2 * c, "down", generator), // 28 -> 14
      new NormActConv(g, 2 * c, 2 * c, "down", generator), // 14 -> 7
      new NormActConv(g, 2 * c, 2 * z, "same", generator), // μ and log σ², stacked on channels
    ]);
    this.decIn = this.child("decoder_in", new Conv2d(z, 2 * c, 3, { padding: 1, generator }));
    this.dec = this.childList("decoder", [
      new NormActConv(g, 2 * c, 2 * c, "up", generator), // 7 -> 14
      new NormActConv(g, 2 * c, c, "up", generator), // 14 -> 28
      new NormActConv(g, c, 1, "same", generator),
    ]);
  }

  /** The posterior's mean and log-variance, each [B, c, 7, 7]. */
  encode(x: Tensor): { mean: Tensor; logvar: Tensor } {
    checkImages("KLAutoencoder.encode", x);
    let h = this.encIn.forward(x);
    for (const b of this.enc) h = b.forward(h);
    const [mean, lv] = ops.split(h, this.cfg.latentChannels, 1);
    return { mean, logvar: ops.clamp(lv, -30, 20) };
  }

  decode(z: Tensor): Tensor {
    const c = this.cfg.latentChannels;
    if (z.ndim !== 4 || z.shape[1] !== c || z.shape[2] !== 7 || z.shape[3] !== 7) throw new RangeError(`KLAutoencoder.decode: latents must be [B, ${c}, 7, 7], got [${z.shape.join(", ")}]`);
    let h = this.decIn.forward(z);
    for (const b of this.dec) h = b.forward(h);
    return h;
  }

  /**
   * Recon + β KL for images x [B, 1, 28, 28] with the reparameterization z = μ + σ ε for the given ε
   * (Kingma & Welling 2014, sec. 2.4). Recon "l2" is Σ (x - x̂)², "l1" Σ |x - x̂| (the LDM repository's
   * LPIPSWithDiscriminator without LPIPS and GAN: its rec_loss is the L1); both per image, as is the KL.
   */
  lossAt(x: Tensor, eps: Tensor, beta: number, recon: "l1" | "l2"): AutoencoderLoss {
    const { mean, logvar } = this.encode(x);
    const z = ops.add(mean, ops.mul(ops.exp(ops.mul(logvar, 0.5)), eps));
    const d = ops.sub(this.decode(z), x), B = x.shape[0];
    const rec = ops.div(ops.sum(recon === "l1" ? ops.abs(d) : ops.mul(d, d)), B);
    const kl = ops.div(gaussianKl(mean, logvar), B);
    return { loss: ops.add(rec, ops.mul(kl, beta)), recon: rec, kl };
  }
}

/** KL(N(μ, σ²) || N(0, I)) = 0.5 Σ (μ² + σ² - 1 - log σ²), summed over every element. */
export function gaussianKl(mean: Tensor, logvar: Tensor): Tensor {
  return ops.mul(ops.sum(ops.sub(ops.add(ops.mul(mean, mean), ops.exp(logvar)), ops.add(logvar, 1))), 0.5);
}

/** Images must be [B, 1, 28, 28] (MNIST). */
export function checkImages(op: string, x: Tensor): void {
  if (x.ndim !== 4 || x.shape[1] !== 1 || x.shape[2] !== 28 || x.shape[3] !== 28) {
    throw new RangeError(`${op}: images must be [B, 1, 28, 28] (one channel, 28 x 28), got [${x.shape.join(", ")}]`);
  }
}
