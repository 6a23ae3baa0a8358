// The image methods "realnvp" and "glow": the multi-scale flows of flows/multiscale.ts (Dinh et al. 2017;
// Kingma & Dhariwal 2018) behind the image-method seam. Training minimizes the NLL of uniformly dequantized
// pixels in bits per dimension (flows/preprocess.ts: bitsPerDim's (nll + D log 256) / (D ln 2), the
// papers' metric); samples come from latents at a temperature (Glow sec. 5.3). ActNorm's data-dependent
// init (Glow sec. 3.1) runs on the first training batch; its flag is a buffer, so a resumed run keeps it.

import * as ops from "../ops/index.js";
import { noGrad } from "../tensor/autograd.js";
import { RandomGenerator } from "../tensor/rng.js";
import type { Tensor } from "../tensor/tensor.js";
import { MultiScaleFlow, type FlowVariant } from "./flows/multiscale.js";
import { dequantize } from "./flows/preprocess.js";
import { checkImageBatch, type ImageMethod, type ImageModel, type ImageSampleOptions } from "./image-method.js";

export type FlowMethodConfig = {
  /** [C, H, W] of the images (MNIST: [1, 28, 28]). */
  imageShape: [number, number, number];
  /** Levels L: each squeezes by 2, so 2^L must divide H and W. */
  levels: number;
  /** Flow steps K per level. */
  depth: number;
  /** Hidden channels of each coupling's conv net. */
  hidden: number;
  /** The logit transform's α: p = α + (1 - 2α) y must stay inside (0, 1), so α ∈ [0, 0.5). */
  alpha: number;
};

const DEFAULTS: FlowMethodConfig = { imageShape: [1, 28, 28], levels: 2, depth: 4, hidden: 64, alpha: 0.05 };

const isPosInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 1;

/** The defaults overridden by `config`; one error naming the method, the field and what was expected. */
export function flowConfig(name: FlowVariant, config: Record<string, unknown>): FlowMethodConfig {
  if (typeof config !== "object" || config === null || Array.isArray(config)) throw new TypeError(`${name}: the config must be a JSON object, got ${JSON.stringify(config)}`);
  const fail = (field: string, expected: string): never => {
    throw new RangeError(`${name}: config.${field} is ${JSON.stringify(config[field])}; expected ${expected}`);
  };
  for (const k of Object.keys(config)) if (!Object.hasOwn(DEFAULTS, k)) throw new RangeError(`${name}: unknown config field ${JSON.stringify(k)}; expected some of ${Object.keys(DEFAULTS).join(", ")}`);
  const c = { ...DEFAULTS, ...config } as FlowMethodConfig;
  if (!Array.isArray(c.imageShape) || c.imageShape.length !== 3 || !c.imageShape.every(isPosInt)) fail("imageShape", "[C, H, W], three positive integers");
  for (const f of ["levels", "depth", "hidden"] as const) if (!isPosInt(c[f])) fail(f, "a positive integer");
  const [, H, W] = c.imageShape;
  if (H % 2 ** c.levels || W % 2 ** c.levels) {
    let max = 0;
    while (H % 2 ** (max + 1) === 0 && W % 2 ** (max + 1) === 0) max++;
    fail("levels", `at most ${max} for ${H}x${W} images: each level squeezes H and W by 2, so 2^levels must divide both (the squeeze is not invertible otherwise)`);
  }
  if (typeof c.alpha !== "number" || !(c.alpha >= 0 && c.alpha < 0.5)) fail("alpha", "a number in [0, 0.5) (the logit transform is invertible only while 1 - 2 alpha > 0)");
  return { ...c, imageShape: [...c.imageShape] };
}

class FlowModel implements ImageModel {
  readonly module: MultiScaleFlow;
  readonly imageShape: readonly [number, number, number];

  constructor(readonly name: FlowVariant, readonly config: FlowMethodConfig, seed: number) {
    const { imageShape, levels, depth, hidden, alpha } = config;
    this.imageShape = imageShape;
    this.module = new MultiScaleFlow({ imageShape, variant: name, levels, steps: depth, hidden, alpha, generator: new RandomGenerator(seed) });
  }

  /**
   * Bits/dim of the batch: x ∈ [-1, 1] holds 8-bit pixels 2k/255 - 1, dequantized to (k + u)/256 with u
   * drawn from gen; the mean NLL in nats over D = C H W dims becomes bits/dim by bitsPerDim's formula.
   */
  loss(x: Tensor, _labels: Int32Array, gen: RandomGenerator): Tensor {
    checkImageBatch(this.name, this.imageShape, x.shape);
    const v = x.contiguous().toTypedArray(), y = new Float32Array(v.length);
    for (let i = 0; i < v.length; i++) y[i] = (v[i] + 1) / 2;
    const nll = ops.mean(this.module.nll(dequantize(y, [...x.shape], gen)));
    const D = this.module.dims;
    return ops.div(ops.add(nll, D * Math.log(256)), D * Math.LN2);
  }

  sample(n: number, gen: RandomGenerator, o: ImageSampleOptions = {}): Tensor {
    if (!isPosInt(n)) throw new RangeError(`${this.name}: n must be a positive integer, got ${n}`);
    // One inverse pass: steps and η have no use here (ignored); a sampler, labels or guidance cannot be honoured.
    if (o.sampler !== undefined) throw new RangeError(`${this.name}: sampler ${JSON.stringify(o.sampler)} is not available; a flow samples in one inverse pass (set the temperature instead)`);
    if (o.labels !== undefined) throw new RangeError(`${this.name}: labels are not available; the flow is unconditional`);
    if (o.guidance !== undefined && o.guidance !== 1) throw new RangeError(`${this.name}: guidance ${o.guidance} is not available; the flow is unconditional (guidance 1 = none)`);
    const t = o.temperature ?? 1;
    if (typeof t !== "number" || !(t >= 0) || !Number.isFinite(t)) throw new RangeError(`${this.name}: temperature must be a finite number >= 0, got ${t}`);
    // MultiScaleFlow.sample gives [0, 1); the seam's range is [-1, 1]
    return noGrad(() => ops.clamp(ops.sub(ops.mul(this.module.sample(n, gen, t), 2), 1), -1, 1));
  }
}

function flowMethod(name: FlowVariant, description: string): ImageMethod {
  return {
    name, description, defaults: DEFAULTS,
    // bench/flows.ts's settings (lr 1e-3 after a 100-step warmup)
    trainDefaults: { lr: 1e-3, batch: 64, warmup: 100 },
    create: (config, seed) => new FlowModel(name, flowConfig(name, config), seed),
  };
}

export const realnvpMethod = flowMethod("realnvp", "RealNVP (Dinh et al. 2017): checkerboard and channel affine couplings, multi-scale; NLL in bits/dim");
export const glowMethod = flowMethod("glow", "Glow (Kingma & Dhariwal 2018): ActNorm, invertible 1x1 convs, affine couplings, multi-scale; NLL in bits/dim");
