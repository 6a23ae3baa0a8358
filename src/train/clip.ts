// Global-norm gradient clipping with torch.nn.utils.clip_grad_norm_ semantics (Pascanu et al. 2013):
// total = ||(||g_1||, ..., ||g_n||)||_2 over every gradient; coef = maxNorm / (total + 1e-6); when coef < 1
// every gradient is multiplied by coef. Returns the total norm before clipping.

import { noGrad } from "../tensor/autograd.js";
import type { Tensor } from "../tensor/tensor.js";
import { floatData } from "../ops/util.js";
import { mul } from "../ops/binary.js";

export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number): number {
  if (!(maxNorm > 0) || !Number.isFinite(maxNorm)) throw new RangeError(`clipGradNorm: maxNorm must be a finite number > 0, got ${maxNorm}`);
  const withGrad = [...new Set(params)].filter((p) => p.grad !== null); // a tied tensor counts once
  let sq = 0; // accumulated in float64
  for (const p of withGrad) {
    const g = floatData(p.grad as Tensor, "clipGradNorm");
    for (let i = 0; i < g.length; i++) sq += g[i] * g[i];
  }
  const total = Math.sqrt(sq);
  const coef = maxNorm / (total + 1e-6);
  // New gradient tensors, not in-place: a backward may hand the same storage to two parameters.
  if (coef < 1) noGrad(() => { for (const p of withGrad) p.grad = mul(p.grad as Tensor, coef); });
  return total;
}
