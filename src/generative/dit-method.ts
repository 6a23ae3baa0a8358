// The "dit" image method: an SD3-style DiT (dit.ts) trained as a rectified flow (Esser et al. 2024, SD3,
// §2-3): z_t = (1 - t) x0 + t ε, the network regresses the velocity ε - x0 (rectified-flow.ts eq. 1 with
// X0 = the data and X1 = the noise), t = sigmoid(u), u ~ N(m, s²) (logit-normal sampling, SD3 eq. 19, m = 0,
// s = 1 by default). Class labels are replaced by the null class with probability classDropout in training
// (Ho & Salimans 2022, classifier-free guidance); sampling integrates dz/dt = v from t = 1 (noise) to 0 with
// Euler or Heun steps and the guided velocity v_null + w (v_y - v_null).

import * as ops from "../ops/index.js";
import { noGrad } from "../tensor/autograd.js";
import { RandomGenerator } from "../tensor/rng.js";
import { tidy } from "../tensor/scope.js";
import type { Tensor } from "../tensor/tensor.js";
import { DiT, type DiTOptions, type QkNorm } from "./dit.js";
import type { ImageMethod, ImageModel, ImageSampleOptions } from "./image-method.js";
import { rectifiedFlowLossAt } from "./rectified-flow.js";
import { stepTensor } from "./ddpm.js";

export type DitSampler = "euler" | "heun";
const SAMPLERS: readonly string[] = ["euler", "heun"];
const QK_NORMS: readonly string[] = ["rmsnorm", "layernorm", "none"];

export interface DitConfig extends DiTOptions {
  /** Probability of training on the null class instead of the label (0 for unconditional models). */
  classDropout: number;
  /** Logit-normal timestep sampling: t = sigmoid(m + s u), u ~ N(0, 1). */
  logitMean: number;
  logitStd: number;
  /** Sampling defaults. */
  sampler: DitSampler;
  steps: number;
  guidance: number;
}

/** The MNIST model of bench/dit.ts: 7 x 7 patches of 4 x 4 pixels, width 128, 4 blocks, 4 heads. */
export const DIT_DEFAULTS: Readonly<DitConfig> = Object.freeze({
  imageSize: 28, channels: 1, patch: 4, dim: 128, depth: 4, heads: 4, mlpRatio: 4, numClasses: 10,
  qkNorm: "rmsnorm", freqDim: 256, timeScale: 1000,
  classDropout: 0.1, logitMean: 0, logitStd: 1, sampler: "euler", steps: 50, guidance: 2,
});

function checkSampler(s: unknown, field: string): DitSampler {
  if (typeof s !== "string" || !SAMPLERS.includes(s)) throw new RangeError(`dit: ${field} must be one of ${SAMPLERS.join(", ")}, got ${JSON.stringify(s)}`);
  return s as DitSampler;
}

/** The defaults overridden by `partial`; one clear error naming the first bad field. */
export function resolveDitConfig(partial: Record<string, unknown>): DitConfig {
  for (const k of Object.keys(partial)) {
    if (!Object.hasOwn(DIT_DEFAULTS, k)) throw new RangeError(`dit: unknown config field ${JSON.stringify(k)}; expected one of: ${Object.keys(DIT_DEFAULTS).join(", ")}`);
  }
  const c = { ...DIT_DEFAULTS, ...partial } as Record<string, unknown>;
  const int = (k: string, min: number) => {
    if (!Number.isSafeInteger(c[k]) || (c[k] as number) < min) throw new RangeError(`dit: ${k} must be an integer >= ${min}, got ${JSON.stringify(c[k])}`);
  };
  const num = (k: string, ok: (v: number) => boolean, what: string) => {
    if (typeof c[k] !== "number" || !ok(c[k] as number)) throw new RangeError(`dit: ${k} must be ${what}, got ${JSON.stringify(c[k])}`);
  };
  for (const k of ["imageSize", "channels", "patch", "dim", "depth", "heads", "mlpRatio", "freqDim", "steps"]) int(k, 1);
  int("numClasses", 0);
  const { imageSize, patch, dim, heads, freqDim } = c as unknown as DitConfig;
  if (imageSize % patch) throw new RangeError(`dit: patch ${patch} must divide imageSize ${imageSize}`);
  if (dim % heads) throw new RangeError(`dit: heads ${heads} must divide dim ${dim}`);
  if (dim % 4) throw new RangeError(`dit: dim must be a multiple of 4 (the 2D sin-cos position embedding), got ${dim}`);
  if (freqDim % 2) throw new RangeError(`dit: freqDim must be even, got ${freqDim}`);
  if (typeof c.qkNorm !== "string" || !QK_NORMS.includes(c.qkNorm)) throw new RangeError(`dit: qkNorm must be one of ${QK_NORMS.join(", ")}, got ${JSON.stringify(c.qkNorm)}`);
  num("timeScale", (v) => v > 0 && Number.isFinite(v), "a positive number");
  num("classDropout", (v) => v >= 0 && v < 1, "in [0, 1)");
  num("logitMean", Number.isFinite, "a finite number");
  num("logitStd", (v) => v > 0 && Number.isFinite(v), "a positive number");
  num("guidance", (v) => v >= 0 && Number.isFinite(v), "a number >= 0");
  checkSampler(c.sampler, "sampler");
  return c as unknown as DitConfig;
}

/** n timesteps t = sigmoid(m + s u), u ~ N(0, 1) from gen (SD3's logit-normal sampling, eq. 19). */
export function logitNormalTimes(n: number, gen: RandomGenerator, m = 0, s = 1): Float64Array {
  const u = new Float64Array(n);
  gen.normal(u, m, s);
  return u.map((v) => 1 / (1 + Math.exp(-v)));
}

