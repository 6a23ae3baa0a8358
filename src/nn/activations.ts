// Activation functions as modules, for Sequential (torch.nn.ReLU, GELU, ...). They hold no parameters.

import * as ops from "../ops/index.js";
import type { Tensor } from "../tensor/tensor.js";
import { Module } from "./module.js";

export class ReLU extends Module {
  forward(x: Tensor): Tensor { return ops.relu(x); }
}

export class GELU extends Module {
  constructor(readonly approximate: "none" | "tanh" = "none") { super(); }
  forward(x: Tensor): Tensor { return ops.gelu(x, this.approximate); }
}

export class SiLU extends Module {
  forward(x: Tensor): Tensor { return ops.silu(x); }
}

export class Tanh extends Module {
  forward(x: Tensor): Tensor { return ops.tanh(x); }
}

export class Sigmoid extends Module {
  forward(x: Tensor): Tensor { return ops.sigmoid(x); }
}
