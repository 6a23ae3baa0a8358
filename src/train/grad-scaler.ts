// Dynamic loss scaling for fp16 training (Micikevicius et al. 2018, "Mixed Precision Training", sec.
// 3.2; the semantics of torch.cuda.amp.GradScaler): the loss is multiplied by a scale S before
// backward so that small gradients survive fp16's range (their magnitudes below 2^-24 would flush to
// zero), and the gradients are divided by S before the optimizer sees them. When any gradient is inf
// or NaN the step is skipped and S is halved; after `growthInterval` clean steps in a row S doubles.

import type { Tensor } from "../tensor/tensor.js";
import { floatData } from "../ops/util.js";

export interface GradScalerOptions {
  /** Initial scale (default 2^16, GradScaler's init_scale). */
  initScale?: number;
  growthFactor?: number;
  backoffFactor?: number;
  growthInterval?: number;
}

/** What a checkpoint keeps of a scaler (exact resume). */
export interface GradScalerState { scale: number; growthTracker: number }

export class GradScaler {
  scale: number;
  /** Clean steps since the scale last changed. */
  growthTracker = 0;
  readonly growthFactor: number;
  readonly backoffFactor: number;
  readonly growthInterval: number;

  constructor(o: GradScalerOptions = {}) {
    this.scale = o.initScale ?? 2 ** 16;
    this.growthFactor = o.growthFactor ?? 2;
    this.backoffFactor = o.backoffFactor ?? 0.5;
    this.growthInterval = o.growthInterval ?? 2000;
    const bad = (what: string, v: number, want: string) => { throw new RangeError(`GradScaler: ${what} must be ${want}, got ${v}`); };
    if (!(this.scale > 0 && Number.isFinite(this.scale))) bad("initScale", this.scale, "a finite number > 0");
    if (!(this.growthFactor > 1 && Number.isFinite(this.growthFactor))) bad("growthFactor", this.growthFactor, "a finite number > 1");
    if (!(this.backoffFactor > 0 && this.backoffFactor < 1)) bad("backoffFactor", this.backoffFactor, "in (0, 1)");
    if (!(Number.isInteger(this.growthInterval) && this.growthInterval >= 1)) bad("growthInterval", this.growthInterval, "an integer >= 1");
  }

  /**
   * Divides the gradients of `params` by the scale in place; true when all of them are finite (the
   * step may be taken), false when one holds an inf or NaN (skip the step: the gradients are garbage).
   */
  unscale(params: Iterable<Tensor>): boolean {
    const inv = 1 / this.scale;
    let finite = true;
    for (const p of params) {
      if (!p.grad) continue;
      const g = floatData(p.grad, "GradScaler");
      for (let i = 0; i < g.length; i++) {
        const v = g[i] * inv;
        if (!Number.isFinite(v)) finite = false;
        g[i] = v;
      }
    }
    return finite;
  }

  /** After a step: back off on an overflow, grow after growthInterval clean steps (GradScaler.update). */
  update(finite: boolean): void {
    if (!finite) {
      this.scale *= this.backoffFactor;
      this.growthTracker = 0;
      return;
    }
    if (++this.growthTracker === this.growthInterval) {
      this.scale *= this.growthFactor;
      this.growthTracker = 0;
    }
  }

  stateDict(): GradScalerState {
    return { scale: this.scale, growthTracker: this.growthTracker };
  }

  loadStateDict(s: GradScalerState): void {
    if (!(s.scale > 0 && Number.isFinite(s.scale)) || !(Number.isInteger(s.growthTracker) && s.growthTracker >= 0)) {
      throw new RangeError(`GradScaler: bad saved state ${JSON.stringify(s)}; expected { scale > 0, growthTracker: integer >= 0 }`);
    }
    this.scale = s.scale;
    this.growthTracker = s.growthTracker;
  }
}
