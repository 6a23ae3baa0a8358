// Basic layers: Linear, Embedding, LayerNorm, RMSNorm, Dropout, Conv2d, GroupNorm. Built standalone, they start as
// torch.nn's do: Linear / Conv2d weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform_ with a = sqrt(5)),
// Embedding N(0, 1), norms weight 1 and bias 0. The model families build their layers inside skipInit()
// (no draw: weights zeros) and then apply their own scheme by roles, so their draw order is their own.

import * as ops from "../ops/index.js";
import type { RandomGenerator } from "../tensor/rng.js";
import type { Tensor } from "../tensor/tensor.js";
import type { Role } from "./init.js";
import { kaimingUniform_, normal_, uniform_ } from "./init-fns.js";
import { Module } from "./module.js";

let skipping = 0;

/**
 * Build modules without their default init (like torch.nn.utils.skip_init): inside fn, Linear and
 * Embedding draw nothing and start at zeros, for a caller that initializes every weight itself.
 */
export function skipInit<T>(fn: () => T): T {
  skipping++;
  try {
    return fn();
  } finally {
    skipping--;
  }
}

export interface LayerOptions {
  /** Draws the default init (default: the global defaultGenerator). */
  generator?: RandomGenerator;
}

export interface LinearOptions extends LayerOptions {
  /** The weight's init role, declared by the module that knows what the layer is for (nn/init.ts). */
  role?: Role;
}

export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, bias = true, o: LinearOptions = {}) {
    super();
    this.weight = this.param("weight", ops.zeros([outFeatures, inFeatures]), o.role);
    this.bias = bias ? this.param("bias", ops.zeros([outFeatures]), "bias") : null;
    if (skipping) return;
    // torch.nn.Linear.reset_parameters: the weight, then the bias, from the same stream.
    kaimingUniform_(this.weight, { a: Math.sqrt(5), generator: o.generator });
    const bound = inFeatures > 0 ? 1 / Math.sqrt(inFeatures) : 0;
    if (this.bias) uniform_(this.bias, -bound, bound, o);
  }
  forward(x: Tensor): Tensor {
    return ops.linear(x, this.weight, this.bias);
  }
}

export interface Conv2dLayerOptions extends LayerOptions {
  stride?: number;
  /** Zero padding on each side (default 0). */
  padding?: number;
  bias?: boolean;
}

/** torch.nn.Conv2d (square kernel): weight [out, in, k, k], bias [out]. */
export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(readonly inChannels: number, readonly outChannels: number, readonly kernel: number, readonly o: Conv2dLayerOptions = {}) {
    super();
    this.weight = this.param("weight", ops.zeros([outChannels, inChannels, kernel, kernel]));
    this.bias = o.bias === false ? null : this.param("bias", ops.zeros([outChannels]), "bias");
    if (skipping) return;
    kaimingUniform_(this.weight, { a: Math.sqrt(5), generator: o.generator });
    if (this.bias) uniform_(this.bias, -1 / Math.sqrt(inChannels * kernel * kernel), 1 / Math.sqrt(inChannels * kernel * kernel), o);
  }
  forward(x: Tensor): Tensor {
    return ops.conv2d(x, this.weight, this.bias, { stride: this.o.stride ?? 1, padding: this.o.padding ?? 0 });
  }
}

/** torch.nn.GroupNorm(groups, channels) with its affine weight 1 and bias 0. */
export class GroupNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(readonly groups: number, readonly channels: number, readonly eps = 1e-5) {
    super();
    if (!(groups >= 1) || channels % groups !== 0) throw new RangeError(`GroupNorm: ${groups} groups must divide the ${channels} channels`);
    this.weight = this.param("weight", ops.ones([channels]), "norm");
    this.bias = this.param("bias", ops.zeros([channels]), "bias");
  }
  forward(x: Tensor): Tensor {
    return ops.groupNorm(x, this.groups, this.weight, this.bias, this.eps);
  }
}

export class Embedding extends Module {
  readonly weight: Tensor;
  constructor(readonly num: number, readonly dim: number, o: LayerOptions = {}) {
    super();
    this.weight = this.param("weight", ops.zeros([num, dim]), "embedding");
    if (!skipping) normal_(this.weight, 0, 1, o);
  }
  forward(ids: Tensor): Tensor {
    return ops.embedding(ids, this.weight);
  }
}

export class LayerNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(dim: number, readonly eps = 1e-5, bias = true) {
    super();
    this.weight = this.param("weight", ops.ones([dim]), "norm");
    this.bias = bias ? this.param("bias", ops.zeros([dim]), "bias") : null;
  }
  forward(x: Tensor): Tensor {
    return ops.layerNorm(x, this.weight, this.bias, this.eps);
  }
}

export class RMSNorm extends Module {
  readonly weight: Tensor;
  constructor(dim: number, readonly eps = 1e-5) {
    super();
    this.weight = this.param("weight", ops.ones([dim]), "norm");
  }
  forward(x: Tensor): Tensor {
    return ops.rmsNorm(x, this.weight, this.eps);
  }
}

export type Norm = LayerNorm | RMSNorm;

export function makeNorm(kind: "layernorm" | "rmsnorm", dim: number, eps: number, bias: boolean): Norm {
  return kind === "layernorm" ? new LayerNorm(dim, eps, bias) : new RMSNorm(dim, eps);
}

export class Dropout extends Module {
  constructor(readonly p: number, readonly generator: () => RandomGenerator) {
    super();
  }
  forward(x: Tensor): Tensor {
    return this.p > 0 && this.training ? ops.dropout(x, this.p, true, this.generator()) : x;
  }
}
