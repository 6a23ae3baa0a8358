// The token router of a mixture-of-experts layer: logits = x W_r^T (no bias) and each token's top-k
// of the E experts. Gates, the weights of the chosen experts' outputs, by `gateKind`:
// - "topk_softmax" (default): renormalized as Mixtral (HF modeling_mixtral.py MixtralSparseMoeBlock:
//   softmax, topk, divide by the top-k sum), i.e. the softmax of the k chosen logits;
// - "softmax": the chosen probabilities p_i as Switch (Fedus et al. 2021, eq. 2), the choice for k = 1
//   (where renormalized gates are the constant 1);
// - "sigmoid": DeepSeek-V3 (2024, sec. 2.1.2, eqs. 13-16): scores s = sigmoid(logits), the top-k chosen
//   by s + b with b a per-expert bias that only steers the choice (aux-loss-free balancing, updated by
//   MoEFeedForward), gates = the chosen s over their sum.
// `probs` are what the balance loss averages: the softmax, or for "sigmoid" s over its row sum
// (DeepSeek-V3 eq. 19).

import * as ops from "../../ops/index.js";
import type { Tensor } from "../../tensor/tensor.js";
import { Linear } from "../layers.js";
import { Module } from "../module.js";

export type GateKind = "topk_softmax" | "softmax" | "sigmoid";

export interface Routing {
  /** [N, E] router logits (for the z-loss). */
  logits: Tensor;
  /** [N, E] routing probabilities (for the balance loss). */
  probs: Tensor;
  /** [N, k] gates of the chosen experts, in top-k order (differentiable). */
  gates: Tensor;
  /** [N * k] chosen experts, token-major (token t's choices at t*k .. t*k+k-1). */
  experts: Int32Array;
}

export class Router extends Module {
  readonly gate: Linear;
  /** DeepSeek-V3's selection bias b (HF's e_score_correction_bias), "sigmoid" gates only. */
  readonly scoreBias: Tensor | null;
  constructor(readonly dModel: number, readonly nExperts: number, readonly topK: number, readonly gateKind: GateKind = "topk_softmax") {
    super();
    this.gate = this.child("gate", new Linear(dModel, nExperts, false, { role: "ffn_in" }));
    this.scoreBias = gateKind === "sigmoid" ? this.buffer("e_score_correction_bias", ops.zeros([nExperts])) : null;
  }

  /** x: [N, D] token rows. */
  forward(x: Tensor): Routing {
    const logits = this.gate.forward(x);
    if (this.scoreBias) {
      const s = ops.sigmoid(logits);
      const { indices } = ops.topk(ops.add(s.detach(), this.scoreBias), this.topK, -1);
      const chosen = ops.gather(s, 1, indices);
      return { logits, probs: ops.div(s, ops.sum(s, -1, true)), gates: ops.div(chosen, ops.sum(chosen, -1, true)), experts: indices.toTypedArray() as Int32Array };
    }
    const { values, indices } = ops.topk(logits, this.topK, -1);
    const probs = ops.softmax(logits, -1);
    const gates = this.gateKind === "softmax" ? ops.gather(probs, 1, indices) : ops.softmax(values, -1);
    return { logits, probs, gates, experts: indices.toTypedArray() as Int32Array };
  }

  /**
   * The same choice and gates as forward, for inference (no graph): plain loops over the [N, E]
   * logits instead of five small tensor ops, which is what a decoding step's few tokens pay for.
   * Ties go to the lower expert index, as ops.topk.
   */
  choose(x: Tensor): { experts: Int32Array; gates: Float32Array } {
    const E = this.nExperts, k = this.topK;
    const ld = this.gate.forward(x).toTypedArray() as Float32Array;
    const N = ld.length / E, bias = this.scoreBias?.toTypedArray();
    const experts = new Int32Array(N * k), gates = new Float32Array(N * k);
    const score = new Float64Array(E), key = new Float64Array(E), chosen = new Float64Array(k), order = Array.from({ length: E }, (_, j) => j);
    for (let t = 0; t < N; t++) {
      let max = -Infinity, sum = 0;
      for (let j = 0; j < E; j++) max = Math.max(max, ld[t * E + j]);
      for (let j = 0; j < E; j++) {
        const l = ld[t * E + j];
        score[j] = bias ? 1 / (1 + Math.exp(-l)) : this.gateKind === "softmax" ? Math.exp(l - max) : l;
        key[j] = bias ? score[j] + bias[j] : l;
        sum += score[j];
      }
      for (let j = 0; j < E; j++) order[j] = j;
      order.sort((p, q) => key[q] - key[p] || p - q);
      let norm = 0;
      for (let r = 0; r < k; r++) {
        const e = order[r];
        // topk_softmax: softmax of the chosen logits; softmax: p_e; sigmoid: s_e over the chosen s
        chosen[r] = this.gateKind === "topk_softmax" ? Math.exp(ld[t * E + e] - ld[t * E + order[0]]) : bias ? score[e] : score[e] / sum;
        norm += chosen[r];
        experts[t * k + r] = e;
      }
      for (let r = 0; r < k; r++) gates[t * k + r] = this.gateKind === "softmax" ? chosen[r] : chosen[r] / norm;
    }
    return { experts, gates };
  }
}
