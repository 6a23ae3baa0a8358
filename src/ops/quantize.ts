// Inference weights (issue 19): a float weight [out, in] may carry an int8 (per-output-channel
// symmetric) or bf16 copy, registered here by tensor; linear() then computes x W^T from that copy with
// the gemmQuant kernel (fp32 accumulation, the stored weight read directly). The fp32 tensor stays the
// parameter (its shape, the state dict, a tied embedding's lookup); the copy is what products read.
// Inference only: a product that would record a gradient through a stored copy is refused.

import type { WeightFormat } from "../backend/backend.js";
import { quantizeRows, type QuantizedData } from "../backend/js/quant.js";
import { backend } from "../backend/registry.js";
import { needsGrad } from "../tensor/autograd.js";
import { fmtShape } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import { floatData } from "./util.js";

export type { QuantizedData } from "../backend/js/quant.js";
export { dequantizeRows, quantizeRows } from "../backend/js/quant.js";

/** What a model's Linear weights are computed from at inference ("fp32": the parameters themselves). */
export const WEIGHT_FORMATS = ["fp32", "bf16", "int8"] as const;
export type InferenceWeights = (typeof WEIGHT_FORMATS)[number];

/** The weight format named by a user (CLI flag, option): one clear error otherwise. */
export function parseWeightFormat(v: unknown, what = "weights"): InferenceWeights {
  if (typeof v === "string" && (WEIGHT_FORMATS as readonly string[]).includes(v)) return v as InferenceWeights;
  throw new RangeError(`${what}: unknown weight format ${JSON.stringify(v)}; expected one of ${WEIGHT_FORMATS.join(", ")}`);
}

const copies = new WeakMap<Tensor, QuantizedData>();

/** A 2-D float weight [out, in] in `format` (values read now: re-quantize after changing the weight). */
export function quantizeWeight(w: Tensor, format: WeightFormat): QuantizedData {
  if (w.ndim !== 2) throw new RangeError(`quantizeWeight: expected a 2-D weight [out, in], got ${fmtShape(w.shape)}`);
  return quantizeRows(floatData(w, "quantizeWeight"), w.shape[0], w.shape[1], format);
}

/** Registers (or, with null, removes) the inference copy that linear() reads for weight w. */
export function setInferenceWeight(w: Tensor, q: QuantizedData | null): void {
  if (!q) { copies.delete(w); return; }
  if (w.ndim !== 2 || q.rows !== w.shape[0] || q.cols !== w.shape[1]) {
    throw new RangeError(`setInferenceWeight: a [${q.rows}, ${q.cols}] copy for a weight ${fmtShape(w.shape)}`);
  }
  copies.set(w, q);
}

/** The inference copy registered for w, if any. */
export function inferenceWeight(w: Tensor): QuantizedData | undefined {
  return copies.get(w);
}

/** linear(x, W, b) through W's inference copy (linear() calls this when W has one). */
export function linearStored(x: Tensor, weight: Tensor, q: QuantizedData, bias: Tensor | null): Tensor {
  if (needsGrad([x, weight, bias])) {
    throw new Error(`linear: this weight ${fmtShape(weight.shape)} is stored as ${q.format} for inference (quantizeForInference / --weights ${q.format}), which has no gradient: train the fp32 model (quantizeForInference(model, "fp32") restores it), or run inference under noGrad`);
  }
  const [out, inF] = weight.shape;
  const y = Tensor.empty([...x.shape.slice(0, -1), out], x.dtype);
  const xd = floatData(x, "linear"), bd = bias && floatData(bias, "linear");
  backend().gemmQuant({ format: q.format, m: x.numel / inF, n: out, k: inF, x: xd, xOff: 0, w: q.data, scales: q.scales, y: y.data as typeof xd, yOff: 0, bias: bd });
  return y;
}
