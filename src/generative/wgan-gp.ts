// WGAN-GP (Gulrajani, Ahmed, Arjovsky, Dumoulin & Courville 2017, "Improved Training of Wasserstein
// GANs", arXiv 1704.00028), Algorithm 1, for low-dimensional data (the 2D toys):
// - critic loss L = E[D(x̃)] - E[D(x)] + λ E[(||∇_x̂ D(x̂)||_2 - 1)²] (eq. 3), x̃ = G(z), x̂ = ε x + (1 - ε) x̃
//   with ε ~ U[0, 1] per sample (Algorithm 1, lines 4-8); the penalty differentiates the critic's input
//   gradient again (autograd's createGraph, torch.autograd.grad(create_graph=True) in the reference);
// - n_critic critic steps per generator step, the generator minimizing -E[D(G(z))] (line 11);
// - Adam with α = 1e-4, β1 = 0, β2 = 0.9, λ = 10, n_critic = 5 (the defaults of Algorithm 1).
// The networks follow the reference toy script (igul222/improved_wgan_training gan_toy.py): ReLU MLPs,
// the generator mapping 2D noise z ~ N(0, I) to a point, the critic a point to a scalar (no batch norm:
// the penalty is per sample, sec. 4).

import * as ops from "../ops/index.js";
import { noGrad } from "../tensor/autograd.js";
import { RandomGenerator } from "../tensor/rng.js";
import { tidy } from "../tensor/scope.js";
import type { Tensor } from "../tensor/tensor.js";
import { AdamW, defaultParamGroups } from "../train/optim.js";
import { ReluMLP } from "./mlp.js";

/** Rows of a [N, d] data tensor, checked once: everything else takes points in that layout. */
export function checkPoints(x: Tensor, what: string, fn: string): number {
  if (x.ndim !== 2 || x.shape[0] < 1 || x.shape[1] < 1) throw new RangeError(`${fn}: ${what} must be a [N, d] tensor of points, got shape [${x.shape.join(", ")}]`);
  return x.shape[1];
}

/**
 * The gradient penalty of eq. 3: mean over rows of (||∇_x̂ D(x̂)||_2 - 1)², x̂ = ε x + (1 - ε) x̃, ε [B] one
 * per row. Differentiable in the critic's parameters (their gradient goes through the input gradient).
 */
export function gradientPenalty(critic: (x: Tensor) => Tensor, real: Tensor, fake: Tensor, eps: ArrayLike<number>): Tensor {
  const B = real.shape[0];
  if (fake.shape.length !== real.shape.length || fake.shape.some((n, i) => n !== real.shape[i])) {
    throw new RangeError(`gradientPenalty: real and fake must have the same shape, got [${real.shape.join(", ")}] and [${fake.shape.join(", ")}]`);
  }
  if (eps.length !== B) throw new RangeError(`gradientPenalty: eps must hold one value per row (${B}), got ${eps.length}`);
  const e = ops.tensor(Float64Array.from(eps), { shape: [B, 1] }).to(real.dtype);
  const xHat = ops.add(ops.mul(e, real), ops.mul(ops.sub(1, e), fake));
  // each row's output depends on its own row only, so the gradient of the sum is the per-row ∇_x̂ D(x̂)
  const [g] = ops.grad((x) => ops.sum(critic(x)), { createGraph: true })(xHat);
  const norm = ops.sqrt(ops.sum(ops.square(g), 1));
  return ops.mean(ops.square(ops.sub(norm, 1)));
}

export interface WganGpOptions {
  /** Data dimension (2 for the toys); the noise has the same size. */
  dim?: number;
  noiseDim?: number;
  hidden?: number;
  layers?: number;
  /** Critic steps per generator step (n_critic, default 5). */
  nCritic?: number;
  /** Penalty weight λ (default 10). */
  lambda?: number;
  /** Adam α, β1, β2 (defaults 1e-4, 0, 0.9). */
  lr?: number;
  beta1?: number;
  beta2?: number;
  /** Seeds both networks' init. */
  seed?: number;
}

export interface CriticLoss { loss: Tensor; wasserstein: number; penalty: number }

/** A generator, a critic and their Adam optimizers (Algorithm 1's state). */
export class WganGp {
  readonly generator: ReluMLP;
  readonly critic: ReluMLP;
  readonly nCritic: number;
  readonly lambda: number;
  readonly noiseDim: number;
  private readonly optG: AdamW;
  private readonly optD: AdamW;

