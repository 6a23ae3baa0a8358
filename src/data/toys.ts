// 2D toy distributions of the flow / flow-matching literature, as defined in FFJORD's toy_data.py
// (Grathwohl et al. 2019, github rtqichen/ffjord lib/toy_data.py; reused by torchcfm and the
// rectified-flow demos). Every draw comes from the caller's seeded RandomGenerator.

import { RandomGenerator } from "../tensor/rng.js";
import { Tensor } from "../tensor/tensor.js";
import { trackStorage } from "../tensor/memory.js";

export const TOYS = ["moons", "8gaussians", "checkerboard", "gaussian"] as const;
export type Toy = (typeof TOYS)[number];

function uniform(n: number, gen: RandomGenerator): Float64Array {
  const u = new Float64Array(n);
  gen.uniform(u);
  return u;
}

function normal(n: number, gen: RandomGenerator): Float64Array {
  const z = new Float64Array(n);
  gen.normal(z);
  return z;
}

/**
 * n points [n, 2] float32 of a toy:
 * - moons: sklearn make_moons with noise 0.1, then x 2 + (-1, -0.2) (FFJORD). The upper moon is
 *   (cos θ, sin θ), the lower (1 - cos θ, 0.5 - sin θ); here θ ~ U(0, π) and the moon is a fair coin,
 *   so draws are i.i.d. (sklearn spaces θ by linspace).
 * - 8gaussians: centers 4 (cos kπ/4, sin kπ/4), std 0.5, all divided by 1.414 (FFJORD).
 * - checkerboard: x1 ~ U(-2, 2), x2 ~ U(0, 1) - 2 Bernoulli(1/2) + (floor(x1) mod 2), both x 2 (FFJORD).
 * - gaussian: N(0, I), the usual source distribution.
 */
export function sampleToy(name: Toy, n: number, gen: RandomGenerator): Tensor {
  if (!TOYS.includes(name)) throw new RangeError(`sampleToy: unknown toy ${JSON.stringify(name)}; expected one of ${TOYS.join(", ")}`);
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`sampleToy: n must be a positive integer, got ${n}`);
  const out = new Float32Array(2 * n);
  if (name === "gaussian") {
    gen.normal(out);
  } else if (name === "moons") {
    const u = uniform(2 * n, gen), z = normal(2 * n, gen);
    for (let i = 0; i < n; i++) {
      const th = Math.PI * u[2 * i], upper = u[2 * i + 1] < 0.5;
      const x = upper ? Math.cos(th) : 1 - Math.cos(th), y = upper ? Math.sin(th) : 0.5 - Math.sin(th);
      out[2 * i] = 2 * (x + 0.1 * z[2 * i]) - 1;
      out[2 * i + 1] = 2 * (y + 0.1 * z[2 * i + 1]) - 0.2;
    }
  } else if (name === "8gaussians") {
    const k = new Int32Array(n), z = normal(2 * n, gen);
    gen.randint(k, 8);
    for (let i = 0; i < n; i++) {
      const a = (k[i] * Math.PI) / 4;
      out[2 * i] = (4 * Math.cos(a) + 0.5 * z[2 * i]) / 1.414;
      out[2 * i + 1] = (4 * Math.sin(a) + 0.5 * z[2 * i + 1]) / 1.414;
    }
  } else {
    const u = uniform(2 * n, gen), b = new Int32Array(n);
    gen.randint(b, 2);
    for (let i = 0; i < n; i++) {
      const x1 = 4 * u[2 * i] - 2;
      const x2 = u[2 * i + 1] - 2 * b[i] + (((Math.floor(x1) % 2) + 2) % 2);
      out[2 * i] = 2 * x1;
      out[2 * i + 1] = 2 * x2;
    }
  }
  trackStorage(out);
  return new Tensor(out, [n, 2]);
}
