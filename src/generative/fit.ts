// The small training loop the generative methods share: AdamW over a module's parameters, one loss per
// step, each step in a tidy() scope. Returns the loss per step.

import type { Module } from "../nn/module.js";
import { tidy } from "../tensor/scope.js";
import type { Tensor } from "../tensor/tensor.js";
import { AdamW, defaultParamGroups } from "../train/optim.js";
import { makeSchedule, type ScheduleConfig } from "../train/schedule.js";

export interface FitOptions {
  steps: number;
  /** A constant learning rate (default 1e-3) or a schedule config (train/schedule.ts, e.g. cosine decay). */
  lr?: number | ScheduleConfig;
  weightDecay?: number;
  /** Called after each step with its index and loss. */
  onStep?: (step: number, loss: number) => void;
}

export function fit(model: Module, loss: (step: number) => Tensor, o: FitOptions): Float64Array {
  if (!Number.isSafeInteger(o.steps) || o.steps < 1) throw new RangeError(`fit: steps must be a positive integer, got ${o.steps}`);
  const lrAt = makeSchedule(typeof o.lr === "object" ? o.lr : { kind: "constant", lr: o.lr ?? 1e-3 });
  const opt = new AdamW(defaultParamGroups(model, o.weightDecay ?? 0), { lr: lrAt(0) });
  const losses = new Float64Array(o.steps);
  for (let i = 0; i < o.steps; i++) {
    opt.setLr(lrAt(i));
    losses[i] = tidy(() => {
      opt.zeroGrad();
      const l = loss(i);
      l.backward();
      opt.step();
      return l.item();
    });
    o.onStep?.(i, losses[i]);
  }
  return losses;
}