  constructor(o: WganGpOptions = {}) {
    const { dim = 2, hidden = 128, layers = 3, nCritic = 5, lambda = 10, lr = 1e-4, beta1 = 0, beta2 = 0.9, seed = 0 } = o;
    const noiseDim = o.noiseDim ?? dim;
    if (!Number.isSafeInteger(nCritic) || nCritic < 1) throw new RangeError(`WganGp: nCritic must be a positive integer, got ${nCritic}`);
    if (!(lambda >= 0 && Number.isFinite(lambda))) throw new RangeError(`WganGp: lambda must be a finite number >= 0, got ${lambda}`);
    for (const [k, v] of [["dim", dim], ["noiseDim", noiseDim]] as const) {
      if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`WganGp: ${k} must be a positive integer, got ${v}`);
    }
    const gen = new RandomGenerator(seed);
    this.generator = new ReluMLP(noiseDim, dim, { hidden, layers, generator: gen });
    this.critic = new ReluMLP(dim, 1, { hidden, layers, generator: gen });
    this.nCritic = nCritic;
    this.lambda = lambda;
    this.noiseDim = noiseDim;
    this.optG = new AdamW(defaultParamGroups(this.generator, 0), { lr, beta1, beta2 });
    this.optD = new AdamW(defaultParamGroups(this.critic, 0), { lr, beta1, beta2 });
  }

  /** Eq. 3 on a batch: real x, noise z (x̃ = G(z), no gradient to G), ε per row. */
  criticLoss(real: Tensor, z: Tensor, eps: ArrayLike<number>): CriticLoss {
    checkPoints(real, "real", "WganGp.criticLoss");
    const fake = noGrad(() => this.generator.forward(z));
    const c = (x: Tensor) => this.critic.forward(x);
    const w = ops.sub(ops.mean(c(real)), ops.mean(c(fake)));  // the Wasserstein estimate E D(x) - E D(x̃)
    const gp = gradientPenalty(c, real, fake, eps);
    return { loss: ops.add(ops.neg(w), ops.mul(gp, this.lambda)), wasserstein: w.item(), penalty: gp.item() };
  }

  /** Algorithm 1, line 11: -E[D(G(z))]. */
  generatorLoss(z: Tensor): Tensor {
    return ops.neg(ops.mean(this.critic.forward(this.generator.forward(z))));
  }

  /** One critic update (lines 3-9); returns the loss before it. */
  criticStep(real: Tensor, z: Tensor, eps: ArrayLike<number>): { loss: number; wasserstein: number; penalty: number } {
    return tidy(() => {
      this.optD.zeroGrad();
      const r = this.criticLoss(real, z, eps);
      r.loss.backward();
      this.optD.step();
      return { loss: r.loss.item(), wasserstein: r.wasserstein, penalty: r.penalty };
    });
  }

  /** One generator update (lines 10-11); the critic is frozen meanwhile. Returns the loss before it. */
  generatorStep(z: Tensor): number {
    return tidy(() => {
      this.optG.zeroGrad();
      this.critic.requiresGrad_(false);
      try {
        const l = this.generatorLoss(z);
        l.backward();
        this.optG.step();
        return l.item();
      } finally {
        this.critic.requiresGrad_(true);
      }
    });
  }

  noise(n: number, gen: RandomGenerator): Tensor {
    return ops.randn([n, this.noiseDim], { generator: gen });
  }

  /** n points G(z), z ~ N(0, I). */
  sample(n: number, gen: RandomGenerator): Tensor {
    return noGrad(() => this.generator.forward(this.noise(n, gen)));
  }
}

export interface WganTrainOptions extends WganGpOptions {
  /** Generator iterations (Algorithm 1's outer loop). */
  iterations: number;
  batch?: number;
  /** Draws batches, noise and ε (default: a generator seeded with seed + 1). */
  rng?: RandomGenerator;
  onIteration?: (it: number, r: { critic: number; wasserstein: number; penalty: number; generator: number }, model: WganGp) => void;
}

/** A minibatch of `batch` rows drawn uniformly with replacement from data [N, d]. */
export function drawRows(data: Tensor, batch: number, gen: RandomGenerator): Tensor {
  const idx = new Int32Array(batch);
  gen.randint(idx, data.shape[0]);
  return ops.indexSelect(data, 0, ops.tensor(idx, { shape: [batch] }));
}

/** Algorithm 1 on a fixed data set [N, d]; returns the trained model and the last iteration's numbers. */
export function trainWganGp(data: Tensor, o: WganTrainOptions): { model: WganGp; last: { critic: number; wasserstein: number; penalty: number; generator: number } } {
  const dim = checkPoints(data, "data", "trainWganGp");
  if (!Number.isSafeInteger(o.iterations) || o.iterations < 1) throw new RangeError(`trainWganGp: iterations must be a positive integer, got ${o.iterations}`);
  const batch = o.batch ?? 256;
  if (!Number.isSafeInteger(batch) || batch < 1) throw new RangeError(`trainWganGp: batch must be a positive integer, got ${batch}`);
  if (o.dim !== undefined && o.dim !== dim) throw new RangeError(`trainWganGp: data has ${dim} features per point, options.dim is ${o.dim}`);
  const model = new WganGp({ ...o, dim });
  const gen = o.rng ?? new RandomGenerator((o.seed ?? 0) + 1);
  const eps = new Float64Array(batch);
  let last = { critic: NaN, wasserstein: NaN, penalty: NaN, generator: NaN };
  for (let it = 0; it < o.iterations; it++) {
    let c = { loss: NaN, wasserstein: NaN, penalty: NaN };
    for (let k = 0; k < model.nCritic; k++) {
      gen.uniform(eps);
      c = tidy(() => model.criticStep(drawRows(data, batch, gen), model.noise(batch, gen), eps));
    }
    const g = tidy(() => model.generatorStep(model.noise(batch, gen)));
    last = { critic: c.loss, wasserstein: c.wasserstein, penalty: c.penalty, generator: g };
    o.onIteration?.(it, last, model);
  }
  return { model, last };
}
