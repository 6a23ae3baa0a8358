// The kernel table: every kernel of the Backend interface (backend.ts) described once (its op lists are
// op-table.ts). A backend other than js implements a kernel per dtype and is dispatched through this table
// (native/index.ts): the dtype of a call is that of its arrays, and a call whose dtype the backend
// lacks runs the js reference twin. The native addon exports its op names (opNames(), the lists of
// native/kernels/kernels.h and native/elementwise/unary.h); the op codes are built from them and every
// op of op-table.ts must be among them (native/addon.ts checks at load).

import type { Backend } from "./backend.js";

/** The dtype of a kernel call: the element type its float arrays share, and the array class holding it. */
export const DTYPE_ARRAYS = { float32: Float32Array, float64: Float64Array } as const;
export type Dtype = keyof typeof DTYPE_ARRAYS;

export type KernelName = Exclude<keyof Backend, "name">;

/** Where a kernel's arrays sit among its arguments: numbers are positions, strings properties of argument 0 (kernels taking one args object). */
export interface KernelLayout {
  /** Float arrays: all hold the call's dtype. */
  readonly arrays: readonly (number | string)[];
  /** Those of `arrays` that may be null (absent). */
  readonly optional?: readonly (number | string)[];
  /** Index arrays: must be Int32Array for a typed kernel. */
  readonly indices?: readonly number[];
  /** Position of the element count, or of the shape (counted as its product): what a tiny-size cut-off reads. */
  readonly size?: number;
}
export const KERNELS: { readonly [K in KernelName]: KernelLayout } = {
  unary: { arrays: [1, 2], size: 3 },  // (op, x, y, n, p)
  unaryBackward: { arrays: [1, 2, 3, 4], size: 5 },  // (op, x, y, gy, gx, n, p)
  binary: { arrays: [1, 4, 7], size: 8 },  // (op, a, aOff, aStrides, b, bOff, bStrides, out, shape)
  stridedCopy: { arrays: [0, 3], size: 6 },  // (src, srcOff, srcStrides, dst, dstOff, dstStrides, shape)
  where: { arrays: [0, 1, 2, 3] },  // (cond, a, b, out, n)
  reduce: { arrays: [1, 5] },  // (op, x, outer, dim, inner, out)
  cumsum: { arrays: [0, 4] },  // (x, outer, dim, inner, out, reverse)
  gemm: { arrays: ["a", "b", "c", "bias"], optional: ["bias"] },  // (args)
  gemmGrouped: { arrays: ["a"] },  // (args); bs / b, c / cs hold a's dtype (lists are not checked here)
  moeFfn: { arrays: ["x", "y", "gates"] },  // (args); w1, w3, w2 hold x's dtype (lists are not checked here)
  gemmBf16: { arrays: ["c", "bias"], optional: ["bias"] },  // (args); a, b are Uint16Array bf16 bits
  gemmQuant: { arrays: ["x", "y", "bias"], optional: ["bias"] },  // (args); w is Int8Array / Uint16Array, scales Float32Array
  toBf16: { arrays: [0] },  // (src, dst, n); dst is Uint16Array
  softmax: { arrays: [0, 1] },  // (x, y, rows, cols, log)
  softmaxBackward: { arrays: [0, 1, 2] },  // (y, gy, gx, rows, cols, log)
  crossEntropy: { arrays: [0, 6, 7], indices: [1] },  // (logits, targets, rows, cols, ignore, smoothing, loss, lse)
  crossEntropyBackward: { arrays: [0, 2, 3, 8], indices: [1] },  // (logits, targets, lse, gLoss, rows, cols, ignore, smoothing, gLogits)
  layerNorm: { arrays: [0, 1, 2, 6, 7, 8], optional: [1, 2] },  // (x, w, b, rows, cols, eps, y, mean, rstd)
  layerNormBackward: { arrays: [0, 1, 2, 3, 4, 7, 8, 9], optional: [1, 8, 9] },  // (x, w, mean, rstd, gy, rows, cols, gx, gw, gb)
  rmsNorm: { arrays: [0, 1, 5, 6], optional: [1] },  // (x, w, rows, cols, eps, y, rstd)
  rmsNormBackward: { arrays: [0, 1, 2, 3, 6, 7], optional: [1, 7] },  // (x, w, rstd, gy, rows, cols, gx, gw)
  indexSelect: { arrays: [0, 6], indices: [4] },  // (x, outer, dimIn, inner, idx, nIdx, out)
  indexAdd: { arrays: [0, 6], indices: [4] },  // (gOut, outer, dimIn, inner, idx, nIdx, gx)
  adamw: { arrays: ["param", "grad", "m", "v"] },  // (args, n)
  flashForward: { arrays: ["q", "k", "v", "o", "lse"] },  // (args)
  flashBackward: { arrays: ["q", "k", "v", "o", "lse", "dO", "dq", "dk", "dv"] },  // (args)
  selectiveScan: { arrays: ["u", "delta", "A", "B", "C", "D", "y"] },  // (args); ck, last, h0 are Float64Array
  selectiveScanBackward: { arrays: ["u", "delta", "A", "B", "C", "D", "gy", "gu", "gdelta", "gA", "gB", "gC", "gD"] },  // (args)
  im2col: { arrays: ["x", "col"] },  // (args)
  col2im: { arrays: ["x", "col"] },  // (args)
};

