// tidy(): storage recycling scopes. What escapes survives with its values; everything else is recycled
// and reading it throws; a training step under tidy computes exactly what it computes without.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as T from "../src/index.js";
import { TransformerLM } from "../src/models/transformer.js";
import { AdamW, defaultParamGroups } from "../src/train/optim.js";

const DISPOSED = /disposed when the tidy\(\) that created it ended/;
const n = 5003;  // a length no other test allocates

describe("tidy", () => {
  it("keeps returned tensors (nested in arrays and objects) and kills the rest, loudly", () => {
    let inner: T.Tensor | null = null;
    const out = T.tidy(() => {
      const a = T.randn([n], { generator: new T.RandomGenerator(1) });
      inner = T.mul(a, 2);
      const s = T.add(inner, 1);
      return { s, list: [T.exp(a)], label: "kept" };
    });
    const a = T.randn([n], { generator: new T.RandomGenerator(1) }).toTypedArray();
    assert.equal(out.label, "kept");
    const s = out.s.toTypedArray(), e = out.list[0].toTypedArray();
    for (let i = 0; i < n; i++) {
      assert.equal(s[i], Math.fround(Math.fround(a[i] * 2) + 1));
      assert.ok(Math.abs(e[i] - Math.exp(a[i])) <= 1e-6 * Math.exp(a[i]));
    }
    assert.throws(() => inner!.toTypedArray(), DISPOSED);
    assert.throws(() => T.add(inner!, 1), DISPOSED);
    // the killed storage is reused: new tensors allocated now do not disturb the kept ones
    for (let i = 0; i < 4; i++) T.full([n], 7);
    assert.deepEqual(Array.from(out.s.toTypedArray()), Array.from(s));
  });

  it("keeps leaf gradients, parameters of modules built inside, and keep()", () => {
    const w = T.randn([n], { generator: new T.RandomGenerator(2) }).requiresGrad_();
    let lin: T.Linear | null = null;
    let kept: T.Tensor | null = null;
    T.tidy(() => {
      T.sum(T.mul(w, w)).backward();
      lin = new T.Linear(4, 3);
      kept = T.keep(T.full([n], 3));
      return null;
    });
    for (let i = 0; i < 4; i++) T.full([n], 9);
    const wv = w.toTypedArray(), g = w.grad!.toTypedArray();
    for (let i = 0; i < n; i++) assert.equal(g[i], Math.fround(2 * wv[i]));
    assert.deepEqual(lin!.weight.shape, [3, 4]);
    assert.ok(Array.from(kept!.toTypedArray()).every((v) => v === 3));
  });

  it("nests: what escapes the inner scope dies with the outer one unless it escapes that too", () => {
    let fromInner: T.Tensor | null = null;
    const outer = T.tidy(() => {
      fromInner = T.tidy(() => T.full([n], 5));
      const keepMe = T.tidy(() => T.full([n], 6));
      assert.equal(fromInner.toTypedArray()[0], 5, "alive between the scopes");
      return keepMe;
    });
    assert.throws(() => fromInner!.toTypedArray(), DISPOSED);
    assert.equal(outer.toTypedArray()[n - 1], 6);
  });

  it("a long outer scope does not hold what its inner scopes freed: memory stays bounded past the pool's cap", () => {
    // 40 inner scopes of 64 MiB each (2.5 GiB in all, over the 1 GiB pool cap) inside one outer scope
    const before = process.memoryUsage().arrayBuffers;
    let peak = 0;
    T.tidy(() => {
      for (let i = 0; i < 40; i++) {
        T.tidy(() => { T.full([16 * 2 ** 20 + 1024 * i], 1 + i); }); // a new size each time: the pool cannot hand it back
        if (i % 8 === 7) {
          (globalThis as { gc?: () => void }).gc?.();
          peak = Math.max(peak, process.memoryUsage().arrayBuffers - before);
        }
      }
    });
    // the pool keeps at most 1 GiB of them; the rest must be left to the garbage collector
    assert.ok(peak < 1.75 * 2 ** 30, `array buffers grew by ${(peak / 2 ** 20).toFixed(0)} MiB inside the outer scope`);
  });

  it("recycles on an exception, and rejects async functions", () => {
    let t: T.Tensor | null = null;
    assert.throws(() => T.tidy(() => { t = T.full([n], 1); throw new Error("boom"); }), /boom/);
    assert.throws(() => t!.toTypedArray(), DISPOSED);
    assert.throws(() => T.tidy(async () => 1), /must be synchronous/);
  });

  it("zeroGrad and gradient accumulation give the storage backward allocated for a gradient back; a stale reference throws", () => {
    const m = 5011;  // a length no other test allocates
    const w = T.randn([m], { generator: new T.RandomGenerator(6) }).requiresGrad_();
    const opt = new AdamW([{ params: [{ name: "w", tensor: w }], weightDecay: 0 }], { lr: 1e-3 });
    T.sum(T.mul(w, w)).backward();
    const stale = w.grad!, storage = stale.data, want = Array.from(stale.toTypedArray());
    opt.zeroGrad();
    assert.equal(w.grad, null);
    assert.throws(() => stale.toTypedArray(), /released \(its storage is being reused\)/);
    assert.equal(T.full([m], 7).data, storage, "the next allocation of that size reuses it");
    T.sum(T.mul(w, w)).backward();
    assert.deepEqual(Array.from(w.grad!.toTypedArray()), want, "the next backward computes the same gradient");

    // one gradient storage shared by two leaves (add's backward hands the same tensor to both): kept
    const a = T.randn([m], { generator: new T.RandomGenerator(7) }).requiresGrad_(), b = T.randn([m], { generator: new T.RandomGenerator(8) }).requiresGrad_();
    const y = T.add(a, b);
    T.sum(T.mul(y, y)).backward();
    assert.equal(a.grad!.data, b.grad!.data);
    const bGrad = Array.from(b.grad!.toTypedArray());
    new AdamW([{ params: [{ name: "a", tensor: a }], weightDecay: 0 }], { lr: 1e-3 }).zeroGrad();
    T.full([m], 9);
    assert.deepEqual(Array.from(b.grad!.toTypedArray()), bGrad);

    // accumulation over two passes (micro-batches): the first pass's gradient is replaced by the sum and
    // given back; the sum is what zeroGrad gives back next
    opt.zeroGrad();
    T.sum(T.mul(w, w)).backward();
    const first = w.grad!, firstStorage = first.data;
    T.sum(T.mul(w, w)).backward();
    assert.throws(() => first.toTypedArray(), /replaced by the sum of a later backward\(\)/);
    assert.deepEqual(Array.from(w.grad!.toTypedArray()), want.map((v) => Math.fround(v + v)));
    assert.ok([T.full([m], 7), T.full([m], 7), T.full([m], 7)].some((x) => x.data === firstStorage), "reused by the next allocations of that size");
    const sum = w.grad!;
    opt.zeroGrad();
    assert.throws(() => sum.toTypedArray(), /zeroGrad\(\) released/);

    // a gradient the user assigned is theirs: dropped, not recycled
    const mine = T.full([m], 3);
    w.grad = mine;
    opt.zeroGrad();
    T.full([m], 9);
    assert.ok(Array.from(mine.toTypedArray()).every((v) => v === 3));
  });

  it("a training step computes the same bits with and without tidy", () => {
    const run = (scoped: boolean) => {
      const cfg = T.gpt2Config({ vocabSize: 29, dModel: 32, nLayers: 2, nHeads: 2, maxSeqLen: 16, dropout: 0 });
      const model = new TransformerLM(cfg, { generator: new T.RandomGenerator(4) });
      const opt = new AdamW(defaultParamGroups(model, 0.1), { lr: 3e-3 });
      const g = new T.RandomGenerator(5);
      const x = T.randint(29, [3, 16], { generator: g }), y = T.randint(29, [3, 16], { generator: g });
      const losses: number[] = [];
      const step = () => {
        const loss = T.crossEntropy(model.forward(x).logits.reshape(-1, 29), y.reshape(-1));
        loss.backward();
        opt.step();
        opt.zeroGrad();
        return loss.item();
      };
      for (let i = 0; i < 5; i++) losses.push(scoped ? T.tidy(step) : step());
      return { losses, params: model.parameters().map((p) => Array.from(p.toTypedArray())) };
    };
    const plain = run(false), scoped = run(true);
    assert.deepEqual(scoped.losses, plain.losses);
    assert.deepEqual(scoped.params, plain.params);
    assert.ok(plain.losses[4] < plain.losses[0], "it learns the batch");
  });

  it("keepReachable keeps what an object holds (class fields, arrays, Maps, bare storage); the rest is recycled", () => {
    class Holder { t: T.Tensor | null = null; list: T.Tensor[] = []; byName = new Map<string, T.Tensor>(); raw: Float32Array | null = null; }
    const h = new Holder();
    let dropped: T.Tensor | null = null;
    T.tidy(() => {
      h.t = T.full([n], 1);
      h.list.push(T.full([n], 2));
      h.byName.set("x", T.full([n], 3));
      h.raw = T.full([n], 4).data as Float32Array;  // a storage without its tensor
      dropped = T.full([n], 5);
      T.keepReachable(h);
    });
    for (let i = 0; i < 8; i++) T.full([n], 9);  // would reuse any recycled storage of n elements
    assert.ok(h.t!.toTypedArray().every((x) => x === 1));
    assert.ok(h.list[0].toTypedArray().every((x) => x === 2));
    assert.ok(h.byName.get("x")!.toTypedArray().every((x) => x === 3));
    assert.ok(h.raw!.every((x) => x === 4));
    assert.throws(() => dropped!.toTypedArray(), DISPOSED);
  });

  it("decodeStep: a KV cache filled inside the pass lives on; generate() under it matches a plain forward", () => {
    const model = new TransformerLM(T.gpt2Config({ vocabSize: 11, dModel: 16, nLayers: 2, nHeads: 2, maxSeqLen: 32, dropout: 0 })).eval();
    const ids = [1, 2, 3, 4, 5, 6];
    const state = model.newState(32);
    const a = T.decodeStep(state, () => model.forward(T.tensor(Int32Array.from(ids.slice(0, 4)), { shape: [1, 4] }), T.SeqContext.decode(state)).logits.toTypedArray());
    for (let i = 0; i < 8; i++) T.full([16 * 32 * 2], 9);
    const b = T.decodeStep(state, () => model.forward(T.tensor(Int32Array.from(ids.slice(4)), { shape: [1, 2] }), T.SeqContext.decode(state)).logits.toTypedArray());
    const full = T.noGrad(() => model.forward(T.tensor(Int32Array.from(ids), { shape: [1, 6] })).logits.toTypedArray());
    const got = [...a, ...b];
    for (let i = 0; i < full.length; i++) assert.ok(Math.abs(got[i] - full[i]) <= 1e-5, `logit ${i}: ${got[i]} vs ${full[i]}`);
  });
});
