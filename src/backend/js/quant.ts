// Inference weight formats on typed arrays (the reference twins of native/gemm/quant*.h):
// per-output-channel symmetric int8 (scale_j = max_p |W[j, p]| / 127, q = round-half-even(W / scale_j),
// as torch.ao's per-channel symmetric qint8 with quant_min -127 (restricted range: -128 unused, so
// negation never overflows); Jacob et al. 2018 §2.1 with zero point 0), bf16 bits (round to nearest
// even, half.ts), and the product y = x W^T reading them.

import type { FloatArray, QuantGemmArgs, WeightFormat } from "../backend.js";
import { bf16ToF32, f32ToBf16 } from "./half.js";

export const INT8_QMAX = 127;

/** A weight [rows, cols] in an inference format: int8 values with per-row scales, or bf16 bits. */
export interface QuantizedData {
  format: WeightFormat;
  rows: number; cols: number;
  data: Int8Array | Uint16Array;
  /** int8: W[j, p] = scales[j] * data[j * cols + p]; bf16: null. */
  scales: Float32Array | null;
}

/** Round half to even (IEEE 754's default, torch.round's / nearbyint's). */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** w [rows, cols] (fp32 values, row-major) in `format`; non-finite weights are refused. */
export function quantizeRows(w: FloatArray, rows: number, cols: number, format: WeightFormat): QuantizedData {
  if (w.length < rows * cols) throw new RangeError(`quantize: weight has ${w.length} values, expected ${rows} x ${cols}`);
  for (let i = 0; i < rows * cols; i++) {
    if (!Number.isFinite(w[i])) throw new RangeError(`quantize: the weight holds a non-finite value (${w[i]} at row ${Math.floor(i / cols)}, column ${i % cols})`);
  }
  if (format === "bf16") return { format, rows, cols, data: f32ToBf16(Float32Array.from(w.subarray(0, rows * cols))), scales: null };
  if (format !== "int8") throw new RangeError(`quantize: unknown weight format ${JSON.stringify(format)}; expected int8 or bf16`);
  const q = new Int8Array(rows * cols), scales = new Float32Array(rows);
  for (let j = 0; j < rows; j++) {
    let amax = 0;
    for (let p = 0; p < cols; p++) amax = Math.max(amax, Math.abs(w[j * cols + p]));
    scales[j] = amax / INT8_QMAX;  // rounded to fp32: that is the scale the kernels multiply by
    const s = scales[j];
    if (s === 0) continue;  // an all-zero row stays zero
    for (let p = 0; p < cols; p++) q[j * cols + p] = Math.max(-INT8_QMAX, Math.min(INT8_QMAX, roundHalfEven(w[j * cols + p] / s)));
  }
  return { format, rows, cols, data: q, scales };
}

/** The fp32 weight a quantized one stands for (int8: scale * q rounded to fp32, as the kernels' dequantization). */
export function dequantizeRows(q: QuantizedData): Float32Array {
  if (q.format === "bf16") return bf16ToF32(q.data as Uint16Array);
  const out = new Float32Array(q.rows * q.cols);
  for (let j = 0; j < q.rows; j++) for (let p = 0; p < q.cols; p++) out[j * q.cols + p] = q.data[j * q.cols + p] * q.scales![j];
  return out;
}

/** gemmQuant's twin: y = scale_j * sum_p x_p q_jp (+ bias) for int8, sum_p x_p w_jp for bf16, accumulated in float64. */
export function gemmQuant(g: QuantGemmArgs): void {
  const { format, m, n, k, x, xOff, w, scales, y, yOff } = g;
  const bias = g.bias ?? null, bo = g.biasOff ?? 0;
  if (format === "int8" ? !(w instanceof Int8Array) || !(scales instanceof Float32Array) || scales.length < n : format !== "bf16" || !(w instanceof Uint16Array)) {
    throw new TypeError(`gemmQuant: format ${JSON.stringify(format)} needs ${format === "int8" ? "w an Int8Array and scales a Float32Array of n values" : "w a Uint16Array of bf16 bits (format int8 or bf16)"}`);
  }
  if (w.length < n * k) throw new RangeError("gemmQuant: w is too short");
  if (x.length < xOff + m * k || y.length < yOff + m * n) throw new RangeError("gemmQuant: x or y is too short");
  if (bias && bias.length < bo + n) throw new RangeError("gemmQuant: bias is out of bounds");
  const wf = format === "bf16" ? bf16ToF32(w as Uint16Array) : w;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += x[xOff + i * k + p] * wf[j * k + p];
      y[yOff + i * n + j] = s * (format === "int8" ? scales![j] : 1) + (bias ? bias[bo + j] : 0);
    }
  }
}
