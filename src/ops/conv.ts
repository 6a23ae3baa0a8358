// 2-D convolution and its transpose with torch.nn.functional.conv2d / conv_transpose2d semantics, as
// im2col + GEMM (Chellapilla et al. 2006): per image, y_g = W_g col_g with col = im2col(x) and W_g the
// [O/groups, C/groups * kh * kw] rows of group g.
//
// Three bilinear ops close under differentiation, so every order of gradient is one of them again:
//   conv(x, w)   = W col(x)                     (the forward)
//   input(y, w)  = col2im(W^T y)                (conv's input gradient = conv_transpose2d's forward)
//   weight(x, y) = sum over images y col(x)^T   (conv's weight gradient)
// From <g, conv(x, w)> = <input(g, w), x> = <weight(x, g), w> and its permutations, each op's backward
// is two of the three (see `convOp`); it is written in differentiable ops, so it serves createGraph
// walks as it is (the double backward of a WGAN-GP penalty).

import type { FloatArray, Im2colArgs } from "../backend/backend.js";
import { backend } from "../backend/registry.js";
import { recordComposite } from "../tensor/autograd.js";
import { fmtShape } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import { commonFloat, floatData } from "./util.js";
import { add } from "./binary.js";
import { reshape } from "./views.js";

export type IntPair = number | readonly [number, number];

export interface Conv2dOptions {
  stride?: IntPair;
  padding?: IntPair;
  dilation?: IntPair;
  groups?: number;
}

export interface ConvTranspose2dOptions extends Conv2dOptions {
  /** Extra rows / columns on one side of the output (torch's output_padding): < stride or < dilation. */
  outputPadding?: IntPair;
}

/**
 * A convolution's geometry in conv2d's terms: x [n, c, h, w] -> y [n, o, oh, ow] with a weight
 * [o, c / groups, kh, kw]. conv_transpose2d is the same geometry read backwards (its input is y).
 */
export interface ConvGeom extends Omit<Im2colArgs, "x" | "col"> { o: number; groups: number }

/** An integer (or pair) >= min as [rows, cols], or an error naming the op and the argument. */
export function intPair(op: string, name: string, v: IntPair, min: number): [number, number] {
  const p = typeof v === "number" ? [v, v] : v;
  if (!Array.isArray(p) || p.length !== 2 || !p.every((a) => Number.isInteger(a) && a >= min)) {
    throw new RangeError(`${op}: ${name} must be an integer >= ${min} or a pair of them, got ${JSON.stringify(v)}`);
  }
  return [p[0], p[1]];
}

function checkRanks(op: string, x: Tensor, weight: Tensor, wLayout: string): void {
  if (x.ndim !== 4) throw new RangeError(`${op}: input must be 4-D [N, C, H, W], got ${fmtShape(x.shape)}`);
  if (weight.ndim !== 4) throw new RangeError(`${op}: weight must be 4-D ${wLayout}, got ${fmtShape(weight.shape)}`);
}

function checkGroups(op: string, groups: number, what: string, count: number, of: string): void {
  if (!Number.isInteger(groups) || groups < 1) throw new RangeError(`${op}: groups must be a positive integer, got ${groups}`);
  if (count % groups !== 0) throw new RangeError(`${op}: ${what} ${count} (${of}) is not divisible by groups ${groups}`);
}

function checkBias(op: string, bias: Tensor | null, o: number): void {
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== o)) throw new RangeError(`${op}: bias must be [${o}] (one per output channel), got ${fmtShape(bias.shape)}`);
}

// The column buffer holds a chunk of images at a time, kept between calls up to COL_BUDGET elements:
// a fresh many-MB buffer per call costs more in page faults than the im2col that fills it.
const COL_BUDGET = 1 << 21;
const scratch: { float32?: Float32Array; float64?: Float64Array } = {};

function colBuffer(dtype: "float32" | "float64", n: number): FloatArray {
  if (n > COL_BUDGET) return Tensor.empty([n], dtype).data as FloatArray;
  const s = scratch[dtype] ?? (scratch[dtype] = (dtype === "float32" ? new Float32Array(COL_BUDGET) : new Float64Array(COL_BUDGET)) as never);
  return s.subarray(0, n);
}

type Kind = "conv" | "input" | "weight";

/**
 * The GEMMs of one op, a chunk of images at a time through the column buffer; per group g, batched
 * over the chunk's images (or image by image when they sum into one weight gradient):
 *   conv:   y[i, g] = W_g col(x)[i, g]        input: x[i] = col2im(W_g^T y[i, g] for all g)
 *   weight: gW_g = sum_i y[i, g] col(x)[i, g]^T
 */
