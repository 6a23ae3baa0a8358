// Optimizers over named parameter groups: AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay
// Regularization", Alg. 2) through the backend's fused `adamw` kernel, and SGD with momentum (torch.optim.SGD
// semantics, dampening 0). State is kept per parameter in float32 and saved by parameter name.

import { backend } from "../backend/registry.js";
import type { Module } from "../nn/module.js";
import { fmtShape } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";
import { releaseGrad } from "../tensor/autograd.js";
import { floatData } from "../ops/util.js";
import { parametersUpdated } from "../ops/autocast.js";
import type { OptimizerState } from "../io/checkpoint.js";
import { brief } from "../io/read.js";

export interface NamedParam { name: string; tensor: Tensor }

/** A group shares a weight decay and a multiplier on the scheduled learning rate (default 1). */
export interface ParamGroup { params: NamedParam[]; weightDecay: number; lrScale?: number }

/**
 * The default grouping (as nanoGPT's configure_optimizers, plus embeddings): parameters with fewer than 2
 * dimensions (norm gains, biases), embeddings (parameters that declared the init role "embedding") and SSM dynamics (role "ssm")
 * get no weight decay; every other matrix decays. A tied tensor (one tensor under several names, e.g.
 * token embedding = LM head) appears once, under its first name, and is exempt when it is an embedding.
 * Frozen parameters (requiresGrad false) are left out.
 */
export function defaultParamGroups(model: Module, weightDecay: number): ParamGroup[] {
  const names = new Map<Tensor, string[]>();
  for (const [n, p] of model.namedParameters()) {
    if (!p.requiresGrad) continue;
    const list = names.get(p);
    if (list) list.push(n);
    else names.set(p, [n]);
  }
  // embeddings, and an SSM's dynamics (mamba_ssm's _no_weight_decay on A_log and D, s4d.py's optim
  // settings with weight_decay 0 for log_dt and A)
  const embeddings = new Set<Tensor>();
  for (const [, t, role] of model.namedRoles()) if (role === "embedding" || role === "ssm") embeddings.add(t);
  const decay: NamedParam[] = [], noDecay: NamedParam[] = [];
  for (const [tensor, ns] of names) {
    const exempt = tensor.ndim < 2 || embeddings.has(tensor);
    (exempt ? noDecay : decay).push({ name: ns[0], tensor });
  }
  return [{ params: decay, weightDecay }, { params: noDecay, weightDecay: 0 }];
}

function check(what: string, v: number, ok: boolean, expected: string): void {
  if (!ok || !Number.isFinite(v)) throw new RangeError(`${what} must be ${expected}, got ${v}`);
}

/** steps: the updates this parameter has had (torch keeps "step" per parameter: one without a gradient is not stepped). */
interface Slot { name: string; tensor: Tensor; data: Float32Array; weightDecay: number; lrScale: number; bufs: Float32Array[]; steps: number }

/** Shared parts: param slots (tied tensors once), lr, zeroGrad, state save/restore by parameter name. */
export abstract class Optimizer {
  protected readonly slots: Slot[] = [];
  /** Number of step() calls so far (each parameter's own count is the t of its bias corrections). */
  stepCount = 0;

  protected constructor(readonly kind: string, groups: ParamGroup[], public lr: number, private readonly bufNames: string[]) {
    check(`${this.kind}: lr`, lr, lr >= 0, "a finite number >= 0");
    const seen = new Set<Tensor>(), names = new Set<string>();
    for (const g of groups) {
      check(`${this.kind}: weightDecay`, g.weightDecay, g.weightDecay >= 0, "a finite number >= 0");
      const lrScale = g.lrScale ?? 1;
      check(`${this.kind}: lrScale`, lrScale, lrScale >= 0, "a finite number >= 0");
      for (const { name, tensor } of g.params) {
        if (seen.has(tensor)) continue; // tied: stepped once, under its first name
        if (names.has(name)) throw new Error(`${this.kind}: parameter name "${name}" is used for two different tensors`);
        if (tensor.dtype !== "float32" || !tensor.isContiguous) {
          throw new TypeError(`${this.kind}: parameter "${name}" must be a contiguous float32 tensor, got ${tensor.dtype}${tensor.isContiguous ? "" : " (non-contiguous)"}`);
        }
        seen.add(tensor);
        names.add(name);
        const data = tensor.data.subarray(tensor.offset, tensor.offset + tensor.numel) as Float32Array;
        const bufs = bufNames.map(() => new Float32Array(tensor.numel));
        this.slots.push({ name, tensor, data, weightDecay: g.weightDecay, lrScale, bufs, steps: 0 });
      }
    }
  }

