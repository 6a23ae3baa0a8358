// Automatic mixed precision with torch.autocast's CPU op policy: inside autocast("bf16", fn) the
// matrix products of linear and matmul take low-precision operands with fp32 accumulation, and every
// other op (softmax, norms, losses, reductions, flash attention, the optimizer) stays fp32. Parameters
// stay fp32 (the master weights); their low-precision copies are made once per parameter update
// (cached by the update epoch that optimizers advance) and reused by forward and backward.
// The backward of a product runs in the precision its forward ran in, as torch's does (its saved
// tensors are low precision there), wherever backward() is called.
// Where we differ from torch, on purpose:
// - bf16: products keep their fp32 result (torch rounds it to bf16); only the operands are rounded.
//   The rounding of the operands is what makes bf16 fast (vdpbf16ps); rounding results would only
//   lose accuracy.
// - fp16: there is no fp16 GEMM on these CPUs, so operands are rounded to binary16, multiplied in
//   fp32, and the results (outputs and gradients) rounded to binary16 again, range included: fp16's
//   overflow to Infinity and underflow to zero happen as on fp16 hardware, which is what dynamic loss
//   scaling (train/grad-scaler.ts) exists for.

import type { GemmArgs } from "../backend/backend.js";
import { f16ToF32, f32ToF16 } from "../backend/js/half.js";
import { backend } from "../backend/registry.js";
import { Tensor } from "../tensor/tensor.js";

export const PRECISIONS = ["fp32", "bf16", "fp16"] as const;
export type Precision = (typeof PRECISIONS)[number];

/** An active low-precision scope (null: fp32). */
export interface AutocastScope { readonly precision: "bf16" | "fp16" }

let current: AutocastScope | null = null;
let epoch = 0;
// parameter -> its low-precision copy and the update epoch it was made in
const copies = new WeakMap<Tensor, { precision: string; epoch: number; data: Uint16Array | Float32Array }>();

/** The precision named by a user (CLI flag, config): one clear error otherwise. */
export function parsePrecision(p: unknown, what = "precision"): Precision {
  if (typeof p === "string" && (PRECISIONS as readonly string[]).includes(p)) return p as Precision;
  throw new RangeError(`${what}: unknown precision ${JSON.stringify(p)}; expected one of ${PRECISIONS.join(", ")}`);
}

/** Runs fn with linear / matmul products in `precision` ("fp32" turns autocast off inside). */
export function autocast<T>(precision: Precision, fn: () => T): T {
  const p = parsePrecision(precision, "autocast");
  const prev = current;
  current = p === "fp32" ? null : { precision: p };
  try {
    return fn();
  } finally {
    current = prev;
  }
}

/** The active scope, or null (fp32). */
export function autocastScope(): AutocastScope | null {
  return current;
}

/** Parameters changed in place (an optimizer step, a state-dict load): their cached copies are stale. */
export function parametersUpdated(): void {
  epoch++;
}

/** float32 values rounded to binary16 (range and precision), as float32. */
export function roundToF16(x: Float32Array): Float32Array {
  return f16ToF32(f32ToF16(x), x);
}

/**
 * x in the scope's precision, as a tensor of x.length elements: bf16 bits, or float32 values rounded to
 * binary16. key: the tensor x is the data of; a parameter's copy is cached until the next update. A
 * temporary's copy is tidy()-scoped storage (recycled with the step's, so no fresh pages per product).
 */
export function lowpOperand(s: AutocastScope, x: Float32Array, key: Tensor | null): Tensor {
  const dtype = s.precision === "fp16" ? "float32" : "bfloat16", n = x.length;
  // own storage for a parameter's cached copy (it outlives every scope), tidy()-scoped storage otherwise
  const convert = (own: Uint16Array | Float32Array | null): Uint16Array | Float32Array => {
    if (s.precision === "fp16") return f16ToF32(f32ToF16(x), (own as Float32Array | null) ?? (Tensor.empty([n], dtype).data as Float32Array));
    const bits = (own as Uint16Array | null) ?? (Tensor.empty([n], dtype).data as Uint16Array);
    backend().toBf16(x, bits, n);
    return bits;
  };
  // only parameters are cached: they are what forward and backward (and every micro-batch) share
  if (!key || !key.requiresGrad || !key.isLeaf) return new Tensor(convert(null), [n], { dtype });
  let hit = copies.get(key);
  if (!(hit && hit.epoch === epoch && hit.precision === s.precision && hit.data.length === n)) {
    // a stale copy of this precision is refreshed in its own storage (no fresh pages or garbage per
    // step); a graph still holding it then reads the updated weight, as the fp32 path reads the parameter
    const same = hit && hit.precision === s.precision && hit.data.length === n ? hit.data : null;
    hit = { precision: s.precision, epoch, data: convert(same ?? (s.precision === "fp16" ? new Float32Array(n) : new Uint16Array(n))) };
    copies.set(key, hit);
  }
  return new Tensor(hit.data, [n], { dtype });
}

/**
 * The GEMM of `g` (float32 operands) in the scope's precision; aKey / bKey: the tensors the operands
 * are the data of (parameters get cached copies), null for temporaries.
 */
export function autocastGemm(s: AutocastScope, g: GemmArgs<Float32Array>, aKey: Tensor | null, bKey: Tensor | null): void {
  lowpGemm(s, { ...g, a: lowpOperand(s, g.a, aKey).data as Uint16Array | Float32Array, b: lowpOperand(s, g.b, bKey).data as Uint16Array | Float32Array });
}

type LowpArgs = Omit<GemmArgs<Float32Array>, "a" | "b"> & { a: Uint16Array | Float32Array; b: Uint16Array | Float32Array };

/** The GEMM of operands already in the scope's precision (lowpOperand); fp16 rounds the result too. */
export function lowpGemm(s: AutocastScope, g: LowpArgs): void {
  if (s.precision === "bf16") {
    backend().gemmBf16({ ...g, a: g.a as Uint16Array, b: g.b as Uint16Array });
    return;
  }
  backend().gemm({ ...g, a: g.a as Float32Array, b: g.b as Float32Array });
  roundToF16(g.c);
}
