// Optimizers against hand-computed float64 references of the published update rules.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as T from "../../src/index.js";
import { Module } from "../../src/nn/module.js";
import { AdamW, SGD, defaultParamGroups } from "../../src/train/optim.js";

const close = (got: ArrayLike<number>, want: number[], rtol = 1e-6) => {
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++) {
    assert.ok(Math.abs(got[i] - want[i]) <= rtol * Math.abs(want[i]) + 1e-9, `element ${i}: got ${got[i]}, want ${want[i]}`);
  }
};

/** A tiny model with every kind of parameter: embedding (tied to the head), matrix, bias, norm gain. */
class Tiny extends Module {
  emb = this.param("tok_emb.weight", T.randn([5, 3], { generator: new T.RandomGenerator(1) }), "embedding");
  w = this.param("lin.weight", T.randn([3, 3], { generator: new T.RandomGenerator(2) }));
  b = this.param("lin.bias", T.randn([3], { generator: new T.RandomGenerator(3) }));
  g = this.param("norm.weight", T.randn([3], { generator: new T.RandomGenerator(4) }));
  head = this.param("head.weight", this.emb);
}

describe("AdamW", () => {
  it("two steps match the hand-computed Loshchilov & Hutter update (float64 reference)", () => {
    const p0 = [0.5, -1.5, 2.0], g1 = [0.1, -0.2, 0.003], g2 = [0.3, 0.05, -0.7];
    const lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1;
    const p = T.tensor([p0]).requiresGrad_();
    const opt = new AdamW([{ params: [{ name: "p", tensor: p }], weightDecay: wd }], { lr, beta1: b1, beta2: b2, eps });
    // Reference, written out from Alg. 2 with bias corrections 1 - beta^t.
    const ref = [...p0], m = [0, 0, 0], v = [0, 0, 0];
    [g1, g2].forEach((g, k) => {
      const t = k + 1;
      for (let i = 0; i < 3; i++) {
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        const mh = m[i] / (1 - b1 ** t), vh = v[i] / (1 - b2 ** t);
        ref[i] = ref[i] - lr * wd * ref[i] - (lr * mh) / (Math.sqrt(vh) + eps);
      }
      p.grad = T.tensor([g]);
      opt.step();
      close(p.data, ref);
      if (t === 1) {
        // Step 1 in closed form: mhat = g, vhat = g^2, so the step is lr * g / (|g| + eps) ~ lr * sign(g).
        close(p.data, p0.map((x, i) => x * (1 - lr * wd) - (lr * g1[i]) / (Math.abs(g1[i]) + eps)));
      }
    });
    assert.equal(opt.stepCount, 2);
  });

  it("default groups: no decay for ndim < 2 and embeddings (init role); a tied tensor appears once and is stepped once", () => {
    const model = new Tiny();
    const [decay, noDecay] = defaultParamGroups(model, 0.1);
    assert.deepEqual(decay.params.map((p) => p.name), ["lin.weight"]);
    assert.equal(decay.weightDecay, 0.1);
    assert.deepEqual(noDecay.params.map((p) => p.name), ["tok_emb.weight", "lin.bias", "norm.weight"]);
    assert.equal(noDecay.weightDecay, 0);

    // With zero gradients Adam's step is 0, so only decay moves a parameter.
    const before = Object.fromEntries([...model.namedParameters()].map(([n, t]) => [n, Array.from(t.data)]));
    for (const t of model.parameters()) t.grad = T.zeros(t.shape);
    new AdamW(defaultParamGroups(model, 0.5), { lr: 0.1 }).step();
    close(model.w.data, before["lin.weight"].map((x) => x * (1 - 0.1 * 0.5)));
    for (const n of ["tok_emb.weight", "lin.bias", "norm.weight"]) assert.deepEqual(Array.from(model.stateDict()[n].data), before[n]);

    // Tied: one step of lr * sign(g), not two.
    const tied = new Tiny();
    const e0 = Array.from(tied.emb.data);
    tied.emb.grad = T.full([5, 3], 0.25);
    const opt = new AdamW(defaultParamGroups(tied, 0), { lr: 0.01 });
    opt.step();
    close(tied.emb.data, e0.map((x) => x - (0.01 * 0.25) / (0.25 + 1e-8)));
    assert.deepEqual(Object.keys(opt.stateDict().tensors).filter((k) => k.startsWith("head")), []);
  });

  it("stateDict / loadStateDict continue exactly; bad state gives one error listing every problem", () => {
    const a = new Tiny(), b = new Tiny();
    const oa = new AdamW(defaultParamGroups(a, 0.1), { lr: 0.01 }), ob = new AdamW(defaultParamGroups(b, 0.1), { lr: 0.01 });
    const grads = (m: Tiny, s: number) => { for (const t of m.parameters()) t.grad = T.randn(t.shape, { generator: new T.RandomGenerator(s) }); };
    grads(a, 10); oa.step();
    ob.loadStateDict(oa.stateDict());
    b.loadStateDict(a.stateDict());
    grads(a, 11); grads(b, 11); oa.step(); ob.step();
    for (const [n, t] of Object.entries(a.stateDict())) assert.deepEqual(b.stateDict()[n].data, t.data, n);

    const bad = oa.stateDict();
    delete bad.tensors["lin.weight.exp_avg"];
    bad.tensors["lin.bias.exp_avg_sq"] = new Float32Array(7);
    bad.tensors["ghost.exp_avg"] = new Float32Array(1);
    bad.meta.type = "SGD";
    assert.throws(() => ob.loadStateDict(bad), (e: Error) =>
      /AdamW\.loadStateDict/.test(e.message) && /meta\.type is "SGD"/.test(e.message) && /missing lin\.weight\.exp_avg/.test(e.message)
      && /lin\.bias\.exp_avg_sq has 7 Float32Array values, expected 3/.test(e.message) && /unexpected ghost\.exp_avg/.test(e.message));
  });

  it("a continued run keeps its optimizer settings: other betas are refused; a state saved without settings loads", () => {
    const m = new Tiny();
    const saved = new AdamW(defaultParamGroups(m, 0.1), { beta2: 0.95 }).stateDict();
    assert.deepEqual(saved.meta.settings, { beta1: 0.9, beta2: 0.95, eps: 1e-8 });
    assert.throws(() => new AdamW(defaultParamGroups(m, 0.1)).loadStateDict(saved), /meta\.settings\.beta2 is 0\.95, but this optimizer has 0\.999/);
    delete saved.meta.settings;
    new AdamW(defaultParamGroups(m, 0.1)).loadStateDict(saved);
  });

  it("a parameter without a gradient is not stepped: its bias corrections count its own updates (torch's per-parameter step), saved and restored", () => {
    const lr = 0.01, eps = 1e-8, g = [0.4, -0.02];
    const a = T.tensor([[1, 2]]).requiresGrad_(), late = T.tensor([[0.5, -0.5]]).requiresGrad_();
    const group = () => [{ params: [{ name: "a", tensor: a }, { name: "late", tensor: late }], weightDecay: 0 }];
    const opt = new AdamW(group(), { lr, eps });
    for (let k = 0; k < 3; k++) { a.grad = T.tensor([[0.1, 0.1]]); late.grad = null; opt.step(); }
    assert.deepEqual(Array.from(late.data), [0.5, -0.5]);
    const saved = opt.stateDict();
    assert.deepEqual(saved.meta.paramSteps, { a: 3, late: 0 });
    // "late" first gets a gradient at step 4: its first update has t = 1, mhat = g, vhat = g^2 (Kingma & Ba, Alg. 1)
    const resumed = new AdamW(group(), { lr, eps });
    resumed.loadStateDict(saved);
    late.grad = T.tensor([g]); a.grad = null;
    resumed.step();
    close(late.data, [0.5, -0.5].map((x, i) => x - (lr * g[i]) / (Math.abs(g[i]) + eps)));
    // a state saved before per-parameter counts existed: every parameter had every step
    delete saved.meta.paramSteps;
    const old = new AdamW(group(), { lr, eps });
    old.loadStateDict(saved);
    assert.deepEqual(old.stateDict().meta.paramSteps, { a: 3, late: 3 });
    saved.meta.paramSteps = { a: 3, late: 9 };
    assert.throws(() => old.loadStateDict(saved), /meta\.paramSteps\["late"\] is 9, expected an integer from 0 to meta\.step \(3\)/);
  });

  it("validates hyperparameters", () => {
    const p = [{ name: "p", tensor: T.zeros([2]).requiresGrad_() }];
    assert.throws(() => new AdamW([{ params: p, weightDecay: 0 }], { beta2: 1 }), /beta2 must be in \[0, 1\)/);
    assert.throws(() => new AdamW([{ params: p, weightDecay: -1 }]), /weightDecay must be/);
    assert.throws(() => new SGD([{ params: p, weightDecay: 0 }], { nesterov: true }), /nesterov needs momentum/);
  });
});

describe("SGD", () => {
  for (const nesterov of [false, true]) {
    it(`momentum${nesterov ? " + nesterov" : ""} with L2 decay: two steps match torch.optim.SGD's rule (float64 reference)`, () => {
      const p0 = [1.0, -2.0], g1 = [0.5, 0.25], g2 = [-0.75, 0.125];
      const lr = 0.1, mu = 0.9, wd = 0.01;
      const p = T.tensor(p0).requiresGrad_();
      const opt = new SGD([{ params: [{ name: "p", tensor: p }], weightDecay: wd, lrScale: 0.5 }], { lr, momentum: mu, nesterov });
      const ref = [...p0], buf = [0, 0];
      for (const g of [g1, g2]) {
        for (let i = 0; i < 2; i++) {
          const d = g[i] + wd * ref[i]; // coupled L2
          buf[i] = buf[i] === 0 ? d : mu * buf[i] + d; // torch: the first buffer is d itself
          ref[i] -= lr * 0.5 * (nesterov ? d + mu * buf[i] : buf[i]);
        }
        p.grad = T.tensor(g);
        opt.step();
        close(p.data, ref);
      }
    });
  }
});
