// Image ops with torch.nn.functional semantics, each a composition of differentiable ops (so its
// backward and every higher-order gradient come from theirs): group norm on the fused layer-norm
// kernel, bilinear upsampling as two interpolation matrices, nearest upsampling and average pooling as
// a (transposed) convolution of every channel with a constant kernel.

import { fmtShape } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import { add, mul } from "./binary.js";
import { conv2d, convTranspose2d, intPair, type IntPair } from "./conv.js";
import { matmul } from "./matmul.js";
import { layerNorm } from "./norm.js";
import { commonFloat } from "./util.js";
import { reshape, transpose } from "./views.js";

function check4d(op: string, x: Tensor): [number, number, number, number] {
  commonFloat(op, x);
  if (x.ndim !== 4) throw new RangeError(`${op}: input must be 4-D [N, C, H, W], got ${fmtShape(x.shape)}`);
  return x.shape as unknown as [number, number, number, number];
}

/**
 * Group normalization (Wu & He 2018, eq. 1-3; torch.nn.functional.group_norm): x [N, C, *] normalized
 * over each group of C / groups channels and all positions, then the per-channel affine weight, bias [C].
 */
export function groupNorm(x: Tensor, groups: number, weight: Tensor | null = null, bias: Tensor | null = null, eps = 1e-5): Tensor {
  const op = "group_norm";
  commonFloat(op, x, ...(weight ? [weight] : []), ...(bias ? [bias] : []));
  if (x.ndim < 2) throw new RangeError(`${op}: input must be [N, C, *], got ${fmtShape(x.shape)}`);
  const c = x.shape[1];
  if (!Number.isInteger(groups) || groups < 1 || c % groups !== 0) {
    throw new RangeError(`${op}: groups must be a positive integer dividing the ${c} channels of input ${fmtShape(x.shape)}, got ${groups}`);
  }
  for (const [name, p] of [["weight", weight], ["bias", bias]] as const) {
    if (p && (p.ndim !== 1 || p.shape[0] !== c)) throw new RangeError(`${op}: ${name} must be [${c}] (one per channel), got ${fmtShape(p.shape)}`);
  }
  const per = x.numel / (x.shape[0] * groups);
  let y = reshape(layerNorm(reshape(x, [x.shape[0], groups, per]), null, null, eps), x.shape);
  const perChannel = [1, c, ...x.shape.slice(2).map(() => 1)];
  if (weight) y = mul(y, reshape(weight, perChannel));
  if (bias) y = add(y, reshape(bias, perChannel));
  return y;
}

/**
 * torch's upsample(mode="nearest") by integer factors: out[i, j] = x[floor(i / sh), floor(j / sw)], as
 * conv_transpose2d of every channel with a ones kernel [sh, sw] at stride [sh, sw] (the windows tile
 * the output without overlap); its backward, the window sums, is the matching conv2d.
 */
export function upsampleNearest2d(x: Tensor, scale: IntPair): Tensor {
  const op = "upsample_nearest2d";
  const [n, c, h, w] = check4d(op, x);
  const [sh, sw] = intPair(op, "scale", scale, 1);
  const ones = Tensor.empty([1, 1, sh, sw], x.dtype);
  ones.data.fill(1);
  return reshape(convTranspose2d(reshape(x, [n * c, 1, h, w]), ones, null, { stride: [sh, sw] }), [n, c, h * sh, w * sw]);
}

export interface BilinearOptions {
  /** Output size [OH, OW]; or `scale` (a factor or a pair): OH = floor(H scale). */
  size?: readonly [number, number];
  scale?: number | readonly [number, number];
  /** torch's align_corners (default false, as torch). */
  alignCorners?: boolean;
}

/**
 * The [out, in] linear-interpolation matrix of one axis, PyTorch's source index rule
 * (aten/src/ATen/native/UpSample.h area_pixel_compute_source_index): align corners maps the end
 * pixels' centers onto each other (src = dst (in - 1) / (out - 1)); otherwise the half-pixel rule
 * src = max((dst + 0.5) ratio - 0.5, 0) with ratio = 1 / scale when a scale is given, else in / out.
 */
