// The auxiliary losses of a mixture-of-experts router.
// - Load balancing (Switch Transformer, Fedus et al. 2021, eq. 4): E * sum_i f_i P_i, with P_i the mean
//   router probability of expert i over the N tokens and f_i the fraction of routed slots sent to i.
//   (For DeepSeek-V3's sigmoid router, P_i averages the normalized scores, its eq. 19.)
//   Generalized to top-k by counting the N * k slots (f_i = count_i / (N k)), so that sum_i f_i = 1 and
//   the loss is exactly 1 under uniform probabilities (P_i = 1/E), whatever the choice; f_i counts the
//   router's choices before capacity dropping (as Switch's density_1) and carries no gradient.
// - Router z-loss (ST-MoE, Zoph et al. 2022, eq. 5): mean over tokens of logsumexp(logits)^2.

import * as ops from "../../ops/index.js";
import type { Tensor } from "../../tensor/tensor.js";

/** f_i: the fraction of the N * k chosen slots that went to each of E experts. */
export function slotFractions(experts: Int32Array, nExperts: number): Float64Array {
  const f = new Float64Array(nExperts);
  for (const e of experts) f[e]++;
  for (let i = 0; i < nExperts; i++) f[i] /= experts.length;
  return f;
}

/** probs: [N, E] router probabilities; experts: the N * k chosen experts. Scalar. */
export function balanceLoss(probs: Tensor, experts: Int32Array): Tensor {
  const E = probs.shape[1];
  const f = ops.tensor(slotFractions(experts, E), { dtype: probs.dtype });
  return ops.mul(ops.sum(ops.mul(ops.mean(probs, 0), f)), E);
}

/** logits: [N, E] router logits. Scalar. */
export function zLoss(logits: Tensor): Tensor {
  return ops.mean(ops.square(ops.logsumexp(logits, -1)));
}
