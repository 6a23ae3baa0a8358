// The multi-scale architecture (Dinh et al. 2017, "Real NVP", sec. 3.6, eq. 13; Kingma & Dhariwal 2018,
// "Glow", sec. 3 and fig. 2) for [B, C, H, W] images in [0, 1) (dequantized, see preprocess.ts):
//   logit transform -> L levels of { [RealNVP: 3 checkerboard couplings] squeeze, K steps,
//   split: half the channels leave as z_l (factored out, eq. 13) } -> the last level keeps all.
// A step is Glow's ActNorm -> invertible 1x1 conv -> channel coupling, or RealNVP's ActNorm -> channel
// coupling with alternating halves (ActNorm in place of RealNVP's batch norm, as Glow does). The prior is
// N(0, I) on every z, so log p(x) = Σ_l log N(z_l; 0, I) + Σ log|det| (eq. 3).

import { Module } from "../../nn/module.js";
import * as ops from "../../ops/index.js";
import { noGrad } from "../../tensor/autograd.js";
import { defaultGenerator, type RandomGenerator } from "../../tensor/rng.js";
import type { Tensor } from "../../tensor/tensor.js";
import { ActNorm } from "./actnorm.js";
import { AffineCoupling } from "./coupling.js";
import { FlowSequence, checkImage, perExample, positiveInt, type FlowLayer, type FlowOptions } from "./flow.js";
import { InvConv1x1 } from "./invconv.js";
import { LogitTransform } from "./preprocess.js";
import { Squeeze } from "./squeeze.js";

export type FlowVariant = "glow" | "realnvp";

export interface MultiScaleOptions extends FlowOptions {
  /** [C, H, W] of the images (MNIST: [1, 28, 28]). */
  imageShape: [number, number, number];
  variant?: FlowVariant;
  /** Levels L (default 2): each squeezes by 2, so H and W must be divisible by 2^L. */
  levels?: number;
  /** Steps K per level (default 4). */
  steps?: number;
  /** Hidden channels of each coupling's net (default 64). */
  hidden?: number;
  /** The logit transform's α (default 0.05). */
  alpha?: number;
}

export interface MultiScaleOutput {
  /** The latents: one per factored-out level, then the last level's. */
  zs: Tensor[];
  logdet: Tensor;
}

const LOG_2PI = Math.log(2 * Math.PI);

export class MultiScaleFlow extends Module {
  readonly variant: FlowVariant;
  readonly dims: number;
  readonly levels: FlowSequence[];
  private readonly logit: LogitTransform;

  constructor(readonly o: MultiScaleOptions) {
    super();
    const [C, H, W] = o.imageShape;
    for (const [f, v] of [["imageShape[0]", C], ["imageShape[1]", H], ["imageShape[2]", W]] as const) positiveInt("MultiScaleFlow", f, v);
    const L = positiveInt("MultiScaleFlow", "levels", o.levels ?? 2), K = positiveInt("MultiScaleFlow", "steps", o.steps ?? 4);
    const variant = (this.variant = o.variant ?? "glow");
    if (variant !== "glow" && variant !== "realnvp") throw new RangeError(`MultiScaleFlow: variant must be "glow" or "realnvp", got ${JSON.stringify(variant)}`);
    if (H % 2 ** L || W % 2 ** L) throw new RangeError(`MultiScaleFlow: image size ${H}x${W} is not divisible by 2^levels = ${2 ** L} (each of the ${L} levels squeezes by 2)`);
    this.dims = C * H * W;
    const gen = o.generator ?? defaultGenerator, lo: FlowOptions = { dtype: o.dtype, generator: gen }, hidden = o.hidden ?? 64;
    this.logit = this.child("logit", new LogitTransform(o.alpha ?? 0.05));
    const levels: FlowSequence[] = [];
    let c = C;
    for (let l = 0; l < L; l++) {
      const layers: (Module & FlowLayer)[] = [];
      if (variant === "realnvp") {
        for (let k = 0; k < 3; k++) layers.push(new ActNorm(c, lo), new AffineCoupling(c, { ...lo, mask: "checkerboard", parity: (k % 2) as 0 | 1, hidden }));
      }
      layers.push(new Squeeze(2));
      c *= 4;
      for (let k = 0; k < K; k++) {
        layers.push(new ActNorm(c, lo));
        if (variant === "glow") layers.push(new InvConv1x1(c, lo));
        layers.push(new AffineCoupling(c, { ...lo, mask: "channel", parity: variant === "glow" ? 0 : ((k % 2) as 0 | 1), hidden }));
      }
      levels.push(new FlowSequence(layers));
      if (l < L - 1) c /= 2;
    }
    this.levels = this.childList("levels", levels);
  }

  forward(x: Tensor): MultiScaleOutput {
    const [C, H, W] = this.o.imageShape;
    checkImage("MultiScaleFlow", x, C);
    if (x.shape[2] !== H || x.shape[3] !== W) throw new RangeError(`MultiScaleFlow: input is ${x.shape[2]}x${x.shape[3]}, expected ${H}x${W}`);
    let { y: h, logdet } = this.logit.forward(x);
    const zs: Tensor[] = [];
    this.levels.forEach((level, l) => {
      const o = level.forward(h);
      logdet = ops.add(logdet, o.logdet);
      if (l === this.levels.length - 1) { zs.push(o.y); return; }
      const c = o.y.shape[1] / 2;
      zs.push(o.y.narrow(1, 0, c));
      h = o.y.narrow(1, c, c);
    });
    return { zs, logdet };
  }

  /** -log p(x) in nats per example [B]: -(Σ log N(z; 0, I) + log|det|). */
  nll(x: Tensor): Tensor {
    const { zs, logdet } = this.forward(x);
    let logpz: Tensor | null = null;
    for (const z of zs) {
      const lp = ops.mul(ops.add(perExample(ops.square(z)), (z.numel / z.shape[0]) * LOG_2PI), -0.5);
      logpz = logpz ? ops.add(logpz, lp) : lp;
    }
    return ops.neg(ops.add(logpz as Tensor, logdet));
  }

  inverse(zs: Tensor[]): Tensor {
    if (zs.length !== this.levels.length) throw new RangeError(`MultiScaleFlow.inverse: ${zs.length} latents, expected ${this.levels.length} (one per level)`);
    let h = this.levels[this.levels.length - 1].inverse(zs[zs.length - 1]);
    for (let l = this.levels.length - 2; l >= 0; l--) h = this.levels[l].inverse(ops.cat([zs[l], h], 1));
    return this.logit.inverse(h);
  }

  /** The latents' shapes for a batch of n: [n, C_l, H_l, W_l] per level. */
  latentShapes(n: number): number[][] {
    let [c, h, w] = this.o.imageShape;
    return this.levels.map((_, l) => {
      c *= 4; h /= 2; w /= 2;
      if (l < this.levels.length - 1) { c /= 2; return [n, c, h, w]; }
      return [n, c, h, w];
    });
  }

  /** n samples in [0, 1) from latents drawn from N(0, temperature² I) (Glow sec. 5.3's reduced temperature). */
  sample(n: number, gen: RandomGenerator = defaultGenerator, temperature = 1): Tensor {
    const dtype = this.o.dtype ?? "float32";
    return noGrad(() => this.inverse(this.latentShapes(n).map((s) => ops.randn(s, { generator: gen, std: temperature, dtype }))));
  }
}
