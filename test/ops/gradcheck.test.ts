// Float64 finite-difference gradcheck of every differentiable op, on the inputs of the golden cases
// (they are drawn away from kinks, so central differences are valid), plus ops with no golden case.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as T from "../../src/index.js";
import { loadGolden, runCase, toTensor } from "../helpers/golden.js";

const golden = loadGolden(new URL("../fixtures/ops.safetensors", import.meta.url).pathname);

describe("float64 gradcheck of every golden op", () => {
  for (const c of golden.cases) {
    it(c.name, () => {
      const xs = c.inputs.map((_, i) => toTensor(golden.tensors[`${c.name}.in${i}`], "float64", true));
      if (!xs.some((x) => x.requiresGrad)) return;
      // Multi-output ops are checked through the concatenation of their outputs.
      const f = (...ins: T.Tensor[]) => {
        const outs = runCase(c, ins);
        return outs.length === 1 ? outs[0] : T.cat(outs.map((o) => T.flatten(o)), 0);
      };
      const r = T.gradcheck(f, xs, { generator: new T.RandomGenerator(7) });
      assert.ok(r.maxAbsError < 1e-6, `${c.name}: max abs error ${r.maxAbsError}`);
    });
  }
});

describe("float64 gradcheck of ops without a golden case", () => {
  const gen = new T.RandomGenerator(11);
  const x = () => T.randn([3, 4], { dtype: "float64", generator: gen, requiresGrad: true });
  it("dropout (same seed each evaluation, so the mask is fixed)", () => {
    T.gradcheck((a) => T.dropout(a, 0.3, true, new T.RandomGenerator(5)), [x()]);
  });
  it("maximum", () => {
    T.gradcheck((a, b) => T.maximum(a, b), [x(), x()]);
  });
  it("square", () => {
    T.gradcheck((a) => T.square(a), [x()]);
  });
  it("cast float64 -> float32 -> float64 round trip passes the gradient", () => {
    const a = x();
    const y = T.sum(T.mul(a.to("float32").to("float64"), 3));
    y.backward();
    assert.deepEqual(Array.from(a.grad!.toTypedArray()), new Array(12).fill(3));
  });
  it("chained views + matmul + softmax + cross-entropy", () => {
    const ids = T.tensor(new Int32Array([1, 0, 3]), { shape: [3] });
    T.gradcheck((a, w) => T.crossEntropy(T.softmax(T.matmul(a.transpose(0, 1).narrow(0, 1, 3), w), -1), ids, { labelSmoothing: 0.05 }), [x(), x()]);
  });
});