  setLr(lr: number): void {
    check(`${this.kind}: lr`, lr, lr >= 0, "a finite number >= 0");
    this.lr = lr;
  }

  /** One update of every parameter that has a gradient (parameters without one are skipped). */
  step(): void {
    this.stepCount++;
    for (const s of this.slots) {
      const g = s.tensor.grad;
      if (!g) continue;
      if (g.numel !== s.tensor.numel) throw new Error(`${this.kind}: gradient of "${s.name}" has shape ${fmtShape(g.shape)}, the parameter ${fmtShape(s.tensor.shape)}`);
      s.steps++;
      this.update(s, floatData(g, this.kind), this.lr * s.lrScale);
    }
    parametersUpdated();
  }

  protected abstract update(s: Slot, grad: Float32Array | Float64Array, lr: number): void;

  /** The settings a continued run must keep (betas, eps, momentum): saved with the state and checked on load. */
  protected abstract settings(): Record<string, number | boolean>;

  /**
   * Drop the gradients (.grad = null, torch's zero_grad(set_to_none=True)). Gradient storage that backward
   * allocated is reused by later steps, so an old .grad tensor must not be read afterwards (it throws).
   */
  zeroGrad(): void {
    for (const s of this.slots) releaseGrad(s.tensor);
  }

  /** Copies of the buffers and the scalars needed to continue exactly. */
  stateDict(): OptimizerState {
    const tensors: Record<string, Float32Array> = {};
    for (const s of this.slots) this.bufNames.forEach((b, i) => { tensors[`${s.name}.${b}`] = s.bufs[i].slice(); });
    const paramSteps = Object.fromEntries(this.slots.map((s) => [s.name, s.steps]));
    return { tensors, meta: { type: this.kind, step: this.stepCount, lr: this.lr, settings: this.settings(), paramSteps } };
  }

  /** Restore from stateDict(); every problem (missing, unexpected, wrong size, wrong type) in one error. */
  loadStateDict(state: OptimizerState): void {
    const problems: string[] = [];
    const { type, step, lr } = state.meta;
    if (type !== this.kind) problems.push(`meta.type is ${brief(type)}, expected "${this.kind}"`);
    if (!Number.isSafeInteger(step) || (step as number) < 0) problems.push(`meta.step is ${brief(step)}, expected a non-negative integer`);
    if (typeof lr !== "number" || !(lr >= 0)) problems.push(`meta.lr is ${brief(lr)}, expected a number >= 0`);
    // States saved before settings were recorded carry none: nothing to compare then.
    const saved = state.meta.settings as Record<string, unknown> | undefined;
    if (saved !== undefined) {
      for (const [k, v] of Object.entries(this.settings())) {
        if (typeof saved !== "object" || saved === null || saved[k] !== v) {
          problems.push(`meta.settings.${k} is ${brief(typeof saved === "object" && saved !== null ? saved[k] : saved)}, but this optimizer has ${v} (a continued run keeps its optimizer settings)`);
        }
      }
    }
    const expected = new Set<string>();
    for (const s of this.slots) {
      for (const b of this.bufNames) {
        const key = `${s.name}.${b}`;
        expected.add(key);
        const t = state.tensors[key];
        if (!t) problems.push(`missing ${key}`);
        else if (!(t instanceof Float32Array) || t.length !== s.tensor.numel) {
          problems.push(`${key} has ${t.length} ${t.constructor.name} values, expected ${s.tensor.numel} float32 (parameter shape ${fmtShape(s.tensor.shape)})`);
        }
      }
    }
    for (const k of Object.keys(state.tensors)) if (!expected.has(k)) problems.push(`unexpected ${k}`);
    // States saved before per-parameter counts were recorded: every parameter had every step.
    const paramSteps = state.meta.paramSteps as Record<string, unknown> | undefined;
    const stepsOf = (name: string): unknown => (paramSteps === undefined ? step : typeof paramSteps === "object" && paramSteps !== null ? paramSteps[name] : undefined);
    for (const s of this.slots) {
      const n = stepsOf(s.name);
      if (!Number.isSafeInteger(n) || (n as number) < 0 || (n as number) > (step as number)) problems.push(`meta.paramSteps["${s.name}"] is ${brief(n)}, expected an integer from 0 to meta.step (${brief(step)})`);
    }
    if (problems.length) throw new Error(`${this.kind}.loadStateDict: ${problems.join("; ")}`);
    for (const s of this.slots) {
      this.bufNames.forEach((b, i) => s.bufs[i].set(state.tensors[`${s.name}.${b}`]));
      s.steps = stepsOf(s.name) as number;
    }
    this.stepCount = step as number;
    this.lr = lr as number;
  }
}