function run(kind: Kind, ad: FloatArray, bd: FloatArray, G: ConvGeom, out: FloatArray): void {
  const og = G.o / G.groups, kg = (G.c / G.groups) * G.kh * G.kw, L = G.oh * G.ow, K = G.c * G.kh * G.kw;
  // A 1x1 kernel at stride 1 without padding: the columns are the image itself (unless a transposed
  // conv's outputPadding made the image larger than the output).
  const direct = G.kh === 1 && G.kw === 1 && G.sh === 1 && G.sw === 1 && G.ph === 0 && G.pw === 0 && G.oh === G.h && G.ow === G.w;
  const xImg = G.c * G.h * G.w, chunk = direct ? G.n : Math.max(1, Math.floor(COL_BUDGET / (K * L)));
  const image = kind === "input" ? out : ad;
  const col = direct ? image : colBuffer(ad instanceof Float64Array ? "float64" : "float32", Math.min(chunk, G.n) * K * L);
  const be = backend();
  for (let i0 = 0; i0 < G.n; i0 += chunk) {
    const nb = Math.min(chunk, G.n - i0), c0 = direct ? i0 * K * L : 0;  // the chunk's first column
    const xs = image.subarray(i0 * xImg, (i0 + nb) * xImg);
    if (kind !== "input" && !direct) be.im2col({ ...G, n: nb, x: xs, col });
    for (let g = 0; g < G.groups; g++) {
      if (kind === "conv") {
        be.gemm({ batch: nb, m: og, n: L, k: kg, a: bd, aOff: g * og * kg, lda: kg, strideA: 0, transA: false,
          b: col, bOff: c0 + g * kg * L, ldb: L, strideB: K * L, transB: false,
          c: out, cOff: (i0 * G.o + g * og) * L, ldc: L, strideC: G.o * L, alpha: 1, beta: 0 });
      } else if (kind === "input") {
        be.gemm({ batch: nb, m: kg, n: L, k: og, a: bd, aOff: g * og * kg, lda: kg, strideA: 0, transA: true,
          b: ad, bOff: (i0 * G.o + g * og) * L, ldb: L, strideB: G.o * L, transB: false,
          c: col, cOff: c0 + g * kg * L, ldc: L, strideC: K * L, alpha: 1, beta: 0 });
      } else {
        for (let i = 0; i < nb; i++) {
          be.gemm({ batch: 1, m: og, n: kg, k: L, a: bd, aOff: ((i0 + i) * G.o + g * og) * L, lda: L, strideA: 0, transA: false,
            b: col, bOff: c0 + (i * K + g * kg) * L, ldb: L, strideB: 0, transB: true,
            c: out, cOff: g * og * kg, ldc: kg, strideC: 0, alpha: 1, beta: i0 + i ? 1 : 0 });
        }
      }
    }
    if (kind === "input" && !direct) be.col2im({ ...G, n: nb, x: xs, col });
  }
}

const OP_NAMES: Record<Kind, string> = { conv: "conv2d", input: "conv2d_input_grad", weight: "conv2d_weight_grad" };

/** conv(x, w) -> y, input(y, w) -> x-shaped, weight(x, y) -> w-shaped; differentiable to any order. */
function convOp(kind: Kind, a: Tensor, b: Tensor, G: ConvGeom, op = OP_NAMES[kind]): Tensor {
  const dtype = commonFloat(op, a, b);
  const ad = floatData(a, op), bd = floatData(b, op);
  const shape = kind === "conv" ? [G.n, G.o, G.oh, G.ow] : kind === "input" ? [G.n, G.c, G.h, G.w] : [G.o, G.c / G.groups, G.kh, G.kw];
  // every element is written, except a weight gradient over no images (0)
  const out = kind === "weight" && G.n === 0 ? Tensor.zeros(shape, dtype) : Tensor.empty(shape, dtype);
  run(kind, ad, bd, G, out.data as FloatArray);
  // Each input is saved only for the other's gradient (a frozen weight keeps no activation alive).
  const keepA = b.requiresGrad, keepB = a.requiresGrad;
  return recordComposite(out, op, [a, b], (g, { needsInputGrad: [na, nb], saved }) => {
    const sa = keepA ? saved[0] : null, sb = keepB ? saved[keepA ? 1 : 0] : null;
    switch (kind) {
      case "conv": return [na ? convOp("input", g, sb!, G) : null, nb ? convOp("weight", sa!, g, G) : null];
      case "input": return [na ? convOp("conv", g, sb!, G) : null, nb ? convOp("weight", g, sa!, G) : null];
      case "weight": return [na ? convOp("input", sb!, g, G) : null, nb ? convOp("conv", sa!, g, G) : null];
    }
  }, [...(keepA ? [a] : []), ...(keepB ? [b] : [])]);
}

