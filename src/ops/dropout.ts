// Inverted dropout (Srivastava et al. 2014): keep with prob 1-p and scale by 1/(1-p), so eval is identity.
// The mask comes from the seeded counter-based RNG, so a run replays exactly.

import { recordComposite } from "../tensor/autograd.js";
import { defaultGenerator, type RandomGenerator } from "../tensor/rng.js";
import { Tensor } from "../tensor/tensor.js";
import { commonFloat } from "./util.js";
import { binaryRaw } from "./raw.js";
import { mul } from "./binary.js";

export function dropout(x: Tensor, p: number, training = true, gen: RandomGenerator = defaultGenerator): Tensor {
  if (!(p >= 0 && p < 1)) throw new RangeError(`dropout: p must be in [0, 1), got ${p}`);
  if (!training || p === 0) return x;
  const dtype = commonFloat("dropout", x);
  const mask = Tensor.empty(x.shape, dtype);  // every element is drawn
  const md = mask.data as Float32Array | Float64Array;
  gen.uniform(md);
  const scale = 1 / (1 - p);
  for (let i = 0; i < md.length; i++) md[i] = md[i] >= p ? scale : 0;
  const out = binaryRaw("mul", x, mask);
  return recordComposite(out, "dropout", [x], (g, { saved: [m] }) => [mul(g, m)], [mask]);
}