/**
 * The rectified-flow loss at given times t [B], noise ε (like x) and labels: the mean over pixels of
 * (v(z_t, t) - (ε - x0))², z_t = (1 - t) x0 + t ε.
 */
export function ditLossAt(model: DiT, x0: Tensor, labels: Int32Array | null, t: ArrayLike<number>, noise: Tensor): Tensor {
  const perImage = x0.numel / x0.shape[0];
  return ops.div(rectifiedFlowLossAt((z, tt) => model.forward(z, tt, labels), x0, noise, t), perImage);
}

export interface DitSampleOptions { steps: number; sampler: DitSampler; guidance: number; labels: Int32Array | null }

/** The (guided) velocity at time t for every row of z: one batched forward of [z; z] with [labels; null]. */
function guidedVelocity(model: DiT, z: Tensor, t: number, labels: Int32Array | null, w: number): Tensor {
  const n = z.shape[0];
  if (!labels || w === 1) return model.forward(z, stepTensor(new Array(n).fill(t)), labels);
  const both = new Int32Array(2 * n).fill(model.nullClass);
  both.set(labels);
  const v = model.forward(ops.cat([z, z], 0), stepTensor(new Array(2 * n).fill(t)), both);
  const vy = ops.narrow(v, 0, 0, n), vn = ops.narrow(v, 0, n, n);
  return ops.add(vn, ops.mul(ops.sub(vy, vn), w));
}

/** Integrate dz/dt = v from t = 1 (z ~ N(0, I) from gen) to t = 0 in uniform steps; no gradient. */
export function ditSample(model: DiT, n: number, gen: RandomGenerator, o: DitSampleOptions): Tensor {
  const { imageSize: S, channels: C } = model.o;
  return noGrad(() => {
    let z = ops.randn([n, C, S, S], { generator: gen });
    for (let k = 0; k < o.steps; k++) {
      const t = 1 - k / o.steps, tn = 1 - (k + 1) / o.steps, h = tn - t;
      z = tidy(() => {
        const d1 = guidedVelocity(model, z, t, o.labels, o.guidance), euler = ops.add(z, ops.mul(d1, h));
        if (o.sampler === "euler") return euler;
        // Heun (the explicit trapezoid, Karras et al. 2022 Algorithm 1)
        return ops.add(z, ops.mul(ops.add(d1, guidedVelocity(model, euler, tn, o.labels, o.guidance)), h / 2));
      });
    }
    return ops.clamp(z, -1, 1);
  });
}

/** A DiT with its resolved config as an ImageModel. */
export function ditImageModel(cfg: DitConfig, seed: number): ImageModel & { net: DiT } {
  const net = new DiT(cfg, new RandomGenerator(seed));
  const { numClasses, channels: C, imageSize: S } = cfg;
  return {
    net, module: net, config: { ...cfg }, imageShape: [C, S, S],
    loss(x: Tensor, labels: Int32Array, gen: RandomGenerator): Tensor {
      const B = x.shape[0];
      if (x.ndim !== 4 || x.shape[1] !== C || x.shape[2] !== S || x.shape[3] !== S) throw new RangeError(`dit: images must be [B, ${C}, ${S}, ${S}], got [${x.shape.join(", ")}]`);
      if (numClasses > 0 && labels.length !== B) throw new RangeError(`dit: ${B} images but ${labels.length} labels`);
      const noise = ops.randn(x.shape, { generator: gen });
      const t = logitNormalTimes(B, gen, cfg.logitMean, cfg.logitStd);
      let y: Int32Array | null = null;
      if (numClasses > 0) {
        const drop = new Float64Array(B);
        gen.uniform(drop);
        y = labels.map((l, i) => (drop[i] < cfg.classDropout ? numClasses : l));
      }
      return ditLossAt(net, x, y, t, noise);
    },
    sample(n: number, gen: RandomGenerator, o: ImageSampleOptions = {}): Tensor {
      if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`dit: the number of samples must be a positive integer, got ${n}`);
      const steps = o.steps ?? cfg.steps, guidance = o.guidance ?? cfg.guidance;
      if (!Number.isSafeInteger(steps) || steps < 1) throw new RangeError(`dit: steps must be a positive integer, got ${steps}`);
      if (!(guidance >= 0 && Number.isFinite(guidance))) throw new RangeError(`dit: guidance must be a number >= 0, got ${guidance}`);
      const sampler = checkSampler(o.sampler ?? cfg.sampler, "sampler");
      let labels: Int32Array | null = null;
      if (numClasses > 0) {
        labels = o.labels ?? Int32Array.from({ length: n }, (_, i) => i % numClasses);
        if (labels.length !== n) throw new RangeError(`dit: ${labels.length} labels for ${n} samples`);
      } else if (o.labels) throw new RangeError("dit: labels given, but the model is unconditional (numClasses 0)");
      return ditSample(net, n, gen, { steps, sampler, guidance: labels ? guidance : 1, labels });
    },
  };
}

export const ditMethod: ImageMethod = {
  name: "dit",
  description: "SD3-style DiT (patches, adaLN-Zero, QK-norm, 2D sin-cos positions) trained as a rectified flow with logit-normal t and classifier-free guidance",
  defaults: DIT_DEFAULTS,
  create(config: Record<string, unknown>, seed: number): ImageModel {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`dit: seed must be an integer, got ${seed}`);
    return ditImageModel(resolveDitConfig(config), seed);
  },
};
