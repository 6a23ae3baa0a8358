// The kernel table (src/backend/kernels.ts) drives these tests, so that a kernel added to it is tested
// with no edit here: every kernel has a native float32 implementation; every unary op agrees native vs
// the js reference run in float64 on the same float32 inputs (awkward sizes, every ISA level), forward
// and backward, and its js forward and backward agree with float64 finite differences through the
// differentiable op ops.unary; every binary and reduce op agrees native vs js; calls whose dtype has no
// native kernel (float64, mixed, Int32Array) or that are tiny run the js twin.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import * as T from "../src/index.js";
import type { Backend } from "../src/backend/backend.js";
import { jsBackend } from "../src/backend/js/index.js";
import { KERNELS, type KernelName } from "../src/backend/kernels.js";
import { BINARY_OPS, REDUCE_OPS, UNARY_OPS, type UnaryOp, type UnaryOpInfo } from "../src/backend/op-table.js";
import { makeNativeBackend } from "../src/backend/native/index.js";
import { close, f64, onEveryLevel, rand, sameBits, skip } from "./helpers/native.js";

const nb = makeNativeBackend({ tinyToJs: false }) as Backend;  // every float32 call native, even tiny ones
const js = jsBackend;
const EW = 1e-6, RED = 1e-5;
const SIZES = [1, 7, 33, 1000, 70000];
const unaryOps = Object.keys(UNARY_OPS) as UnaryOp[];
const info = (op: UnaryOp): UnaryOpInfo => UNARY_OPS[op];

describe("kernel table: native vs js", { skip }, () => {
  it("every kernel of the table has a native float32 implementation", () => {
    for (const k of Object.keys(KERNELS) as KernelName[]) assert.notEqual(nb[k], js[k], `${k} runs the js twin`);
  });

  onEveryLevel("every unary op, forward and backward", () => {
    for (const op of unaryOps) {
      const { domain: [lo, hi], params = {} } = info(op);
      for (const n of SIZES) {
        const x = rand(n, lo, hi), gy = rand(n);
        const yRef = new Float64Array(n), y = new Float32Array(n);
        js.unary(op, f64(x), yRef, n, params);
        nb.unary(op, x, y, n, params);
        close(`${op} n=${n}`, y, yRef, EW);
        const yf = Float32Array.from(yRef);
        const gRef = new Float64Array(n), g = new Float32Array(n);
        js.unaryBackward(op, f64(x), f64(yf), f64(gy), gRef, n, params);
        nb.unaryBackward(op, x, yf, gy, g, n, params);
        close(`${op}' n=${n}`, g, gRef, EW);
      }
    }
  });

  onEveryLevel("every binary op (row broadcast, 3 x 1001) and reduce op (5 x 333 x 7)", () => {
    for (const op of BINARY_OPS) {
      const a = rand(3 * 1001, 0.1, 3), b = rand(1001, 0.1, 3), out = new Float32Array(3 * 1001), ref = new Float64Array(3 * 1001);
      nb.binary(op, a, 0, [1001, 1], b, 0, [0, 1], out, [3, 1001]);
      js.binary(op, f64(a), 0, [1001, 1], f64(b), 0, [0, 1], ref, [3, 1001]);
      close(op, out, ref, EW);
    }
    for (const op of REDUCE_OPS) {
      const x = rand(5 * 333 * 7), out = new Float32Array(35), ref = new Float64Array(35);
      nb.reduce(op, x, 5, 333, 7, out);
      js.reduce(op, f64(x), 5, 333, 7, ref);
      close(op, out, ref, RED);
    }
  });

  it("calls with no native kernel for their dtype, or tiny ones, run the js twin", () => {
    const native = makeNativeBackend() as Backend;  // with the tiny cut-offs
    const x = rand(12, 0.1, 3);
    const viaJs = (b: Backend, xs: Float32Array | Float64Array, y: Float32Array | Float64Array, n: number) => { b.unary("exp", xs, y, n, {}); return y; };
    // float64: the js twin, bit for bit
    assert.deepEqual(viaJs(native, f64(x), new Float64Array(12), 12), viaJs(js, f64(x), new Float64Array(12), 12));
    // mixed float32 in, float64 out: js (the native kernel would reject it)
    assert.deepEqual(viaJs(native, x, new Float64Array(12), 12), viaJs(js, x, new Float64Array(12), 12));
    // a tiny float32 call: js computes in float32 storage from Math.exp, bit for bit
    sameBits("tiny exp", viaJs(native, x, new Float32Array(3), 3) as Float32Array, viaJs(js, x, new Float32Array(3), 3) as Float32Array);
    // an Int32Array copy (no float dtype) goes to js
    const src = Int32Array.from({ length: 200 }, (_, i) => i), dst = new Int32Array(200);
    native.stridedCopy(src, 0, [1], dst, 0, [1], [200]);
    assert.deepEqual(dst, src);
  });
});

describe("kernel table: float64 gradcheck of every unary op through ops.unary (js backend)", () => {
  const gen = new T.RandomGenerator(21);
  for (const op of unaryOps) {
    it(op, () => {
      const { domain: [lo, hi], params } = info(op);
      const prev = T.backend().name;
      T.setBackend("js");
      try {
        const x = T.rand([3, 5], { dtype: "float64", generator: gen, low: lo, high: hi, requiresGrad: true });
        T.gradcheck((a) => T.unary(op, a, params), [x], { generator: new T.RandomGenerator(5) });
      } finally { T.setBackend(prev); }
    });
  }
});
