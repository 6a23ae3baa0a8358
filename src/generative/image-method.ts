// The seam between an image-generative method (DDPM with a U-Net, the SD3-style DiT, latent diffusion,
// the flows) and what drives it (`tsformer diffuse`, the benches): a method builds a model from a
// JSON config; the model gives a training loss on a batch of images and draws samples. The driver owns the
// optimizer, the data order, checkpoints and resume, so every method gets them the same way.

import type { Module } from "../nn/module.js";
import type { RandomGenerator } from "../tensor/rng.js";
import type { Tensor } from "../tensor/tensor.js";

/** What a sampler may be asked for; a method ignores what it has no use for and rejects what it cannot do. */
export interface ImageSampleOptions {
  /** Integration / denoising steps (a method's default when absent). */
  steps?: number;
  /** A method-specific sampler name, e.g. "ddpm" | "ddim" | "euler" | "heun". */
  sampler?: string;
  /** DDIM's η. */
  eta?: number;
  /** DDIM's step subsequence: "uniform" (default) or "quad" (the DDIM repository's two skip types). */
  spacing?: "uniform" | "quad";
  /** Class labels [n] for conditional methods. */
  labels?: Int32Array;
  /** Classifier-free guidance scale (1 = none). */
  guidance?: number;
  /** Sampling temperature for flows. */
  temperature?: number;
}

export interface ImageModel {
  /** Everything trained and saved. */
  readonly module: Module;
  /** The resolved config (defaults filled in); saved beside the weights and enough to rebuild the model. */
  readonly config: Record<string, unknown>;
  /** Image shape [C, H, W] the model reads and writes (MNIST: [1, 28, 28], pixels in [-1, 1]). */
  readonly imageShape: readonly [number, number, number];
  /**
   * The training loss for a batch x [B, C, H, W] in [-1, 1] with class labels [B], at optimizer step `step`
   * (a method with stages, such as latent diffusion's autoencoder then diffusion, switches on it).
   * Randomness (noise, timesteps) comes only from gen, so a resumed run replays exactly.
   */
  loss(x: Tensor, labels: Int32Array, gen: RandomGenerator, step: number): Tensor;
  /** n samples [n, C, H, W] in [-1, 1] (clamped), drawn without gradient. */
  sample(n: number, gen: RandomGenerator, o?: ImageSampleOptions): Tensor;
}

export interface ImageMethod {
  readonly name: string;
  /** One line for `tsformer diffuse --help`. */
  readonly description: string;
  /** Defaults for the config; create() accepts a partial override and throws one clear error per bad field. */
  readonly defaults: Readonly<Record<string, unknown>>;
  /** Training settings that suit the method, used where the driver is given none (its own defaults otherwise). */
  readonly trainDefaults?: Readonly<{ lr?: number; batch?: number; warmup?: number }>;
  create(config: Record<string, unknown>, seed: number): ImageModel;
}

/** A batch x must be [B, ...imageShape]; one clear error naming the method and both shapes otherwise. */
export function checkImageBatch(method: string, imageShape: readonly number[], xShape: readonly number[]): void {
  if (xShape.length !== imageShape.length + 1 || imageShape.some((v, i) => v !== xShape[i + 1])) {
    throw new RangeError(`${method}: the model reads images [${imageShape.join(", ")}] (C, H, W) but the batch is [${xShape.join(", ")}] (B, C, H, W); set the method's config to the data's shape`);
  }
}