function interpolation(inN: number, outN: number, scale: number | null, alignCorners: boolean, dtype: "float32" | "float64"): Tensor {
  const m = Tensor.zeros([outN, inN], dtype);
  const ratio = alignCorners ? (outN > 1 ? (inN - 1) / (outN - 1) : 0) : scale ? 1 / scale : inN / outN;
  for (let d = 0; d < outN; d++) {
    const src = alignCorners ? d * ratio : Math.max((d + 0.5) * ratio - 0.5, 0);
    const i0 = Math.min(Math.floor(src), inN - 1), i1 = Math.min(i0 + 1, inN - 1), l1 = src - i0;
    m.data[d * inN + i0] += 1 - l1;
    m.data[d * inN + i1] += l1;
  }
  return m;
}

/** torch's upsample(mode="bilinear"): y = A_h x A_w^T with the interpolation matrices of both axes. */
export function upsampleBilinear2d(x: Tensor, opts: BilinearOptions): Tensor {
  const op = "upsample_bilinear2d";
  const [, , h, w] = check4d(op, x);
  if ((opts.size === undefined) === (opts.scale === undefined)) throw new RangeError(`${op}: give exactly one of size and scale`);
  let oh: number, ow: number, scales: [number | null, number | null] = [null, null];
  if (opts.size) {
    [oh, ow] = intPair(op, "size", opts.size as [number, number], 1);
  } else {
    const s = typeof opts.scale === "number" ? [opts.scale, opts.scale] : opts.scale!;
    if (s.length !== 2 || !s.every((v) => Number.isFinite(v) && v > 0)) throw new RangeError(`${op}: scale must be a positive number or a pair of them, got ${JSON.stringify(opts.scale)}`);
    [oh, ow] = [Math.floor(h * s[0]), Math.floor(w * s[1])];
    if (oh < 1 || ow < 1) throw new RangeError(`${op}: scale ${JSON.stringify(opts.scale)} gives an empty output for input ${fmtShape(x.shape)}`);
    scales = [s[0], s[1]];
  }
  const dtype = commonFloat(op, x);
  const ah = interpolation(h, oh, scales[0], opts.alignCorners ?? false, dtype);
  const aw = interpolation(w, ow, scales[1], opts.alignCorners ?? false, dtype);
  return matmul(matmul(ah, x), transpose(aw, 0, 1));
}

/**
 * torch's avg_pool2d (count_include_pad = true, ceil_mode = false): the mean over each kernel window,
 * zero padding counted, as a convolution of every channel with a constant 1 / (kh kw) kernel.
 */
export function avgPool2d(x: Tensor, kernel: IntPair, stride: IntPair | null = null, padding: IntPair = 0): Tensor {
  const op = "avg_pool2d";
  const [n, c, h, w] = check4d(op, x);
  const [kh, kw] = intPair(op, "kernel", kernel, 1);
  const [ph, pw] = intPair(op, "padding", padding, 0);
  const st = intPair(op, "stride", stride ?? [kh, kw], 1);
  if (2 * ph > kh || 2 * pw > kw) throw new RangeError(`${op}: padding ${ph}x${pw} must be at most half the kernel ${kh}x${kw}`);
  if (kh > h + 2 * ph || kw > w + 2 * pw) throw new RangeError(`${op}: the kernel ${kh}x${kw} is larger than the padded input ${h + 2 * ph}x${w + 2 * pw} (input ${fmtShape(x.shape)}, padding ${ph}x${pw})`);
  const k = Tensor.empty([1, 1, kh, kw], x.dtype);
  k.data.fill(1 / (kh * kw));
  const y = conv2d(reshape(x, [n * c, 1, h, w]), k, null, { stride: st, padding: [ph, pw] });
  return reshape(y, [n, c, y.shape[2], y.shape[3]]);
}
