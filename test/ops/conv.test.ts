// conv2d and conv_transpose2d: PyTorch goldens (scripts/golden/conv.py), float64 gradcheck of every
// option combination and of the gradient penalty through them (the double backward), the native
// im2col / col2im against the js twin, and one clear error per bad input.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import * as T from "../../src/index.js";
import { conv2d, convTranspose2d, type ConvTranspose2dOptions } from "../../src/ops/index.js";
import type { Im2colArgs } from "../../src/backend/backend.js";
import { jsBackend } from "../../src/backend/js/index.js";
import { makeNativeBackend } from "../../src/backend/native/index.js";
import { native } from "../../src/backend/native/addon.js";
import { f64, rand, sameBits, skip } from "../helpers/native.js";
import { goldenSuite } from "./conv-golden.js";

goldenSuite("conv goldens", ["conv2d", "conv_transpose2d"]);

type Shapes = [number[], number[], boolean];  // x, w, bias
const CONV: [string, Shapes, ConvTranspose2dOptions][] = [
  ["plain", [[2, 2, 4, 5], [3, 2, 2, 3], true], {}],
  ["stride 2, padding 1", [[1, 2, 5, 4], [2, 2, 3, 3], true], { stride: 2, padding: 1 }],
  ["dilation 2, padding [1, 0]", [[1, 1, 6, 5], [2, 1, 2, 2], false], { dilation: 2, padding: [1, 0] }],
  ["groups 2, stride [1, 2]", [[1, 4, 4, 5], [4, 2, 2, 2], true], { groups: 2, stride: [1, 2] }],
];
const CONVT: [string, Shapes, ConvTranspose2dOptions][] = [
  ["plain", [[2, 2, 3, 2], [2, 3, 2, 2], true], {}],
  ["stride 2, padding 1, outputPadding 1", [[1, 2, 3, 3], [2, 2, 3, 3], true], { stride: 2, padding: 1, outputPadding: 1 }],
  ["1x1, dilation 2, outputPadding 1 (the output outgrows the input)", [[1, 2, 3, 2], [2, 2, 1, 1], true], { dilation: 2, outputPadding: 1 }],
  ["groups 2, dilation 2, outputPadding [1, 0]", [[1, 4, 3, 2], [4, 1, 2, 2], false], { groups: 2, dilation: 2, stride: [2, 1], outputPadding: [1, 0] }],
];

function inputs([xs, ws, hasBias]: Shapes, bOut: number, gen: T.RandomGenerator): T.Tensor[] {
  const r = (s: number[]) => T.randn(s, { dtype: "float64", generator: gen, requiresGrad: true });
  return [r(xs), r(ws), ...(hasBias ? [r([bOut])] : [])];
}

/** P = ||d<v, f(x, ...)^2>/dx||^2 (WGAN-GP's term; the square makes the gradient depend on x and w). */
function penalty(f: (...t: T.Tensor[]) => T.Tensor, v: T.Tensor) {
  return (x: T.Tensor, ...rest: T.Tensor[]) => {
    const [gx] = T.grad((a) => T.sum(T.mul(v, T.square(f(a, ...rest)))), { createGraph: true })(x);
    return T.sum(T.square(gx));
  };
}

// float64 runs the js kernels on every backend: once is enough
describe("conv float64 gradcheck", () => {
  const ops = [
    ["conv2d", CONV, (o: ConvTranspose2dOptions) => (...t: T.Tensor[]) => conv2d(t[0], t[1], t[2] ?? null, o)],
    ["conv_transpose2d", CONVT, (o: ConvTranspose2dOptions) => (...t: T.Tensor[]) => convTranspose2d(t[0], t[1], t[2] ?? null, o)],
  ] as const;
  for (const [name, list, make] of ops) {
    describe(name, () => {
      for (const [title, shapes, o] of list) {
        const bOut = name === "conv2d" ? shapes[1][0] : shapes[1][1] * (o.groups ?? 1);
        it(title, () => {
          const gen = new T.RandomGenerator(5);
          // gradcheck throws on an element off by more than 1e-7 + 1e-5 |numeric|
          assert.doesNotThrow(() => T.gradcheck(make(o), inputs(shapes, bOut, gen), { generator: gen }));
        });
        it(`${title}: gradient of the gradient penalty`, () => {
          const gen = new T.RandomGenerator(6);
          const xs = inputs(shapes, bOut, gen);
          const v = T.randn(make(o)(...xs.map((t) => t.detach())).shape, { dtype: "float64", generator: gen });
          // gradcheck throws on an element off by more than 1e-7 + 1e-5 |numeric|
          assert.doesNotThrow(() => T.gradcheck(penalty(make(o), v), xs, { generator: gen }));
        });
      }
    });
  }
});

