// Element types. float32 is the working dtype, float64 is for gradcheck, int32 holds ids and targets.
// bfloat16 / float16 are storage dtypes (raw 16-bit patterns) used by io and mixed precision.

export type DType = "float32" | "float64" | "int32" | "bfloat16" | "float16";
export type Storage = Float32Array | Float64Array | Int32Array | Uint16Array;
export type FloatStorage = Float32Array | Float64Array;

export function dtypeOf(data: Storage, hint?: "bfloat16" | "float16"): DType {
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Float64Array) return "float64";
  if (data instanceof Int32Array) return "int32";
  return hint ?? "bfloat16";
}

export function isFloat(dtype: DType): dtype is "float32" | "float64" {
  return dtype === "float32" || dtype === "float64";
}
