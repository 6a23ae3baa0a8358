// Group norm, nearest / bilinear upsampling and average pooling: PyTorch goldens, float64 gradcheck of
// each op and of the gradient penalty through it; the WGAN-GP penalty of two small conv critics and its
// gradient against PyTorch's create_graph=True (scripts/golden/conv.py); one clear error per bad input.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import * as T from "../../src/index.js";
import { avgPool2d, conv2d, convTranspose2d, groupNorm, upsampleBilinear2d, upsampleNearest2d } from "../../src/ops/index.js";
import { forEachBackend } from "../helpers/backends.js";
import { loadGolden, maxRelError, toTensor } from "../helpers/golden.js";
import { goldenSuite } from "./conv-golden.js";

goldenSuite("image op goldens", ["group_norm", "upsample_nearest2d", "upsample_bilinear2d", "avg_pool2d"]);

type Op = (x: T.Tensor, ...p: T.Tensor[]) => T.Tensor;
const OPS: [string, number[], number[][], Op][] = [
  ["groupNorm affine", [2, 4, 2, 3], [[4], [4]], (x, w, b) => groupNorm(x, 2, w, b)],
  ["groupNorm plain, 3-D", [2, 6, 3], [], (x) => groupNorm(x, 3)],
  ["upsampleNearest2d [2, 3]", [1, 2, 2, 3], [], (x) => upsampleNearest2d(x, [2, 3])],
  ["upsampleBilinear2d scale 1.5", [1, 2, 3, 4], [], (x) => upsampleBilinear2d(x, { scale: 1.5 })],
  ["upsampleBilinear2d size, alignCorners", [1, 1, 3, 3], [], (x) => upsampleBilinear2d(x, { size: [5, 4], alignCorners: true })],
  ["avgPool2d 3, stride 2, padding 1", [1, 2, 5, 4], [], (x) => avgPool2d(x, 3, 2, 1)],
  ["avgPool2d [2, 1]", [2, 1, 4, 3], [], (x) => avgPool2d(x, [2, 1])],
];

// float64 runs the js kernels on every backend: once is enough
describe("image ops float64 gradcheck", () => {
  for (const [name, xs, ps, op] of OPS) {
    const make = (seed: number) => {
      const gen = new T.RandomGenerator(seed);
      const r = (s: number[]) => T.randn(s, { dtype: "float64", generator: gen, requiresGrad: true });
      return { gen, xs: [r(xs), ...ps.map(r)] };
    };
    it(name, () => {
      const { gen, xs: inputs } = make(3);
      // gradcheck throws on an element off by more than 1e-7 + 1e-5 |numeric|
      assert.doesNotThrow(() => T.gradcheck(op, inputs, { generator: gen }));
    });
    it(`${name}: gradient of the gradient penalty`, () => {
      const { gen, xs: inputs } = make(4);
      const v = T.randn(op(...(inputs.map((t) => t.detach()) as [T.Tensor])).shape, { dtype: "float64", generator: gen });
      // P = ||d<v, op(x)^2>/dx||^2: the square makes the gradient depend on x for the linear ops
      const P = (x: T.Tensor, ...p: T.Tensor[]) => {
        const [gx] = T.grad((a) => T.sum(T.mul(v, T.square(op(a, ...p)))), { createGraph: true })(x);
        return T.sum(T.square(gx));
      };
      // gradcheck throws on an element off by more than 1e-7 + 1e-5 |numeric|
      assert.doesNotThrow(() => T.gradcheck(P, inputs, { generator: gen }));
    });
  }
});

const penalty = loadGolden(new URL("../fixtures/conv/penalty.safetensors", import.meta.url).pathname);
interface PenaltyCase { name: string; net: string; params: string[]; graded: string[] }

// The critics of scripts/golden/conv.py: per-sample scores D(x) [N].
const perSample = (h: T.Tensor) => T.sum(h, [1, 2, 3]);
const NETS: Record<string, (x: T.Tensor, ...p: T.Tensor[]) => T.Tensor> = {
  critic: (x, w1, b1, gw, gb, w2, b2) => {
    let h = conv2d(x, w1, b1, { padding: 1 });
    h = avgPool2d(T.silu(groupNorm(h, 3, gw, gb, 1e-5)), 2);
    return perSample(conv2d(h, w2, b2, { stride: 2, padding: 1 }));
  },
  critic_up: (x, wt, bt, w2) => {
    let h = T.silu(convTranspose2d(x, wt, bt, { stride: 2, padding: 1, outputPadding: 1 }));
    h = upsampleBilinear2d(h, { size: [5, 5] });
    h = groupNorm(upsampleNearest2d(h, 2), 1, null, null, 1e-5);
    return perSample(conv2d(h, w2, null, { groups: 3 }));
  },
};

