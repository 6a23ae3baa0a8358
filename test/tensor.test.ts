// Tensor basics, views, autograd semantics, RNG and memory accounting.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as T from "../src/index.js";
import { philox4x32 } from "../src/tensor/rng.js";
import { takeRecycled } from "../src/tensor/recycle.js";

describe("tensor creation and views", () => {
  it("nested arrays, shape, toArray, item", () => {
    const t = T.tensor([[1, 2, 3], [4, 5, 6]]);
    assert.deepEqual(t.shape, [2, 3]);
    assert.equal(t.dtype, "float32");
    assert.deepEqual(t.toArray(), [[1, 2, 3], [4, 5, 6]]);
    assert.equal(T.tensor(2.5).item(), 2.5);
    assert.throws(() => t.item(), /one element/);
    assert.throws(() => T.tensor([[1, 2], [3]]), /ragged/);
  });
  it("transpose and narrow are views; contiguous copies in logical order", () => {
    const t = T.arange(0, 12).reshape(3, 4);
    const v = t.transpose(0, 1);
    assert.equal(v.data, t.data);
    assert.equal(v.isContiguous, false);
    assert.deepEqual(v.toArray(), [[0, 4, 8], [1, 5, 9], [2, 6, 10], [3, 7, 11]]);
    const n = t.narrow(1, 1, 2);
    assert.equal(n.data, t.data);
    assert.deepEqual(n.toArray(), [[1, 2], [5, 6], [9, 10]]);
    assert.deepEqual(Array.from(v.contiguous().toTypedArray()), [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
  });
  it("expand broadcasts with stride 0 and reshape infers -1", () => {
    const t = T.tensor([[1], [2]]).expand(2, 3);
    assert.deepEqual(t.strides, [1, 0]);
    assert.deepEqual(t.toArray(), [[1, 1, 1], [2, 2, 2]]);
    assert.deepEqual(T.arange(0, 6).reshape(-1, 2).shape, [3, 2]);
    assert.throws(() => T.arange(0, 6).reshape(4, 2), /does not hold the 6 elements/);
  });
  it("broadcast errors name both shapes", () => {
    assert.throws(() => T.add(T.zeros([2, 3]), T.zeros([4])), /\[2,3\] and \[4\] cannot be broadcast/);
  });
  it("arange, full, zeros, ones", () => {
    assert.deepEqual(T.arange(1, 7, 2).toArray(), [1, 3, 5]);
    assert.deepEqual(T.full([2], 7).toArray(), [7, 7]);
    assert.equal(T.ones([3, 3]).sum().item(), 9);
  });
});

describe("autograd", () => {
  it("accumulates into leaf .grad across backward calls", () => {
    const w = T.tensor([1, 2, 3], { requiresGrad: true });
    T.sum(T.mul(w, 2)).backward();
    T.sum(T.mul(w, 3)).backward();
    assert.deepEqual(w.grad!.toArray(), [5, 5, 5]);
  });
  it("a tensor used twice gets the sum of both paths", () => {
    const x = T.tensor([2], { requiresGrad: true });
    T.mul(x, x).sum().backward(); // d(x^2)/dx = 2x
    assert.deepEqual(x.grad!.toArray(), [4]);
  });
  it("the graph is freed after backward unless retained", () => {
    const x = T.tensor([1, 2], { requiresGrad: true });
    const y = T.exp(x).sum();
    y.backward(undefined, { retainGraph: true });
    y.backward();
    assert.deepEqual(Array.from(x.grad!.toTypedArray(), (v) => Number(v.toFixed(4))), [5.4366, 14.7781]);
    assert.throws(() => y.backward(), /second time/);
  });
  it("noGrad and detach record nothing", () => {
    const x = T.tensor([1, 2], { requiresGrad: true });
    const y = T.noGrad(() => T.mul(x, 2));
    assert.equal(y.requiresGrad, false);
    assert.equal(T.mul(x.detach(), 2).requiresGrad, false);
  });
  it("backward of a non-scalar needs a seed gradient", () => {
    const x = T.tensor([1, 2], { requiresGrad: true });
    assert.throws(() => T.mul(x, 2).backward(), /needs a scalar/);
    T.mul(x, 2).backward(T.tensor([1, 10]));
    assert.deepEqual(x.grad!.toArray(), [2, 20]);
  });
  it("grad(fn) returns gradients for every input", () => {
    const [ga, gb] = T.grad((a, b) => T.sum(T.mul(a, b)))(T.tensor([1, 2]), T.tensor([3, 4]));
    assert.deepEqual(ga.toArray(), [3, 4]);
    assert.deepEqual(gb.toArray(), [1, 2]);
  });
  it("a deep chain (10k ops) backpropagates without stack overflow", () => {
    const x = T.tensor([1], { requiresGrad: true });
    let y = x;
    for (let i = 0; i < 10000; i++) y = T.add(y, 0.5);
    y.sum().backward();
    assert.deepEqual(x.grad!.toArray(), [1]);
  });
});

describe("gradient storage recycling", () => {
  it("recycles consumed intermediate gradients, never leaf grads, forward tensors or shared grads", () => {
    const n = 4099;  // a length no other test allocates
    const x = T.randn([n], { generator: new T.RandomGenerator(1) }).requiresGrad_();
    const w = T.randn([n], { generator: new T.RandomGenerator(2) }).requiresGrad_();
    const h = T.mul(x, w), a = T.add(h, x), y = T.sum(T.mul(a, a));  // add: one gradient to both inputs
    const keep = [h, a].map((t) => Array.from(t.toTypedArray()));
    while (takeRecycled(n, true)) { /* empty the pool of this size */ }
    y.backward();
    const gx = Array.from(x.grad!.toTypedArray()), gw = Array.from(w.grad!.toTypedArray());
    // d/dx = 2a (w + 1), d/dw = 2a x, computed independently in float64
    const av = a.toTypedArray(), xv = x.toTypedArray(), wv = w.toTypedArray();
    for (let i = 0; i < n; i++) {
      assert.ok(Math.abs(gx[i] - 2 * av[i] * (wv[i] + 1)) <= 1e-5 * (1 + Math.abs(gx[i])), `dx[${i}]`);
      assert.ok(Math.abs(gw[i] - 2 * av[i] * xv[i]) <= 1e-5 * (1 + Math.abs(gw[i])), `dw[${i}]`);
    }
    const reused = takeRecycled(n, true);
    assert.ok(reused, "an intermediate gradient of this size was recycled");
    assert.ok(reused.every((v) => v === 0), "recycled storage comes back zero-filled");
    for (let i = 0; i < 8; i++) T.full([n], 7);  // overwrite whatever else is in the pool
    assert.deepEqual(Array.from(x.grad!.toTypedArray()), gx, "leaf grad untouched");
    assert.deepEqual(Array.from(w.grad!.toTypedArray()), gw, "leaf grad untouched");
    assert.deepEqual([h, a].map((t) => Array.from(t.toTypedArray())), keep, "forward tensors untouched");
  });
});

describe("Philox RNG", () => {
  it("matches the Random123 known-answer vectors for philox4x32-10", () => {
    const o = new Uint32Array(4);
    philox4x32([0, 0, 0, 0], 0, 0, o);
    assert.deepEqual([...o], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
    philox4x32([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], 0xffffffff, 0xffffffff, o);
    assert.deepEqual([...o], [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
    philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], 0xa4093822, 0x299f31d0, o);
    assert.deepEqual([...o], [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]);
  });
  it("same seed gives the same numbers; state get/set resumes exactly", () => {
    const g = new T.RandomGenerator(42);
    const a = T.randn([5], { generator: g }).toArray();
    const state = g.getState();
    const b = T.randn([7], { generator: g }).toArray();
    g.setState(state);
    assert.deepEqual(T.randn([7], { generator: g }).toArray(), b);
    assert.deepEqual(T.randn([5], { generator: new T.RandomGenerator(42) }).toArray(), a);
    assert.notDeepEqual(T.randn([5], { generator: new T.RandomGenerator(43) }).toArray(), a);
  });
  it("randn has mean ~0 and std ~1; rand stays in (0, 1)", () => {
    const x = T.randn([200000], { dtype: "float64", generator: new T.RandomGenerator(1) });
    const m = T.mean(x).item();
    const s = Math.sqrt(T.variance(x).item());
    assert.ok(Math.abs(m) < 0.01, `mean ${m}`);
    assert.ok(Math.abs(s - 1) < 0.01, `std ${s}`);
    const u = T.rand([10000], { generator: new T.RandomGenerator(2) });
    assert.ok(T.amin(u).item() > 0 && T.amax(u).item() < 1);
  });
  it("dropout with the same generator state gives the same mask and keeps the expectation", () => {
    const x = T.ones([10000]);
    const a = T.dropout(x, 0.25, true, new T.RandomGenerator(9));
    const b = T.dropout(x, 0.25, true, new T.RandomGenerator(9));
    assert.deepEqual(a.toArray(), b.toArray());
    assert.ok(Math.abs(T.mean(a).item() - 1) < 0.03);
    assert.equal(T.dropout(x, 0.25, false), x);
  });
});

describe("memory accounting", () => {
  it("counts bytes saved for backward and releases them after backward", () => {
    const base = T.memoryStats().savedBytes;
    const x = T.randn([64, 64], { requiresGrad: true });
    const y = T.exp(x); // saves x and y: 2 * 64*64*4 bytes
    assert.equal(T.memoryStats().savedBytes - base, 2 * 64 * 64 * 4);
    const z = T.exp(x); // x already saved: only z's output is new
    assert.equal(T.memoryStats().savedBytes - base, 3 * 64 * 64 * 4);
    T.add(y, z).sum().backward();
    assert.equal(T.memoryStats().savedBytes, base);
  });
  it("tracks live storage and the peak since reset when switched on (and nothing when off)", () => {
    const off = T.memoryStats().liveBytes;
    T.zeros([1024]);
    assert.equal(T.memoryStats().liveBytes, off, "off by default");
    const was = T.trackLiveMemory(true);
    try {
      T.resetPeakMemory();
      const before = T.memoryStats();
      const t = T.zeros([1024]);
      const after = T.memoryStats();
      assert.equal(after.liveBytes - before.liveBytes, 4096);
      assert.ok(after.peakLiveBytes >= after.liveBytes);
      t.dispose();
      assert.equal(T.memoryStats().liveBytes, before.liveBytes);
    } finally {
      T.trackLiveMemory(was);
    }
  });
  it("storage that tidy() recycles is counted once when reused: a loop of tidy steps does not grow the peak", () => {
    const was = T.trackLiveMemory(true);
    try {
      const n = 4099;  // a length no other test allocates
      const step = () => T.tidy(() => { T.exp(T.mul(T.full([n], 0.5), 2)).sum().item(); });
      step();  // the first step allocates (and counts) the buffers the next ones reuse
      T.resetPeakMemory();
      const peak = T.memoryStats().peakLiveBytes;
      for (let i = 0; i < 20; i++) step();
      assert.equal(T.memoryStats().peakLiveBytes - peak, 0);
      assert.equal(T.memoryStats().liveBytes, peak);
    } finally {
      T.trackLiveMemory(was);
    }
  });
});
