// quantizeForInference: a loaded model's Linear weights as int8 (per-output-channel symmetric) or bf16
// inference copies (ops/quantize.ts), which every linear() of the model then reads.
// What is converted, on purpose:
// - every Linear module's weight (attention and FFN projections; biases stay fp32);
// - the LM head only with { head: true }: by default it stays fp32, as transformers' 8-bit loading
//   keeps lm_head in full precision (get_keys_to_not_convert) and llama.cpp stores output.weight at
//   a higher precision than the other tensors in its low-bit formats. A tied head is the embedding
//   matrix: the embedding lookup always reads the fp32 rows, only the head's product reads the copy.
// - not converted: embeddings (a row lookup, not a product), norms, LoRA-wrapped layers (merge them
//   first), MoE experts (grouped kernels).
// The fp32 parameters stay in memory and in the state dict; after changing them (loadStateDict,
// training), call quantizeForInference again.

import type { Module } from "../nn/module.js";
import { Linear } from "../nn/layers.js";
import { MoEFeedForward } from "../nn/moe/moe.js";
import { parseWeightFormat, quantizeWeight, setInferenceWeight, type InferenceWeights } from "../ops/quantize.js";
import { Tensor } from "../tensor/tensor.js";

export interface QuantizeOptions {
  /** Also store the LM head (lmHead, the tied embedding matrix when tied) in the format (default false). */
  head?: boolean;
}

export interface QuantizeSummary {
  format: InferenceWeights;
  /** Names of the converted weights. */
  weights: string[];
  /** Bytes of the converted weights as stored (values + scales), and as fp32. */
  bytes: number; fp32Bytes: number;
}

/**
 * Switches the model's products to `format` weights ("fp32" removes the copies) and puts the model in
 * eval mode. Training it afterwards throws (no gradients through stored copies).
 */
export function quantizeForInference(model: Module, format: InferenceWeights, o: QuantizeOptions = {}): QuantizeSummary {
  const f = parseWeightFormat(format, "quantizeForInference");
  const head = (model as { lmHead?: unknown }).lmHead;
  if (o.head && !(head instanceof Tensor)) throw new TypeError("quantizeForInference: head: true needs a model with an lmHead tensor (TransformerLM)");
  const targets = new Map<Tensor, string>();
  // MoE experts run in grouped / fused kernels that read the fp32 weights: left as they are
  const experts = new Set<Tensor>();
  for (const [, m] of model.namedModules()) if (m instanceof MoEFeedForward) for (const e of m.experts) for (const [, p] of e.namedParameters()) experts.add(p);
  for (const [name, m] of model.namedModules()) if (m instanceof Linear && !targets.has(m.weight) && !experts.has(m.weight)) targets.set(m.weight, `${name}.weight`);
  if (head instanceof Tensor) {
    if (o.head) targets.set(head, targets.get(head) ?? "lm_head");
    else setInferenceWeight(head, null);
  }
  const summary: QuantizeSummary = { format: f, weights: [], bytes: 0, fp32Bytes: 0 };
  for (const [w, name] of targets) {
    const q = f === "fp32" ? null : quantizeWeight(w, f);
    setInferenceWeight(w, q);
    if (!q) continue;
    summary.weights.push(name);
    summary.bytes += q.data.byteLength + (q.scales?.byteLength ?? 0);
    summary.fp32Bytes += 4 * w.numel;
  }
  model.eval();
  return summary;
}
