// Autograd's explicit context: gradients nobody needs are not computed (a frozen LoRA base weight runs
// no weight-gradient GEMM, counted at the backend), and the input gradient does not change by a bit.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as T from "../src/index.js";
import type { Backend, GemmArgs } from "../src/backend/backend.js";
import { forEachBackend } from "./helpers/backends.js";

/** Run fn with the active backend's `name` kernel wrapped by spy (restored afterwards). */
type Kernel = "gemm" | "layerNormBackward" | "rmsNormBackward";
function spying<K extends Kernel, R>(name: K, spy: (...args: Parameters<Backend[K]>) => void, fn: () => R): R {
  const b = T.backend();
  const orig = b[name];
  b[name] = ((...args: Parameters<Backend[K]>) => { spy(...args); return (orig as (...a: unknown[]) => unknown).apply(b, args); }) as Backend[K];
  try {
    return fn();
  } finally {
    b[name] = orig;
  }
}

const bits = (t: T.Tensor | null) => Array.from(new Uint8Array(t!.toTypedArray().buffer));

forEachBackend("frozen weights cost no weight-gradient work", () => {
  const [rows, inF, out, r] = [6, 16, 12, 4];
  // LoRA (Hu et al. 2021, eq. 3): h = x W^T + (x A^T) B^T s with W frozen, A and B trained.
  const setup = (frozen: boolean) => {
    const gen = new T.RandomGenerator(5);
    const x = T.randn([2, rows / 2, inF], { generator: gen, requiresGrad: true });
    const W = T.randn([out, inF], { generator: gen, requiresGrad: !frozen });
    const A = T.randn([r, inF], { generator: gen, requiresGrad: true });
    const B = T.randn([out, r], { generator: gen, requiresGrad: true });
    const bias = T.randn([out], { generator: gen, requiresGrad: !frozen });
    const h = T.add(T.linear(x, W, bias), T.mul(T.linear(T.linear(x, A), B), 0.5));
    const loss = T.sum(T.mul(T.tanh(h), h));
    const gemms: GemmArgs[] = [];
    spying("gemm", (a) => { gemms.push(a); }, () => loss.backward());
    return { x, W, A, B, gemms };
  };
  const isWeightGrad = (g: GemmArgs) => g.transA && g.m === out && g.n === inF && g.k === rows;

  it("linear: no gW GEMM for a frozen weight; x, A, B gradients bitwise unchanged", () => {
    const train = setup(false), lora = setup(true);
    assert.equal(train.gemms.filter(isWeightGrad).length, 1);
    assert.equal(lora.gemms.filter(isWeightGrad).length, 0);
    assert.equal(lora.gemms.length, train.gemms.length - 1);
    assert.equal(lora.W.grad, null);
    for (const k of ["x", "A", "B"] as const) assert.deepEqual(bits(lora[k].grad), bits(train[k].grad), `${k}.grad`);
  });

  it("matmul: no GEMM for the operand that needs no gradient", () => {
    const run = (frozen: boolean) => {
      const gen = new T.RandomGenerator(6);
      const x = T.randn([rows, inF], { generator: gen, requiresGrad: true });
      const W = T.randn([inF, out], { generator: gen, requiresGrad: !frozen });
      const y = T.sum(T.tanh(T.matmul(x, W)));
      let n = 0;
      spying("gemm", () => { n++; }, () => y.backward());
      return { n, gx: x.grad };
    };
    const a = run(false), b = run(true);
    assert.equal(a.n, 2);
    assert.equal(b.n, 1);
    assert.deepEqual(bits(b.gx), bits(a.gx));
  });

  it("layer_norm / rms_norm: frozen weight and bias get no gw / gb buffers", () => {
    const gen = new T.RandomGenerator(7);
    const x = T.randn([rows, inF], { generator: gen, requiresGrad: true });
    const w = T.randn([inF], { generator: gen }), b = T.randn([inF], { generator: gen });
    const seen: unknown[] = [];
    spying("layerNormBackward", (...a) => { seen.push(a[8], a[9]); }, () => T.sum(T.tanh(T.layerNorm(x, w, b))).backward());
    spying("rmsNormBackward", (...a) => { seen.push(a[7]); }, () => T.sum(T.tanh(T.rmsNorm(x, w))).backward());
    assert.deepEqual(seen, [null, null, null]);
  });

  it("attention: only the GEMMs of the inputs that need a gradient; dq bitwise unchanged", () => {
    const run = (all: boolean) => {
      const gen = new T.RandomGenerator(9);
      const q = T.randn([1, 2, 5, 8], { generator: gen, requiresGrad: true });
      const k = T.randn([1, 2, 5, 8], { generator: gen, requiresGrad: all });
      const v = T.randn([1, 2, 5, 8], { generator: gen, requiresGrad: all });
      const y = T.sum(T.tanh(T.attention(q, k, v)));
      let n = 0;
      spying("gemm", () => { n++; }, () => y.backward());
      return { n, gq: q.grad };
    };
    const a = run(true), b = run(false);
    assert.equal(a.n, 4);  // dV, dP, dQ, dK
    assert.equal(b.n, 2);  // dP, dQ
    assert.deepEqual(bits(b.gq), bits(a.gq));
  });

  it("grad(fn) walks only what leads to its inputs: a captured trainable weight gets no GEMM and no .grad", () => {
    const gen = new T.RandomGenerator(8);
    const W = T.randn([out, inF], { generator: gen, requiresGrad: true });
    const x = T.randn([rows, inF], { generator: gen });
    const gemms: GemmArgs[] = [];
    const [gx] = spying("gemm", (a) => { gemms.push(a); }, () => T.grad((a) => T.sum(T.tanh(T.linear(a, W))))(x));
    assert.equal(gemms.filter((g) => g.transA).length, 0);
    assert.equal(W.grad, null);
    // the same gradient as a full backward
    const xl = x.detach().requiresGrad_();
    T.sum(T.tanh(T.linear(xl, W))).backward();
    assert.deepEqual(bits(gx), bits(xl.grad));
  });
});

