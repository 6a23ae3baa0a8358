// Element types. float32 is the working dtype, float64 is for gradcheck, int32 holds ids and targets.
// bfloat16 / float16 are storage dtypes (raw 16-bit patterns) used by io and mixed precision.

import { noteBirth, takeRecycled } from "./recycle.js";

export type DType = "float32" | "float64" | "int32" | "bfloat16" | "float16";
export type Storage = Float32Array | Float64Array | Int32Array | Uint16Array;
export type FloatStorage = Float32Array | Float64Array;

/**
 * Storage of n elements, zero-filled unless `uninitialized`: then its contents are arbitrary (like
 * torch.empty), for callers whose kernel writes every element. Skipping the zero fill matters: a
 * fresh zero-filled buffer costs a memset plus page faults, ~7 % of a small GPT's training step.
 */
export function allocStorage(dtype: DType, n: number, uninitialized = false): Storage {
  switch (dtype) {
    case "float32": {
      const a = takeRecycled(n, !uninitialized) ?? (uninitialized ? new Float32Array(unfilled(n * 4)) : new Float32Array(n));
      noteBirth(a);
      return a;
    }
    case "float64": return uninitialized ? new Float64Array(unfilled(n * 8)) : new Float64Array(n);
    case "int32": return new Int32Array(n);
    case "bfloat16": case "float16": return new Uint16Array(n);
  }
}

// Node's allocUnsafeSlow: a buffer of its own (offset 0, malloc-aligned) without the zero fill.
const unfilled = (bytes: number): ArrayBuffer => Buffer.allocUnsafeSlow(bytes).buffer as ArrayBuffer;

export function dtypeOf(data: Storage, hint?: "bfloat16" | "float16"): DType {
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Float64Array) return "float64";
  if (data instanceof Int32Array) return "int32";
  return hint ?? "bfloat16";
}

export function isFloat(dtype: DType): dtype is "float32" | "float64" {
  return dtype === "float32" || dtype === "float64";
}
