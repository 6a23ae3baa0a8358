// Basic layers: Linear, Embedding, LayerNorm, RMSNorm, Dropout.

import * as ops from "../ops/index.js";
import type { RandomGenerator } from "../tensor/rng.js";
import type { Tensor } from "../tensor/tensor.js";
import type { Role } from "./init.js";
import { Module } from "./module.js";

export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  /** role: the weight's init role, declared by the module that knows what the layer is for. */
  constructor(readonly inFeatures: number, readonly outFeatures: number, bias = true, role?: Role) {
    super();
    this.weight = this.param("weight", ops.zeros([outFeatures, inFeatures]), role);
    this.bias = bias ? this.param("bias", ops.zeros([outFeatures]), "bias") : null;
  }
  forward(x: Tensor): Tensor {
    return ops.linear(x, this.weight, this.bias);
  }
}

export class Embedding extends Module {
  readonly weight: Tensor;
  constructor(readonly num: number, readonly dim: number) {
    super();
    this.weight = this.param("weight", ops.zeros([num, dim]), "embedding");
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