describe("saved tensors are registered through the context", () => {
  it("the bytes a node saves are the tensors its backward reads, released by backward", () => {
    const base = T.memoryStats().savedBytes;
    const x = T.randn([8, 16], { requiresGrad: true }), w = T.randn([16], { requiresGrad: true });
    const y = T.layerNorm(x, w, null);  // x, mean, rstd and the weight
    assert.equal(T.memoryStats().savedBytes - base, (8 * 16 + 8 + 8 + 16) * 4);
    T.sum(y).backward();
    assert.equal(T.memoryStats().savedBytes, base);
  });
  it("linear saves x only for a weight that requires grad (gW = gy^T x is the only reader of x)", () => {
    const base = T.memoryStats().savedBytes;
    const x = T.randn([8, 16], { requiresGrad: true }), frozen = T.randn([4, 16]);
    const y = T.linear(x, frozen);
    assert.equal(T.memoryStats().savedBytes - base, 4 * 16 * 4, "the weight (for gx), no copy of x");
    T.sum(y).backward();
    assert.equal(T.memoryStats().savedBytes, base);
    const w = frozen.toTypedArray(), gx = x.grad!.toTypedArray();  // gx = gy W with gy = 1: W's column sums in every row
    for (let i = 0; i < 8 * 16; i++) assert.ok(Math.abs(gx[i]! - [0, 1, 2, 3].reduce((s, j) => s + w[j * 16 + (i % 16)]!, 0)) < 1e-5);
    const trained = frozen.detach().requiresGrad_();
    T.linear(x, trained);
    assert.equal(T.memoryStats().savedBytes - base, (4 * 16 + 8 * 16) * 4, "the weight and x");
  });
});
