// groupedLinear (the experts of an MoE layer in one kernel call): forward and gradients equal the
// per-group Linear layers on row slices (linear itself is checked against PyTorch in ops.test.ts),
// float64 gradcheck, empty groups, frozen experts, the native kernel's bounds, and bad input.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as T from "../../src/index.js";
import { groupedLinear } from "../../src/ops/grouped.js";
import { forEachBackend } from "../helpers/backends.js";
import { native } from "../../src/backend/native/addon.js";

const g = new T.RandomGenerator(5);
const randn = (shape: number[], dtype: "float32" | "float64" = "float32") => T.randn(shape, { generator: g, dtype }).requiresGrad_();

function reference(x: T.Tensor, ws: T.Tensor[], off: Int32Array): T.Tensor {
  const parts = ws.map((w, i) => T.linear(T.narrow(x, 0, off[i], off[i + 1] - off[i]), w));
  return T.cat(parts, 0);
}

function close(a: T.Tensor | null, b: T.Tensor | null, what: string, tol = 1e-5): void {
  assert.ok(a && b, what);
  const x = a.toTypedArray(), y = b.toTypedArray();
  let worst = 0, scale = 1e-30;
  for (let i = 0; i < y.length; i++) { worst = Math.max(worst, Math.abs(x[i] - y[i])); scale = Math.max(scale, Math.abs(y[i])); }
  assert.ok(worst <= tol * scale, `${what}: max error ${worst} vs max |want| ${scale}`);
}

forEachBackend("groupedLinear", () => {
  for (const off of [[0, 3, 3, 40, 41, 64], [0, 0, 64], [0, 13]]) {
    it(`equals per-group linear, forward and every gradient (offsets ${off.join(",")})`, () => {
      const G = off.length - 1, N = off[G], offsets = Int32Array.from(off);
      const x = randn([N, 24]), ws = Array.from({ length: G }, () => randn([36, 24])), dy = T.randn([N, 36], { generator: g });
      const y = groupedLinear(x, ws, offsets);
      y.backward(dy);
      const [gx, gws] = [x.grad, ws.map((w) => w.grad)];
      x.grad = null; for (const w of ws) w.grad = null;
      const r = reference(x, ws, offsets);
      r.backward(dy);
      close(y, r, "y");
      close(gx, x.grad, "grad x");
      ws.forEach((w, i) => {
        // an expert with no rows gets a zero gradient (the reference's is null: no path)
        if (off[i + 1] === off[i]) assert.ok(gws[i]!.toTypedArray().every((v) => v === 0), `grad w${i} of an empty group`);
        else close(gws[i], w.grad, `grad w${i}`);
      });
    });
  }

  it("passes float64 gradcheck", () => {
    const off = Int32Array.of(0, 2, 2, 5, 7);
    const x = randn([7, 3], "float64"), ws = Array.from({ length: 4 }, () => randn([4, 3], "float64"));
    const r = T.gradcheck((xx, ...w) => groupedLinear(xx, w, off), [x, ...ws]);
    assert.ok(r.maxRelError < 1e-6, JSON.stringify(r));  // gradcheck itself throws past its tolerance
  });

  it("a frozen expert gets no gradient; x is not saved when every expert is frozen", () => {
    const off = Int32Array.of(0, 5, 9);
    const x = randn([9, 4]), w0 = randn([3, 4]), w1 = T.randn([3, 4], { generator: g });
    groupedLinear(x, [w0, w1], off).sum().backward();
    assert.ok(w0.grad && !w1.grad && x.grad);
    // saved for backward: the two weights (3 x 4 floats each), plus x (9 x 4) only when a weight trains
    const savedBy = (trainW: boolean) => {
      const base = T.memoryStats().savedBytes;
      const ws = [T.randn([3, 4], { generator: g }), T.randn([3, 4], { generator: g })];
      if (trainW) ws[0].requiresGrad_();
      const y = groupedLinear(T.randn([9, 4], { generator: g }).requiresGrad_(), ws, off);
      const bytes = T.memoryStats().savedBytes - base;
      y.sum().backward();
      return bytes;
    };
    assert.equal(savedBy(false), 2 * 12 * 4);
    assert.equal(savedBy(true), (2 * 12 + 36) * 4);
  });

  it("bad input: one clear error each", () => {
    const x = randn([6, 4]), w = randn([3, 4]);
    assert.throws(() => groupedLinear(x, [], Int32Array.of(0)), /needs at least one weight/);
    assert.throws(() => groupedLinear(x, [w, randn([3, 5])], Int32Array.of(0, 3, 6)), /do not fit \(every weight \[out, in\], input \[N, in\]\)/);
    assert.throws(() => groupedLinear(x, [w, w], Int32Array.of(0, 4, 3)), /offsets must be an Int32Array of 3 non-decreasing values from 0 to 6, got \[0, 4, 3\]/);
    assert.throws(() => groupedLinear(x, [w], Int32Array.of(0, 5)), /from 0 to 6/);
  });
});

describe("gemmGrouped native entry", { skip: !native }, () => {
  it("refuses short arrays and bad offsets instead of reading out of bounds", () => {
    const a = new Float32Array(10 * 4), c = new Float32Array(10 * 3), w = new Float32Array(12);
    assert.throws(() => native!.gemmGrouped(0, Int32Array.of(0, 11), 0, 3, 4, a, 4, [w], 4, true, c, 3), /gemmGrouped: a is too short/);
    assert.throws(() => native!.gemmGrouped(0, Int32Array.of(0, 6, 5), 0, 3, 4, a, 4, [w, w], 4, true, c, 3), /non-decreasing/);
    assert.throws(() => native!.gemmGrouped(0, Int32Array.of(0, 6, 10), 0, 3, 4, a, 4, [w], 4, true, c, 3), /bs must be an array of 2 Float32Arrays/);
    assert.throws(() => native!.gemmGrouped(0, Int32Array.of(0, 6), 0, 3, 4, a, 4, [new Float32Array(11)], 4, true, c, 3), /bs\[0\] is too short/);
  });
});
