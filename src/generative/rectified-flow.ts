// Rectified flow (Liu, Gong & Liu 2022, "Flow Straight and Fast: Learning to Generate and Transfer Data
// with Rectified Flow"; Su's posts kexue.fm/archives/9497, 9529). From a coupling (X0, X1), X0 ~ π0 the
// source and X1 ~ π1 the target:
// - velocity regression on straight interpolations X_t = t X1 + (1 - t) X0:
//   min_v ∫_0^1 E ||(X1 - X0) - v(X_t, t)||² dt (eq. 1), t ~ U(0, 1);
// - sampling by Euler with N steps: Z_{(k+1)/N} = Z_{k/N} + v(Z_{k/N}, k/N) / N;
// - ReFlow: the flow's own pairs (Z0, Z1 = Φ(Z0)) are a new coupling; a flow trained on them (2-rectified
//   flow) has straighter paths, so few Euler steps suffice (sec. 2.2–3);
// - straightness S(Z) = ∫_0^1 E ||(Z1 - Z0) - Ż_t||² dt (Definition 3.6), 0 for straight paths.

import * as ops from "../ops/index.js";
import { floatData } from "../ops/util.js";
import { noGrad } from "../tensor/autograd.js";
import type { RandomGenerator } from "../tensor/rng.js";
import { tidy } from "../tensor/scope.js";
import type { Tensor } from "../tensor/tensor.js";
import { perRow, stepTensor } from "./ddpm.js";

/** v(x, t): x [B, d] and t [B] in [0, 1]. */
export type VelocityField = (x: Tensor, t: Tensor) => Tensor;

function checkPair(x0: Tensor, x1: Tensor, fn: string): void {
  if (x0.shape.length !== x1.shape.length || x0.shape.some((n, i) => n !== x1.shape[i])) {
    throw new RangeError(`${fn}: x0 and x1 must have the same shape, got [${x0.shape.join(", ")}] and [${x1.shape.join(", ")}]`);
  }
}

/** Eq. 1 at given times t (one per row): mean over rows of ||(x1 - x0) - v(x_t, t)||². */
export function rectifiedFlowLossAt(v: VelocityField, x0: Tensor, x1: Tensor, t: ArrayLike<number>): Tensor {
  checkPair(x0, x1, "rectifiedFlowLoss");
  const tt = perRow(x0, t);
  const xt = ops.add(ops.mul(x1, tt), ops.mul(x0, ops.sub(1, tt)));
  const diff = ops.sub(ops.sub(x1, x0), v(xt, stepTensor(t, x0.dtype as "float32" | "float64")));
  return ops.div(ops.sum(ops.mul(diff, diff)), x0.shape[0]);
}

/** Eq. 1 with t ~ U(0, 1) from gen. */
export function rectifiedFlowLoss(v: VelocityField, x0: Tensor, x1: Tensor, gen: RandomGenerator): Tensor {
  const t = new Float64Array(x0.shape[0]);
  gen.uniform(t);
  return rectifiedFlowLossAt(v, x0, x1, t);
}

export interface FlowResult {
  /** Z_1, the end of the Euler path. */
  x1: Tensor;
  /** The straightness S(Z) estimated on this path: 1/N Σ_k mean_rows ||(Z1 - Z0) - v(Z_{k/N}, k/N)||². */
  straightness: number;
}

/**
 * Euler integration of dZ/dt = v(Z, t) from t = 0 to 1 in `steps` uniform steps (no gradient). On the Euler
 * path Z1 - Z0 is the mean of the step velocities v_k, so 1/N Σ_k ||(Z1 - Z0) - v_k||² = 1/N Σ_k ||v_k||² -
 * ||Z1 - Z0||²: the straightness needs no stored velocities.
 */
export function eulerFlow(v: VelocityField, x0: Tensor, steps: number): FlowResult {
  if (!Number.isSafeInteger(steps) || steps < 1) throw new RangeError(`eulerFlow: steps must be a positive integer, got ${steps}`);
  return noGrad(() => {
    const B = x0.shape[0], t = new Array(B);
    let z = x0, sumSq = 0;
    for (let k = 0; k < steps; k++) {
      z = tidy(() => {
        const vel = v(z, stepTensor(t.fill(k / steps), x0.dtype as "float32" | "float64"));
        sumSq += sumSquares(vel);
        return ops.add(z, ops.mul(vel, 1 / steps));
      });
    }
    const disp = sumSquares(ops.sub(z, x0));
    return { x1: z, straightness: Math.max(sumSq / steps - disp, 0) / B };
  });
}

function sumSquares(x: Tensor): number {
  let s = 0;
  for (const e of floatData(x, "eulerFlow")) s += e * e;
  return s;
}

/**
 * One-step distillation of a flow (sec. 2.3, "Distillation", with the squared L2 loss): on the flow's own
 * pairs (Z0, Z1 = Φ(Z0)), min_v E ||(Z1 - Z0) - v(Z0, 0)||², eq. 1 at t = 0 only, so that one Euler step
 * Z0 + v(Z0, 0) maps Z0 to Z1.
 */
export function distillLoss(v: VelocityField, z0: Tensor, z1: Tensor): Tensor {
  return rectifiedFlowLossAt(v, z0, z1, new Float64Array(z0.shape[0]));
}

/** ReFlow's coupling: (Z0, Z1 = Φ(Z0)) with Φ the Euler flow of v in `steps` steps. */
export function reflowPairs(v: VelocityField, x0: Tensor, steps: number): { x0: Tensor; x1: Tensor } {
  return { x0, x1: eulerFlow(v, x0, steps).x1 };
}