describe("conv2d with a frozen weight", () => {
  it("gives dx only, equal to dx with a trainable weight", () => {
    const gen = new T.RandomGenerator(8);
    const x = T.randn([2, 3, 5, 5], { generator: gen, requiresGrad: true }), w = T.randn([4, 3, 3, 3], { generator: gen });
    const dx = (weight: T.Tensor) => {
      x.grad = null;
      T.sum(T.square(conv2d(x, weight, null, { padding: 1 }))).backward();
      return x.grad!.toTypedArray();
    };
    const frozen = dx(w), trainable = T.clone(w).detach().requiresGrad_();
    assert.deepEqual(frozen, dx(trainable));
    assert.equal(w.grad, null);
    assert.ok(trainable.grad);
  });
});

describe("native im2col / col2im equal the js twin", { skip }, () => {
  const nb = makeNativeBackend({ tinyToJs: false })!;
  const geoms: [string, Omit<Im2colArgs, "x" | "col">][] = [
    ["3x3 padding 1", { n: 2, c: 3, h: 9, w: 7, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1, dh: 1, dw: 1, oh: 9, ow: 7 }],
    ["stride 2, dilation 2, uneven padding", { n: 1, c: 2, h: 11, w: 8, kh: 3, kw: 2, sh: 2, sw: 3, ph: 2, pw: 1, dh: 2, dw: 3, oh: 6, ow: 2 }],
    ["many planes (threaded)", { n: 16, c: 8, h: 12, w: 12, kh: 3, kw: 3, sh: 1, sw: 1, ph: 0, pw: 0, dh: 1, dw: 1, oh: 10, ow: 10 }],
    ["taller output than the conv gives (conv_transpose2d outputPadding)", { n: 1, c: 2, h: 5, w: 6, kh: 2, kw: 3, sh: 2, sw: 1, ph: 0, pw: 1, dh: 1, dw: 1, oh: 3, ow: 6 }],
  ];
  for (const [title, g] of geoms) {
    it(title, () => {
      const nx = g.n * g.c * g.h * g.w, ncol = g.n * g.c * g.kh * g.kw * g.oh * g.ow;
      const x = rand(nx), col = rand(ncol);
      const [c1, c2] = [new Float32Array(ncol).fill(7), new Float32Array(ncol).fill(-7)];
      nb.im2col({ ...g, x, col: c1 });
      jsBackend.im2col({ ...g, x, col: c2 });
      sameBits("im2col", c1, c2);
      const c64 = new Float64Array(ncol);
      jsBackend.im2col({ ...g, x: f64(x), col: c64 });
      assert.deepEqual(Array.from(c64), Array.from(c1, Number), "im2col float64 = float32 (a copy)");
      const [x1, x2] = [new Float32Array(nx).fill(3), new Float32Array(nx).fill(-3)];
      nb.col2im({ ...g, x: x1, col });
      jsBackend.col2im({ ...g, x: x2, col });
      sameBits("col2im", x1, x2);
      // the adjoint: <im2col(x), col> = <x, col2im(col)>
      const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => { let s = 0; for (let i = 0; i < a.length; i++) s += a[i] * b[i]; return s; };
      const x64 = new Float64Array(nx);
      jsBackend.col2im({ ...g, x: x64, col: f64(col) });
      const lhs = dot(c64, f64(col)), rhs = dot(f64(x), x64);
      assert.ok(Math.abs(lhs - rhs) <= 1e-9 * Math.max(1, Math.abs(lhs)), `adjoint: ${lhs} vs ${rhs}`);
    });
  }
});