/** stride, padding and dilation (each as [h, w]) of a conv's options, checked. */
function spatial(op: string, o: Conv2dOptions): [number, number, number, number, number, number] {
  return [...intPair(op, "stride", o.stride ?? 1, 1), ...intPair(op, "padding", o.padding ?? 0, 0), ...intPair(op, "dilation", o.dilation ?? 1, 1)];
}

function withBias(y: Tensor, bias: Tensor | null): Tensor {
  return bias ? add(y, reshape(bias, [1, bias.shape[0], 1, 1])) : y;
}

/** torch.nn.functional.conv2d: x [N, C, H, W], weight [O, C / groups, kh, kw], bias [O] -> [N, O, OH, OW]. */
export function conv2d(x: Tensor, weight: Tensor, bias: Tensor | null = null, opts: Conv2dOptions = {}): Tensor {
  const op = "conv2d";
  checkRanks(op, x, weight, "[O, C/groups, kh, kw]");
  const groups = opts.groups ?? 1;
  const [n, c, h, w] = x.shape, [o, cg, kh, kw] = weight.shape;
  checkGroups(op, groups, "input channels", c, `input ${fmtShape(x.shape)}`);
  checkGroups(op, groups, "output channels", o, `weight ${fmtShape(weight.shape)}`);
  if (cg * groups !== c) throw new RangeError(`${op}: weight ${fmtShape(weight.shape)} expects ${cg * groups} input channels (C/groups = ${cg}, groups ${groups}), input ${fmtShape(x.shape)} has ${c}`);
  checkBias(op, bias, o);
  const [sh, sw, ph, pw, dh, dw] = spatial(op, opts);
  const ekh = dh * (kh - 1) + 1, ekw = dw * (kw - 1) + 1;
  if (ekh > h + 2 * ph || ekw > w + 2 * pw) {
    throw new RangeError(`${op}: the kernel ${ekh}x${ekw} (weight ${fmtShape(weight.shape)}, dilation ${dh}x${dw}) is larger than the padded input ${h + 2 * ph}x${w + 2 * pw} (input ${fmtShape(x.shape)}, padding ${ph}x${pw})`);
  }
  const G: ConvGeom = { n, c, h, w, o, kh, kw, sh, sw, ph, pw, dh, dw, groups,
    oh: Math.floor((h + 2 * ph - ekh) / sh) + 1, ow: Math.floor((w + 2 * pw - ekw) / sw) + 1 };
  return withBias(convOp("conv", x, weight, G), bias);
}

/**
 * torch.nn.functional.conv_transpose2d: x [N, Cin, H, W], weight [Cin, Cout / groups, kh, kw], bias
 * [Cout] -> [N, Cout, (H - 1) sh - 2 ph + dh (kh - 1) + oph + 1, ...]: the adjoint of conv2d.
 */
export function convTranspose2d(x: Tensor, weight: Tensor, bias: Tensor | null = null, opts: ConvTranspose2dOptions = {}): Tensor {
  const op = "conv_transpose2d";
  checkRanks(op, x, weight, "[Cin, Cout/groups, kh, kw]");
  const groups = opts.groups ?? 1;
  const [n, cin, h, w] = x.shape, [wi, cg, kh, kw] = weight.shape;
  checkGroups(op, groups, "input channels", cin, `input ${fmtShape(x.shape)}`);
  if (wi !== cin) throw new RangeError(`${op}: weight ${fmtShape(weight.shape)} expects ${wi} input channels (weight is [Cin, Cout/groups, kh, kw]), input ${fmtShape(x.shape)} has ${cin}`);
  const cout = cg * groups;
  checkBias(op, bias, cout);
  const [sh, sw, ph, pw, dh, dw] = spatial(op, opts);
  const [oph, opw] = intPair(op, "outputPadding", opts.outputPadding ?? 0, 0);
  if ((oph >= sh && oph >= dh) || (opw >= sw && opw >= dw)) {
    throw new RangeError(`${op}: outputPadding ${oph}x${opw} must be smaller than either stride ${sh}x${sw} or dilation ${dh}x${dw}`);
  }
  const oh = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1, ow = (w - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1;
  if (oh < 1 || ow < 1) throw new RangeError(`${op}: the output would be ${oh}x${ow} (input ${fmtShape(x.shape)}, weight ${fmtShape(weight.shape)}, padding ${ph}x${pw}): padding too large`);
  // the conv2d geometry whose input gradient this is: its input is our output, its output our input
  const G: ConvGeom = { n, c: cout, h: oh, w: ow, o: cin, oh: h, ow: w, kh, kw, sh, sw, ph, pw, dh, dw, groups };
  return withBias(convOp("input", x, weight, G, op), bias);
}