export interface AdamWOptions { lr?: number; beta1?: number; beta2?: number; eps?: number }

/** AdamW: p <- p(1 - lr wd) - lr mhat / (sqrt(vhat) + eps), mhat = m / (1 - beta1^t), vhat = v / (1 - beta2^t). */
export class AdamW extends Optimizer {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;

  constructor(groups: ParamGroup[], opts: AdamWOptions = {}) {
    super("AdamW", groups, opts.lr ?? 1e-3, ["exp_avg", "exp_avg_sq"]);
    const { beta1 = 0.9, beta2 = 0.999, eps = 1e-8 } = opts;
    check("AdamW: beta1", beta1, beta1 >= 0 && beta1 < 1, "in [0, 1)");
    check("AdamW: beta2", beta2, beta2 >= 0 && beta2 < 1, "in [0, 1)");
    check("AdamW: eps", eps, eps > 0, "> 0");
    this.beta1 = beta1; this.beta2 = beta2; this.eps = eps;
  }

  protected settings(): Record<string, number> {
    return { beta1: this.beta1, beta2: this.beta2, eps: this.eps };
  }

  protected update(s: Slot, grad: Float32Array | Float64Array, lr: number): void {
    const t = s.steps;
    backend().adamw({
      param: s.data, grad, m: s.bufs[0], v: s.bufs[1], lr, beta1: this.beta1, beta2: this.beta2, eps: this.eps,
      weightDecay: s.weightDecay, bc1: 1 - this.beta1 ** t, bc2: 1 - this.beta2 ** t,
    }, s.data.length);
  }
}

export interface SGDOptions { lr?: number; momentum?: number; nesterov?: boolean }

/**
 * SGD as torch.optim.SGD with dampening 0: g = grad + wd p (coupled L2 decay); with momentum
 * b = mu b + g (b starts at 0, so the first b = g) and g = nesterov ? g + mu b : b; then p <- p - lr g.
 */
export class SGD extends Optimizer {
  readonly momentum: number;
  readonly nesterov: boolean;

  constructor(groups: ParamGroup[], opts: SGDOptions = {}) {
    const { lr = 1e-2, momentum = 0, nesterov = false } = opts;
    super("SGD", groups, lr, momentum > 0 ? ["momentum_buffer"] : []);
    check("SGD: momentum", momentum, momentum >= 0, ">= 0");
    if (nesterov && momentum === 0) throw new RangeError("SGD: nesterov needs momentum > 0");
    this.momentum = momentum;
    this.nesterov = nesterov;
  }

  protected settings(): Record<string, number | boolean> {
    return { momentum: this.momentum, nesterov: this.nesterov };
  }

  protected update(s: Slot, grad: Float32Array | Float64Array, lr: number): void {
    const { data: p, weightDecay: wd } = s, mu = this.momentum, buf = s.bufs[0];
    for (let i = 0; i < p.length; i++) {
      let g = grad[i] + wd * p[i];
      if (buf) {
        buf[i] = mu * buf[i] + g;
        g = this.nesterov ? g + mu * buf[i] : buf[i];
      }
      p[i] -= lr * g;
    }
  }
}