/** WGAN-GP (Gulrajani et al. 2017, eq. 3): mean_n (||grad_x D(x)_n||_2 - 1)^2. */
function gradientPenalty(net: (x: T.Tensor, ...p: T.Tensor[]) => T.Tensor, x: T.Tensor, params: T.Tensor[]): T.Tensor {
  const [gx] = T.grad((a) => T.sum(net(a, ...params)), { createGraph: true })(x);
  const norms = T.sqrt(T.sum(T.square(gx), [1, 2, 3]));
  return T.mean(T.square(T.sub(norms, 1)));
}

forEachBackend("WGAN-GP gradient penalty through conv critics vs PyTorch create_graph=True", () => {
  for (const dtype of ["float64", "float32"] as const) {
    describe(dtype, () => {
      const tol = dtype === "float64" ? 1e-10 : 1e-5;
      for (const c of penalty.cases as unknown as PenaltyCase[]) {
        it(c.name, () => {
          const t = (k: string) => toTensor(penalty.tensors[`${c.name}.${k}`], dtype, true);
          const x = t("x"), params = c.params.map(t);
          const GP = gradientPenalty(NETS[c.net], x, params);
          const want = (k: string) => penalty.tensors[`${c.name}.${k}`].data as Float64Array;
          assert.ok(maxRelError(GP.toTypedArray(), want("GP")) <= tol, `GP ${GP.item()} vs ${want("GP")[0]}`);
          GP.backward();
          const got: [string, T.Tensor | null][] = [["x", x.grad], ...c.graded.map((n): [string, T.Tensor | null] => [n, params[c.params.indexOf(n)].grad])];
          for (const [k, g] of got) {
            const err = maxRelError(g!.toTypedArray(), want(`d${k}`));
            assert.ok(err <= tol, `d${k}: relative error ${err}`);
          }
        });
      }
    });
  }
});

describe("image ops bad input: one clear error each", () => {
  const t = (...s: number[]) => T.zeros(s);
  const cases: [string, () => unknown, RegExp][] = [
    ["groupNorm groups", () => groupNorm(t(2, 6, 4, 4), 4), /group_norm: groups must be a positive integer dividing the 6 channels of input \[2, 6, 4, 4\], got 4/],
    ["groupNorm rank", () => groupNorm(t(6), 2), /group_norm: input must be \[N, C, \*\], got \[6\]/],
    ["groupNorm weight", () => groupNorm(t(2, 6, 4), 3, t(4)), /group_norm: weight must be \[6\] \(one per channel\), got \[4\]/],
    ["upsampleNearest2d rank", () => upsampleNearest2d(t(3, 4, 4), 2), /upsample_nearest2d: input must be 4-D \[N, C, H, W\], got \[3, 4, 4\]/],
    ["upsampleNearest2d dtype", () => upsampleNearest2d(T.zeros([1, 1, 2, 2], { dtype: "int32" }), 2), /upsample_nearest2d: expected float tensors, got int32 \[1, 1, 2, 2\]/],
    ["upsampleNearest2d scale", () => upsampleNearest2d(t(1, 1, 4, 4), 1.5), /upsample_nearest2d: scale must be an integer >= 1 or a pair of them, got 1.5/],
    ["upsampleBilinear2d size and scale", () => upsampleBilinear2d(t(1, 1, 4, 4), { size: [8, 8], scale: 2 }), /upsample_bilinear2d: give exactly one of size and scale/],
    ["upsampleBilinear2d scale", () => upsampleBilinear2d(t(1, 1, 4, 4), { scale: 0 }), /upsample_bilinear2d: scale must be a positive number or a pair of them, got 0/],
    ["avgPool2d stride 0", () => avgPool2d(t(1, 1, 4, 4), 2, 0), /avg_pool2d: stride must be an integer >= 1 or a pair of them, got 0/],
    ["avgPool2d padding", () => avgPool2d(t(1, 1, 4, 4), 2, 1, 2), /avg_pool2d: padding 2x2 must be at most half the kernel 2x2/],
    ["avgPool2d kernel larger than the padded input", () => avgPool2d(t(1, 1, 3, 3), 5, 1, 0), /avg_pool2d: the kernel 5x5 is larger than the padded input 3x3 \(input \[1, 1, 3, 3\], padding 0x0\)/],
  ];
  for (const [title, fn, re] of cases) it(title, () => assert.throws(fn, re));
});