describe("native im2col / col2im check their arguments", { skip }, () => {
  it("a short array or a zero stride is refused, nothing written out of bounds", () => {
    const dims = Float64Array.from([1, 2, 4, 4, 3, 3, 1, 1, 1, 1, 1, 1, 4, 4]);
    assert.throws(() => native!.im2col(new Float32Array(32), new Float32Array(2 * 9 * 16 - 1), dims), /im2col: col is too short/);
    assert.throws(() => native!.col2im(new Float32Array(2 * 9 * 16), new Float32Array(31), dims), /col2im: x is too short/);
    dims[6] = 0;
    assert.throws(() => native!.im2col(new Float32Array(32), new Float32Array(2 * 9 * 16), dims), /im2col: stride and dilation must be >= 1/);
  });
});

describe("conv bad input: one clear error each", () => {
  const t = (...s: number[]) => T.zeros(s);
  const cases: [string, () => unknown, RegExp][] = [
    ["input rank", () => conv2d(t(3, 8, 8), t(4, 3, 3, 3)), /conv2d: input must be 4-D \[N, C, H, W\], got \[3, 8, 8\]/],
    ["weight rank", () => conv2d(t(1, 3, 8, 8), t(4, 27)), /conv2d: weight must be 4-D \[O, C\/groups, kh, kw\], got \[4, 27\]/],
    ["channels not divisible by groups", () => conv2d(t(1, 3, 8, 8), t(4, 1, 3, 3), null, { groups: 2 }), /conv2d: input channels 3 \(input \[1, 3, 8, 8\]\) is not divisible by groups 2/],
    ["weight channels vs input", () => conv2d(t(1, 4, 8, 8), t(4, 3, 3, 3)), /conv2d: weight \[4, 3, 3, 3\] expects 3 input channels .* input \[1, 4, 8, 8\] has 4/],
    ["kernel larger than the padded input", () => conv2d(t(1, 1, 4, 4), t(1, 1, 3, 3), null, { padding: 0, dilation: 2 }),
      /conv2d: the kernel 5x5 \(weight \[1, 1, 3, 3\], dilation 2x2\) is larger than the padded input 4x4 \(input \[1, 1, 4, 4\], padding 0x0\)/],
    ["stride 0", () => conv2d(t(1, 1, 4, 4), t(1, 1, 3, 3), null, { stride: 0 }), /conv2d: stride must be an integer >= 1 or a pair of them, got 0/],
    ["negative padding", () => conv2d(t(1, 1, 4, 4), t(1, 1, 3, 3), null, { padding: [1, -1] }), /conv2d: padding must be an integer >= 0 or a pair of them, got \[1,-1\]/],
    ["bias size", () => conv2d(t(1, 1, 4, 4), t(2, 1, 3, 3), t(3)), /conv2d: bias must be \[2\] \(one per output channel\), got \[3\]/],
    ["float dtypes", () => conv2d(t(1, 1, 4, 4), T.zeros([1, 1, 3, 3], { dtype: "float64" })), /conv2d: dtypes differ/],
    ["conv_transpose2d weight channels", () => convTranspose2d(t(1, 3, 4, 4), t(2, 3, 3, 3)), /conv_transpose2d: weight \[2, 3, 3, 3\] expects 2 input channels .* input \[1, 3, 4, 4\] has 3/],
    ["conv_transpose2d float dtypes", () => convTranspose2d(t(1, 2, 4, 4), T.zeros([2, 1, 3, 3], { dtype: "float64" })), /conv_transpose2d: dtypes differ/],
    ["conv_transpose2d outputPadding", () => convTranspose2d(t(1, 2, 4, 4), t(2, 1, 3, 3), null, { stride: 2, outputPadding: 2 }),
      /conv_transpose2d: outputPadding 2x2 must be smaller than either stride 2x2 or dilation 1x1/],
    ["conv_transpose2d empty output", () => convTranspose2d(t(1, 2, 1, 1), t(2, 1, 1, 1), null, { padding: 1 }), /conv_transpose2d: the output would be -1x-1/],
  ];
  for (const [title, fn, re] of cases) it(title, () => assert.throws(fn, re));
});
