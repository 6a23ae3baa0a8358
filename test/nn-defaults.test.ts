// Default initialization of the layers against PyTorch's documented formulas (checked statistically on
// large layers), the torch.nn.init-style helpers, and the model families keeping their own init and
// draw order (the weights of a TransformerLM are pinned to the ones built before default inits existed).

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as T from "../src/index.js";

function stats(t: T.Tensor): { mean: number; variance: number; maxAbs: number } {
  const v = t.toTypedArray() as Float32Array;
  let s = 0, s2 = 0, m = 0;
  for (const x of v) { s += x; s2 += x * x; m = Math.max(m, Math.abs(x)); }
  const mean = s / v.length;
  return { mean, variance: s2 / v.length - mean * mean, maxAbs: m };
}

/** Mean and variance within a few standard errors of the expected distribution's (n draws). */
function assertMoments(t: T.Tensor, mean: number, variance: number, what: string): void {
  const st = stats(t), n = t.numel;
  assert.ok(Math.abs(st.mean - mean) < 5 * Math.sqrt(variance / n), `${what}: mean ${st.mean}, expected ${mean}`);
  assert.ok(Math.abs(st.variance / variance - 1) < 0.02, `${what}: variance ${st.variance}, expected ${variance}`);
}

describe("layer defaults as torch.nn", () => {
  it("Linear(1000, 1000): weight and bias U(-1/sqrt(1000), 1/sqrt(1000)) (kaiming_uniform_ a = sqrt(5))", () => {
    const lin = new T.Linear(1000, 1000, true, { generator: new T.RandomGenerator(1) });
    const bound = 1 / Math.sqrt(1000);
    const w = stats(lin.weight);
    assert.ok(w.maxAbs <= bound && w.maxAbs > 0.999 * bound, `max |w| ${w.maxAbs} vs bound ${bound}`);
    assertMoments(lin.weight, 0, bound * bound / 3, "weight");
    const b = stats(lin.bias!);
    assert.ok(b.maxAbs <= bound && b.maxAbs > 0.9 * bound, `max |b| ${b.maxAbs}`);
  });

  it("Embedding(1000, 500): N(0, 1)", () => {
    assertMoments(new T.Embedding(1000, 500, { generator: new T.RandomGenerator(2) }).weight, 0, 1, "embedding");
  });

  it("LayerNorm and RMSNorm: weight 1, bias 0", () => {
    const ln = new T.LayerNorm(7), rn = new T.RMSNorm(5);
    assert.deepEqual(Array.from(ln.weight.toTypedArray()), new Array(7).fill(1));
    assert.deepEqual(Array.from(ln.bias!.toTypedArray()), new Array(7).fill(0));
    assert.deepEqual(Array.from(rn.weight.toTypedArray()), new Array(5).fill(1));
  });

  it("the global generator draws a standalone layer (manualSeed makes it repeatable); skipInit draws nothing", () => {
    T.manualSeed(5);
    const a = new T.Linear(8, 4).weight.toTypedArray();
    T.manualSeed(5);
    assert.deepEqual(new T.Linear(8, 4).weight.toTypedArray(), a);
    const before = T.defaultGenerator.getState();
    const lin = T.skipInit(() => new T.Sequential(new T.Linear(8, 4), new T.Embedding(3, 2)));
    assert.deepEqual(T.defaultGenerator.getState(), before);
    assert.ok(lin.parameters().every((p) => (p.toTypedArray() as Float32Array).every((x) => x === 0)));
  });

  it("TransformerLM keeps its own init: same weights as before layer defaults, nothing drawn from the global generator", () => {
    const weightsHash = (m: T.TransformerLM) => {
      const h = createHash("sha256");
      for (const [k, t] of Object.entries(m.stateDict())) { h.update(k); h.update(new Uint8Array(t.toTypedArray().buffer)); }
      return h.digest("hex");
    };
    T.manualSeed(1337);
    const before = T.defaultGenerator.getState();
    const gpt = new T.TransformerLM(T.gpt2Config({ vocabSize: 65, dModel: 96, nLayers: 3, nHeads: 4, maxSeqLen: 64, dropout: 0 }), { generator: new T.RandomGenerator(1337) });
    const gau = new T.TransformerLM(T.llamaConfig({ vocabSize: 50, dModel: 32, nLayers: 2, nHeads: 4, maxSeqLen: 32, dFF: 64, init: "t5", attention: "gau" }), { generator: new T.RandomGenerator(1337) });
    assert.deepEqual(T.defaultGenerator.getState(), before);
    // hashes of the same constructions at the commit before layer defaults (npm start's model shape first)
    assert.equal(weightsHash(gpt), "08d36c43e4d20ba635b2163fada6a3093b2795d686eea00892a78ac88f93dabe");
    assert.equal(weightsHash(gau), "eb04c32f1f7c378cbad55254a48310787ab8e292c8ac8643e52942bc94113291");
  });
});

