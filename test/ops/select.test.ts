// argmax, topk, gather, scatterAdd and clone: hand-checked results (ties and NaN as torch), clear
// errors, and float64 gradchecks (gather and scatterAdd also twice: each is the other's backward).

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as T from "../../src/index.js";

const ids = (v: number[][]) => T.tensor(v, { dtype: "int32" });

describe("argmax", () => {
  const x = T.tensor([[1, 5, 5, 2], [7, -1, 7, 0], [0, 0, 0, 0]]);
  it("along a dim: the first of equal maxima, as torch", () => {
    assert.deepEqual(T.argmax(x, 1).toArray(), [1, 0, 0]);
    assert.deepEqual(x.argmax(0).toArray(), [1, 0, 1, 0]);
    assert.deepEqual(T.argmax(x, -1, true).shape, [3, 1]);
    assert.equal(T.argmax(x, 1).dtype, "int32");
  });
  it("over all elements without dim; NaN counts as the largest", () => {
    assert.equal(T.argmax(x).item(), 4);
    assert.equal(T.argmax(T.tensor([1, NaN, 3, NaN])).item(), 1);
    assert.deepEqual(T.argmax(x, undefined, true).shape, [1, 1]);
  });
  it("an empty dimension is an error", () => {
    assert.throws(() => T.argmax(T.zeros([3, 0]), 1), /argmax: dimension 1 of \[3, 0\] is empty/);
  });
});

describe("topk", () => {
  const x = T.tensor([[3, 1, 4, 1, 5, 9, 2, 6], [2, 7, 1, 8, 2, 8, 1, 8]]);
  it("the k largest in order, equal values in input order", () => {
    const { values, indices } = T.topk(x, 3);
    assert.deepEqual(values.toArray(), [[9, 6, 5], [8, 8, 8]]);
    assert.deepEqual(indices.toArray(), [[5, 7, 4], [3, 5, 7]]);
  });
  it("smallest, unsorted (input order), along dim 0", () => {
    assert.deepEqual(T.topk(x, 2, 1, { largest: false }).indices.toArray(), [[1, 3], [2, 6]]);
    assert.deepEqual(x.topk(3, -1, { sorted: false }).indices.toArray(), [[4, 5, 7], [3, 5, 7]]);
    assert.deepEqual(T.topk(x, 1, 0).values.toArray(), [[3, 7, 4, 8, 5, 9, 2, 8]]);
  });
  it("NaN is the largest; k out of range is an error", () => {
    assert.deepEqual(T.topk(T.tensor([1, NaN, 3]), 2).indices.toArray(), [1, 2]);
    assert.throws(() => T.topk(x, 9), /topk: k must be an integer in \[0, 8\]/);
  });
  it("values are differentiable (gradient to the chosen elements)", () => {
    const v = T.tensor([[0.3, -1, 2.5, 0.7]], { dtype: "float64", requiresGrad: true });
    T.sum(T.mul(T.topk(v, 2).values, T.tensor([[10, 1]], { dtype: "float64" }))).backward();
    assert.deepEqual(v.grad!.toArray(), [[0, 0, 10, 1]]);
    T.gradcheck((a) => T.topk(a, 3, 1).values, [T.randn([3, 5], { dtype: "float64", requiresGrad: true, generator: new T.RandomGenerator(1) })]);
  });
});

describe("gather and scatterAdd", () => {
  it("gather reads x[i][index[i][j]] along dim 1 and x[index[i][j]][j] along dim 0 (torch's examples)", () => {
    const t = T.tensor([[1, 2], [3, 4]]);
    assert.deepEqual(T.gather(t, 1, ids([[0, 0], [1, 0]])).toArray(), [[1, 1], [4, 3]]);
    assert.deepEqual(t.gather(0, ids([[1, 0], [0, 0], [1, 1]]).narrow(1, 0, 1)).toArray(), [[3], [1], [3]]);
  });
  it("scatterAdd adds src at the indexed places, repeats accumulate", () => {
    const out = T.scatterAdd(T.ones([2, 3]), 1, ids([[0, 0, 2], [1, 1, 1]]), T.tensor([[1, 2, 3], [4, 5, 6]]));
    assert.deepEqual(out.toArray(), [[4, 1, 4], [1, 16, 1]]);
  });
  it("bad indices and shapes are clear errors", () => {
    const t = T.zeros([2, 3]);
    assert.throws(() => T.gather(t, 1, ids([[3]])), /gather: index 3 is out of range for dimension 1 of size 3/);
    assert.throws(() => T.gather(t, 1, ids([[-1]])), /index -1 is out of range/);
    assert.throws(() => T.gather(t, 0, T.tensor([[0]])), /index must be int32, got float32/);
    assert.throws(() => T.gather(t, 0, T.tensor([0], { dtype: "int32" })), /as many dimensions as the input/);
    assert.throws(() => T.gather(t, 0, ids([[0, 0, 0, 0]])), /larger than the input \[2, 3\] in dimension 1/);
  });
  it("float64 gradcheck, first and second order", () => {
    const gen = new T.RandomGenerator(2);
    const x = T.randn([3, 4], { dtype: "float64", requiresGrad: true, generator: gen });
    const index = ids([[3, 0, 3], [1, 1, 2], [0, 2, 2]]);
    T.gradcheck((a) => T.gather(a, 1, index), [x]);
    const src = T.randn([3, 3], { dtype: "float64", requiresGrad: true, generator: gen });
    T.gradcheck((a, s) => T.scatterAdd(a, 1, index, s), [x, src]);
    // d/dx of <grad of sum(gather(x)^2), w>: exercises gather's backward (a scatterAdd) with a graph
    const w = T.randn([3, 4], { dtype: "float64", generator: gen });
    T.gradcheck((a) => {
      const [g] = T.grad((b) => T.sum(T.square(T.gather(b, 1, index))), { createGraph: true })(a);
      return T.sum(T.mul(g, w));
    }, [x]);
  });
});

describe("clone", () => {
  it("copies into new storage (also a strided view) and passes gradients through", () => {
    const x = T.tensor([[1, 2, 3], [4, 5, 6]], { dtype: "float64", requiresGrad: true });
    const c = T.clone(x.transpose(0, 1));
    assert.deepEqual(c.toArray(), [[1, 4], [2, 5], [3, 6]]);
    assert.notEqual(c.data, x.data);
    assert.ok(c.isContiguous);
    T.sum(T.mul(c.clone(), 3)).backward();
    assert.deepEqual(x.grad!.toArray(), [[3, 3, 3], [3, 3, 3]]);
    assert.deepEqual(T.clone(T.tensor([7, 8], { dtype: "int32" })).toArray(), [7, 8]);
  });
});

describe("norms on an empty normalized dimension", () => {
  it("layerNorm / rmsNorm on [4, 0] say so; softmax returns the empty result as torch", () => {
    assert.throws(() => T.layerNorm(T.zeros([4, 0])), /layer_norm: the normalized dimension \(the last axis of \[4, 0\]\) is 0/);
    assert.throws(() => T.rmsNorm(T.zeros([4, 0])), /rms_norm: the normalized dimension/);
    assert.deepEqual(T.softmax(T.zeros([4, 0])).shape, [4, 0]);
    assert.deepEqual(T.layerNorm(T.zeros([0, 3])).shape, [0, 3]);
  });
});
