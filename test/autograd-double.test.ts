// Higher-order gradients: backward records its own graph under createGraph. The gradient penalty
// P(x) = ||df/dx||^2 with f = <v, op(x, params)> (WGAN-GP's term) is checked by float64 finite
// differences and against PyTorch's create_graph=True (scripts/golden/double_backward.py).

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as T from "../src/index.js";
import { loadGolden, maxRelError, toTensor } from "./helpers/golden.js";
import { forEachBackend } from "./helpers/backends.js";

const golden = loadGolden(new URL("./fixtures/double_backward.safetensors", import.meta.url).pathname);

/** A fixture case: params are passed after x in this order; graded are those with a reference dP/dparam. */
interface DoubleCase { name: string; op: string; params: string[]; graded: string[] }

type Op = (x: T.Tensor, ...params: T.Tensor[]) => T.Tensor;
const OPS: Record<string, Op> = {
  matmul: (x, W) => T.square(T.matmul(x, W)),
  tanh: (x) => T.tanh(x),
  softplus: (x) => T.softplus(x, 1, 20),
  layer_norm: (x, w, b) => T.layerNorm(x, w, b, 1e-5),
  softmax: (x) => T.softmax(x, -1),
  // beyond the golden set: the other kernels with a graph backward
  linear: (x, W) => T.linear(x, W),
  rms_norm: (x, w) => T.rmsNorm(x, w, 1e-6),
  log_softmax: (x) => T.logSoftmax(x, -1),
  sin: (x) => T.sin(x),
  cos: (x) => T.cos(x),
  // linear ops under a square, so that the penalty depends on x: their graph backwards are themselves
  rope: (x) => T.square(T.rope(x, 2)),
  embedding: (x) => T.square(T.embedding(T.tensor(new Int32Array([3, 0, 3, 1]), { shape: [2, 2] }), x)),
};

/** P = ||d<v, op(x, params)>/dx||^2, differentiable in x and params. */
const penalty = (op: Op, v: T.Tensor) => (x: T.Tensor, ...params: T.Tensor[]) => {
  const [gx] = T.grad((a) => T.sum(T.mul(v, op(a, ...params))), { createGraph: true })(x);
  return T.sum(T.mul(gx, gx));
};

forEachBackend("gradient of a gradient", () => {
  describe("float64 gradcheck of x -> ||df/dx||^2 (and of its parameters)", () => {
    const shapes: Record<string, [number[], number[][]]> = {
      matmul: [[3, 4], [[4, 5]]], tanh: [[3, 4], []], softplus: [[3, 4], []], layer_norm: [[3, 5], [[5], [5]]],
      softmax: [[3, 5], []], linear: [[2, 3, 4], [[5, 4]]], rms_norm: [[3, 5], [[5]]], log_softmax: [[3, 5], []],
      sin: [[3, 4], []], cos: [[3, 4], []], rope: [[1, 3, 2, 4], []], embedding: [[5, 3], []],
    };
    for (const [name, op] of Object.entries(OPS)) {
      it(name, () => {
        const gen = new T.RandomGenerator(21);
        const [xs, ps] = shapes[name];
        const scale = name === "softplus" ? 2 : 1;
        const x = T.randn(xs, { dtype: "float64", generator: gen, requiresGrad: true, std: scale });
        const params = ps.map((s) => T.randn(s, { dtype: "float64", generator: gen, requiresGrad: true }));
        const outShape = op(x.detach(), ...params.map((p) => p.detach())).shape;
        const v = T.randn(outShape, { dtype: "float64", generator: gen });
        const r = T.gradcheck(penalty(op, v), [x, ...params], { generator: new T.RandomGenerator(2) });
        assert.ok(r.maxRelError < 1e-5, `${name}: ${JSON.stringify(r)}`);
      });
    }
  });

  for (const dtype of ["float64", "float32"] as const) {
    describe(`PyTorch create_graph=True golden, ${dtype}`, () => {
      const tol = dtype === "float64" ? 1e-10 : 1e-5;
      for (const c of golden.cases as unknown as DoubleCase[]) {
        it(c.name, () => {
          const t = (k: string) => toTensor(golden.tensors[`${c.name}.${k}`], dtype, true);
          const x = t("x"), params = c.params.map(t);
          const v = toTensor(golden.tensors[`${c.name}.v`], dtype);
          const P = penalty(OPS[c.op], v)(x, ...params);
          assert.ok(maxRelError(P.toTypedArray(), golden.tensors[`${c.name}.P`].data as Float64Array) <= tol, "P");
          P.backward();
          const got: [string, T.Tensor | null][] = [["x", x.grad], ...c.graded.map((n): [string, T.Tensor | null] => [n, params[c.params.indexOf(n)].grad])];
          for (const [k, g] of got) {
            const err = maxRelError(g!.toTypedArray(), golden.tensors[`${c.name}.d${k}`].data as Float64Array);
            assert.ok(err <= tol, `${c.name} d${k}: relative error ${err}`);
          }
        });
      }
    });
  }
});

describe("createGraph: walks, errors and the plain path", () => {
  it("x.backward({createGraph}) leaves a differentiable x.grad: d/dx sum(d/dx sum(x^3)) = 6x", () => {
    const x = T.randn([5], { dtype: "float64", generator: new T.RandomGenerator(3), requiresGrad: true });
    T.sum(T.powScalar(x, 3)).backward(undefined, { createGraph: true });
    const g = x.grad!;
    assert.ok(g.requiresGrad);
    x.grad = null;
    T.sum(g).backward();
    const xs = x.toTypedArray(), got = x.grad!.toTypedArray();
    xs.forEach((xi, i) => assert.ok(Math.abs(got[i] - 6 * xi) <= 1e-12 * Math.abs(6 * xi), `element ${i}`));
  });

  it("an op without a graph backward throws a clear error instead of a silent wrong gradient", () => {
    const x = T.randn([2, 3], { dtype: "float64", generator: new T.RandomGenerator(4) });
    assert.throws(() => T.grad((a) => T.sum(T.gelu(a)), { createGraph: true })(x), /double backward is not implemented for gelu_erf/);
    const ids = T.tensor(new Int32Array([0, 2]), { shape: [2] });
    assert.throws(() => T.grad((a) => T.crossEntropy(a, ids), { createGraph: true })(x), /double backward is not implemented for cross_entropy/);
  });

  it("without createGraph the gradient has no graph and the walk frees the graph", () => {
    const x = T.randn([4], { dtype: "float64", generator: new T.RandomGenerator(5), requiresGrad: true });
    const y = T.sum(T.tanh(x));
    y.backward();
    assert.equal(x.grad!.requiresGrad, false);
    assert.throws(() => y.backward(), /second time/);
  });

  it("float32 createGraph gradients are not recycled by later work (storage pool)", () => {
    const gen = new T.RandomGenerator(6);
    const x = T.randn([64, 32], { generator: gen, requiresGrad: true });
    const W = T.randn([32, 32], { generator: gen, requiresGrad: true });
    const [gx] = T.grad((a) => T.sum(T.tanh(T.matmul(a, W))), { createGraph: true })(x);
    const before = gx.toTypedArray();
    for (let i = 0; i < 3; i++) T.sum(T.tanh(T.matmul(T.randn([64, 32], { generator: gen, requiresGrad: true }), W))).backward();
    assert.deepEqual(Array.from(gx.toTypedArray()), Array.from(before));
    T.sum(T.mul(gx, gx)).backward();  // the recorded graph is still intact
    assert.ok(W.grad && x.grad);
  });
});