describe("T.init helpers (torch.nn.init)", () => {
  const g = () => ({ generator: new T.RandomGenerator(3) });

  it("fans as torch's _calculate_fan_in_and_fan_out, and gains as calculate_gain", () => {
    assert.deepEqual(T.init.calculateFanInAndFanOut(T.zeros([20, 30])), [30, 20]);
    assert.deepEqual(T.init.calculateFanInAndFanOut(T.zeros([8, 3, 5, 5])), [75, 200]);
    assert.throws(() => T.init.calculateFanInAndFanOut(T.zeros([5])), /at least 2 dimensions, got \[5\]/);
    assert.equal(T.init.calculateGain("relu"), Math.SQRT2);
    assert.equal(T.init.calculateGain("tanh"), 5 / 3);
    assert.equal(T.init.calculateGain("leaky_relu", Math.sqrt(5)), Math.sqrt(1 / 3));
  });

  it("uniform_, normal_, constant_, zeros_, ones_ fill in place and return the tensor", () => {
    const t = T.empty([400, 500]);
    assert.equal(T.init.uniform_(t, -2, 3, g()), t);
    const u = stats(t);
    assert.ok(u.maxAbs <= 3);
    assertMoments(t, 0.5, 25 / 12, "uniform(-2, 3)");
    assertMoments(T.init.normal_(t, 1, 0.5, g()), 1, 0.25, "normal(1, 0.5)");
    assert.ok((T.init.constant_(t, 7).toTypedArray() as Float32Array).every((x) => x === 7));
    assert.ok((T.init.zeros_(t).toTypedArray() as Float32Array).every((x) => x === 0));
    assert.ok((T.init.ones_(t).toTypedArray() as Float32Array).every((x) => x === 1));
  });

  it("xavier and kaiming variances match Glorot & Bengio / He et al. as torch computes them", () => {
    const w = T.empty([300, 700]);
    assertMoments(T.init.xavierUniform_(w, { gain: 2, ...g() }), 0, 4 * 2 / 1000, "xavier uniform");
    assertMoments(T.init.xavierNormal_(w, g()), 0, 2 / 1000, "xavier normal");
    assertMoments(T.init.kaimingUniform_(w, g()), 0, 2 / 700, "kaiming uniform (leaky_relu, a = 0)");
    assertMoments(T.init.kaimingNormal_(w, { mode: "fan_out", nonlinearity: "relu", ...g() }), 0, 2 / 300, "kaiming normal fan_out");
    assert.ok(stats(T.init.kaimingUniform_(w, { a: Math.sqrt(5), ...g() })).maxAbs <= 1 / Math.sqrt(700));
  });

  it("truncNormal_ stays inside [a, b] with the truncated normal's variance", () => {
    const t = T.init.truncNormal_(T.empty([200000]), { std: 1, a: -1, b: 1, ...g() });
    assert.ok(stats(t).maxAbs <= 1);
    // variance of N(0, 1) truncated to [-1, 1]: 1 - 2 phi(1) / (2 Phi(1) - 1)
    const phi1 = Math.exp(-0.5) / Math.sqrt(2 * Math.PI), mass = 0.6826894921370859;
    assertMoments(t, 0, 1 - 2 * phi1 / mass, "truncated normal");
    assert.throws(() => T.init.truncNormal_(T.empty([3]), { a: 1, b: -1 }), /expected a < b/);
  });

  it("a strided view is filled in place, the rest of the storage untouched", () => {
    const base = T.zeros([4, 6]);
    T.init.constant_(T.transpose(T.narrow(base, 1, 2, 3), 0, 1), 5);
    assert.deepEqual(base.toArray(), Array.from({ length: 4 }, () => [0, 0, 5, 5, 5, 0]));
  });

  it("refuses integer tensors and op outputs", () => {
    assert.throws(() => T.init.normal_(T.zeros([3], { dtype: "int32" })), /init.normal_: expected a float32 or float64 tensor, got int32/);
    const y = T.mul(T.ones([3], { requiresGrad: true }), 2);
    assert.throws(() => T.init.zeros_(y), /computed by an op/);
  });
});
