// Loads PyTorch golden fixtures (scripts/golden) and maps each case's PyTorch op + kwargs onto tsformer.

import { readFileSync } from "node:fs";
import { decodeSafetensors, type SafeTensor } from "../../src/io/safetensors.js";
import * as T from "../../src/index.js";
import type { AttentionConfig } from "../../src/nn/attention/types.js";

export interface GoldenCase {
  name: string;
  op: string;
  args: Record<string, unknown>;
  inputs: string[];
  outputs: number;
}

export interface GoldenFile { cases: GoldenCase[]; tensors: Record<string, SafeTensor> }

export function loadGolden(path: string): GoldenFile {
  const { tensors, metadata } = decodeSafetensors(readFileSync(path), path);
  return { cases: JSON.parse(metadata.cases) as GoldenCase[], tensors };
}

/** A fixture tensor as a tsformer tensor: floats as `floatDtype`, ints and bools as int32. */
export function toTensor(st: SafeTensor, floatDtype: "float32" | "float64" = "float32", requiresGrad = false): T.Tensor {
  const isFloat = st.dtype === "F32" || st.dtype === "F64";
  const values = isFloat ? (st.data as Float32Array | Float64Array) : Int32Array.from(st.data as ArrayLike<number>);
  const t = T.tensor(values, { shape: st.shape, dtype: isFloat ? floatDtype : "int32" });
  if (isFloat && requiresGrad) t.requiresGrad_();
  return t;
}

const dims = (d: unknown): number | number[] | undefined => (d === undefined ? undefined : (d as number | number[]));

/** Run the PyTorch op named in a fixture with tsformer; returns the outputs. */
export function runCase(c: GoldenCase, x: T.Tensor[]): T.Tensor[] {
  const a = c.args;
  switch (c.op) {
    case "neg": return [T.neg(x[0])];
    case "exp": return [T.exp(x[0])];
    case "log": return [T.log(x[0])];
    case "sqrt": return [T.sqrt(x[0])];
    case "rsqrt": return [T.rsqrt(x[0])];
    case "abs": return [T.abs(x[0])];
    case "tanh": return [T.tanh(x[0])];
    case "sigmoid": return [T.sigmoid(x[0])];
    case "relu": return [T.relu(x[0])];
    case "silu": return [T.silu(x[0])];
    case "gelu": return [T.gelu(x[0], a.approximate as "none" | "tanh")];
    case "softplus": return [T.softplus(x[0], a.beta as number, a.threshold as number)];
    case "elu": return [T.elu(x[0], a.alpha as number)];
    case "clamp": return [T.clamp(x[0], a.min as number, a.max as number)];
    case "pow": return [x.length === 1 ? T.powScalar(x[0], a.exponent as number) : T.pow(x[0], x[1])];
    case "add": return [T.add(x[0], x[1])];
    case "sub": return [T.sub(x[0], x[1])];
    case "mul": return [T.mul(x[0], x[1])];
    case "div": return [T.div(x[0], x[1])];
    case "sum": return [T.sum(x[0], dims(a.dim), Boolean(a.keepdim))];
    case "mean": return [T.mean(x[0], dims(a.dim), Boolean(a.keepdim))];
    case "amax": return [T.amax(x[0], dims(a.dim), Boolean(a.keepdim))];
    case "amin": return [T.amin(x[0], dims(a.dim), Boolean(a.keepdim))];
    case "var": return [T.variance(x[0], dims(a.dim), { unbiased: a.unbiased as boolean, keepdim: Boolean(a.keepdim) })];
    case "softmax": return [T.softmax(x[0], a.dim as number)];
    case "log_softmax": return [T.logSoftmax(x[0], a.dim as number)];
    case "logsumexp": return [T.logsumexp(x[0], dims(a.dim), Boolean(a.keepdim))];
    case "matmul": return [T.matmul(x[0], x[1])];
    case "cross_entropy":
      return [T.crossEntropy(x[0], x[1], {
        reduction: a.reduction as "mean" | "sum" | "none",
        ignoreIndex: a.ignore_index as number,
        labelSmoothing: a.label_smoothing as number,
      })];
    case "embedding": return [T.embedding(x[0], x[1])];
    case "index_select": return [T.indexSelect(x[0], a.dim as number, x[1])];
    case "cat": return [T.cat(x, a.dim as number)];
    case "stack": return [T.stack(x, a.dim as number)];
    case "split": return T.split(x[0], a.split_size_or_sections as number | number[], a.dim as number);
    case "chunk": return T.chunk(x[0], a.chunks as number, a.dim as number);
    case "cumsum": return [T.cumsum(x[0], a.dim as number)];
    case "triu": return [T.triu(x[0], a.diagonal as number)];
    case "tril": return [T.tril(x[0], a.diagonal as number)];
    case "where": return [T.where(x[0], x[1], x[2])];
    case "masked_fill": return [T.maskedFill(x[0], x[1], a.value as number)];
    case "layer_norm": return [T.layerNorm(x[0], x[1] ?? null, x[2] ?? null, a.eps as number)];
    case "rms_norm": return [T.rmsNorm(x[0], x[1] ?? null, a.eps as number)];
    case "reshape": return [T.reshape(x[0], a.shape as number[])];
    case "permute": return [T.permute(x[0], a.dims as number[])];
    case "transpose": return [T.transpose(x[0], a.dim0 as number, a.dim1 as number)];
    case "narrow": return [T.narrow(x[0], a.dim as number, a.start as number, a.length as number)];
    case "expand": return [T.expand(x[0], a.size as number[])];
    default: throw new Error(`golden case ${c.name}: no tsformer mapping for op '${c.op}'`);
  }
}

/**
 * Largest |got - want| / (|want| + 0.02 max|want|): relative error with a scale-aware floor, because a
 * float32 sum of products carries ~1e-7 x max|want| absolute rounding that no implementation avoids on
 * elements much smaller than the largest one.
 */
export function maxRelError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) return Infinity;
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]) / (Math.abs(want[i]) + scale * 0.02 + 1e-30);
    if (!(err <= worst)) worst = err;
  }
  return worst;
}

/** A golden script's attention config ({ rope: boolean, ropeTheta }, as PyTorch's side writes it) as an AttentionConfig. */
export function attentionConfig(raw: Record<string, unknown>): AttentionConfig {
  const { rope, ropeTheta, ...rest } = raw;
  return { ...rest, rope: rope ? new T.Rotary({ theta: (ropeTheta as number | undefined) ?? 10000, trainLen: rest.maxSeqLen as number }) : null } as AttentionConfig;
}

/** max |got - want| / max |want|: the error relative to the tensor's scale (for outputs with many values near 0). */
export function maxScaledError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) return Infinity;
  let diff = 0, scale = 0;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i] - want[i]);
    if (!(e <= diff)) diff = e;
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return diff / scale;
}
