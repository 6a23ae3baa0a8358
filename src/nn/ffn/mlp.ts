// Position-wise feed-forward networks: the GELU MLP of GPT-2 and SwiGLU (Shazeer 2020, eq. 6) of Llama.

import * as ops from "../../ops/index.js";
import type { Tensor } from "../../tensor/tensor.js";
import { Linear } from "../layers.js";
import { Module } from "../module.js";

export class GeluMLP extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(d: number, hidden: number, bias: boolean, readonly approximate: "none" | "tanh") {
    super();
    this.fc1 = this.child("fc1", new Linear(d, hidden, bias, { role: "ffn_in" }));
    this.fc2 = this.child("fc2", new Linear(hidden, d, bias, { role: "ffn_out" }));
  }
  forward(x: Tensor): Tensor {
    return this.fc2.forward(ops.gelu(this.fc1.forward(x), this.approximate));
  }
}

/** SwiGLU: w2(silu(w1 x) * w3 x). */
export class SwiGLU extends Module {
  readonly w1: Linear;
  readonly w2: Linear;
  readonly w3: Linear;
  constructor(d: number, hidden: number, bias: boolean) {
    super();
    this.w1 = this.child("w1", new Linear(d, hidden, bias, { role: "ffn_in" }));
    this.w2 = this.child("w2", new Linear(hidden, d, bias, { role: "ffn_out" }));
    this.w3 = this.child("w3", new Linear(d, hidden, bias, { role: "ffn_in" }));
  }
  forward(x: Tensor): Tensor {
    return this.w2.forward(ops.mul(ops.silu(this.w1.forward(x)), this.w3.forward(x)));
  }
}

export type FeedForward = GeluMLP | SwiGLU;

export function makeFeedForward(kind: "gelu" | "gelu_tanh" | "swiglu", d: number, hidden: number, bias: boolean): FeedForward {
  if (kind === "swiglu") return new SwiGLU(d, hidden, bias);
  return new GeluMLP(d, hidden, bias, kind === "gelu" ? "none" : "tanh");
}