/** A backend's kernels for some dtypes: kernel -> dtype -> implementation with the Backend signature. */
export type TypedKernels = { readonly [K in KernelName]?: Partial<Record<Dtype, Backend[K]>> };

/**
 * A backend from typed kernels over the js reference: each kernel runs the implementation for the
 * dtype of its call when there is one and the call has at least tiny[kernel] elements, else the js
 * twin. The dispatcher of a kernel is compiled from its layout (KERNELS) into the plain check one would
 * write by hand, e.g. for unary with a float32 implementation:
 *   (a0, a1, a2, a3, a4) => a1 instanceof Float32Array && a2 instanceof Float32Array && a3 >= 8
 *     ? float32(a0, a1, a2, a3, a4) : js(a0, a1, a2, a3, a4)
 * so that a call costs a few instanceof checks: no allocation, no lookup (kernels run thousands of
 * times a second, and tiny calls are a few tens of ns in js).
 */
export function dispatchBackend(name: string, typed: TypedKernels, js: Backend, tiny: { readonly [K in KernelName]?: number } = {}): Backend {
  const b: Record<string, unknown> = { ...js, name };
  for (const k of Object.keys(KERNELS) as KernelName[]) {
    const impls = typed[k];
    if (impls) b[k] = compile(KERNELS[k], impls as Partial<Record<Dtype, AnyKernel>>, js[k] as AnyKernel, tiny[k] ?? 0);
  }
  return b as unknown as Backend;
}

type AnyKernel = (...args: unknown[]) => void;

function compile(layout: KernelLayout, impls: Partial<Record<Dtype, AnyKernel>>, js: AnyKernel, tiny: number): AnyKernel {
  if (tiny > 0 && layout.size === undefined) throw new Error("dispatchBackend: a tiny cut-off needs the layout's size");
  const positions = [...layout.arrays, ...(layout.indices ?? []), layout.size ?? 0].filter((at) => typeof at === "number");
  const params = Array.from({ length: Math.max(js.length, ...positions.map((at) => at + 1)) }, (_, i) => `a${i}`).join(", ");
  const arg = (at: number | string) => (typeof at === "number" ? `a${at}` : `a0.${at}`);
  const dtypes = (Object.keys(impls) as Dtype[]).filter((d) => impls[d]);
  const cases = dtypes.map((d) => {
    const conds = layout.arrays.map((at) => layout.optional?.includes(at) ? `(${arg(at)} == null || ${arg(at)} instanceof A_${d})` : `${arg(at)} instanceof A_${d}`);
    for (const at of layout.indices ?? []) conds.push(`${arg(at)} instanceof Int32Array`);
    if (tiny > 0) conds.push(`count(${arg(layout.size!)}) >= ${tiny}`);
    return `if (${conds.join(" && ")}) return K_${d}(${params});`;
  });
  const names = ["js", "count", ...dtypes.flatMap((d) => [`K_${d}`, `A_${d}`])];
  const values = [js, count, ...dtypes.flatMap((d) => [impls[d], DTYPE_ARRAYS[d]])];
  return new Function(...names, `return function (${params}) {\n  ${cases.join("\n  ")}\n  return js(${params});\n};`)(...values) as AnyKernel;
}

/** An element count, or the product of a shape. */
function count(n: number | readonly number[]): number {
  if (typeof n === "number") return n;
  let total = 1;
  for (let i = 0; i < n.length; i++) total *= n[i];
  return total;
}
