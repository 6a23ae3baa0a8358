// Sinusoidal positions (Vaswani et al. 2017 §3.5) and ALiBi (Press et al. 2022): the formulas, written
// here from the papers, against tsformer's tables and attention; decoding = recomputation; both read
// past the training length.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as T from "../../src/index.js";
import { alibiAttention, alibiSlopes } from "../../src/nn/position/alibi.js";
import { sinusoidalPositions } from "../../src/nn/position/sinusoidal.js";
import { TransformerLM } from "../../src/models/transformer.js";
import { gpt2Config, llamaConfig } from "../../src/models/config.js";
import { SeqContext } from "../../src/nn/seq-context.js";
import { maxScaledError } from "../helpers/golden.js";

describe("sinusoidal positions", () => {
  it("PE(pos, 2i) = sin(pos / 10000^(2i/D)), PE(pos, 2i+1) = cos(...)", () => {
    const D = 10, pe = sinusoidalPositions(3, 5, D).toTypedArray();
    for (let p = 0; p < 5; p++) {
      for (let c = 0; c < D; c++) {
        const angle = (3 + p) / 10000 ** ((c - (c % 2)) / D);
        assert.ok(Math.abs(pe[p * D + c] - (c % 2 ? Math.cos(angle) : Math.sin(angle))) < 1e-6);
      }
    }
  });
});

describe("ALiBi", () => {
  it("head slopes: 2^(-8k/n) for a power of two, the paper's interleaving otherwise", () => {
    assert.deepEqual(alibiSlopes(8), [1, 2, 3, 4, 5, 6, 7, 8].map((k) => 2 ** -k));
    // n = 12: the 8 slopes of n = 8, then slopes 1, 3, 5, 7 (0-based 0, 2, 4, 6) of n = 16
    assert.deepEqual(alibiSlopes(12), [...[1, 2, 3, 4, 5, 6, 7, 8].map((k) => 2 ** -k), ...[1, 3, 5, 7].map((k) => 2 ** (-k / 2))]);
  });
  it("attention = softmax_j<=i(scale q_i.k_j - m_h (i - j)) v_j, written as loops (GQA, decoding offsets)", () => {
    const g = new T.RandomGenerator(5);
    const [B, H, Hkv, Tq, S, d] = [2, 4, 2, 3, 7, 5];
    const q = T.randn([B, H, Tq, d], { generator: g, dtype: "float64" }), k = T.randn([B, Hkv, S, d], { generator: g, dtype: "float64" }), v = T.randn([B, Hkv, S, d], { generator: g, dtype: "float64" });
    const got = alibiAttention(q, k, v, 0.4).toTypedArray();
    const [qd, kd, vd] = [q, k, v].map((t) => t.toTypedArray());
    const m = alibiSlopes(H), want = new Float64Array(B * H * Tq * d);
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let t = 0; t < Tq; t++) {
      const i = S - Tq + t, kh = Math.floor(h / (H / Hkv)), s: number[] = [];
      for (let j = 0; j <= i; j++) {
        let dot = 0;
        for (let x = 0; x < d; x++) dot += qd[((b * H + h) * Tq + t) * d + x] * kd[((b * Hkv + kh) * S + j) * d + x];
        s.push(0.4 * dot - m[h] * (i - j));
      }
      const mx = Math.max(...s), e = s.map((z) => Math.exp(z - mx)), sum = e.reduce((a, z) => a + z, 0);
      for (let x = 0; x < d; x++) want[((b * H + h) * Tq + t) * d + x] = e.reduce((a, z, j) => a + (z / sum) * vd[((b * Hkv + kh) * S + j) * d + x], 0);
    }
    assert.ok(maxScaledError(got, want) < 1e-12, `error ${maxScaledError(got, want)}`);
  });
});

describe("models with sinusoidal positions or ALiBi", () => {
  const base = { vocabSize: 17, dModel: 16, nLayers: 2, nHeads: 4, maxSeqLen: 12 };
  for (const [name, cfg] of [
    ["sinusoidal (GPT-2 layout)", gpt2Config({ ...base, position: "sinusoidal" })],
    ["ALiBi (Llama layout, GQA)", llamaConfig({ ...base, nKvHeads: 2, dFF: 24, position: "alibi" })],
  ] as const) {
    it(`${name}: decoding past the training length equals recomputation`, () => {
      const model = new TransformerLM(cfg, { generator: new T.RandomGenerator(1) });
      model.eval();
      const N = 30, ids = Int32Array.from({ length: N }, (_, i) => (i * 5 + 2) % 17);
      const full = model.forward(T.tensor(ids, { shape: [1, N] })).logits.toTypedArray();
      const state = model.newState(N), got: number[] = [];
      got.push(...model.forward(T.tensor(ids.slice(0, 4), { shape: [1, 4] }), SeqContext.decode(state)).logits.toTypedArray());
      for (let t = 4; t < N; t++) got.push(...model.forward(T.tensor(ids.slice(t, t + 1), { shape: [1, 1] }), SeqContext.decode(state)).logits.toTypedArray());
      assert.ok(maxScaledError(got, full) < 1e-5, `error ${maxScaledError(got, full)}`);
    });
  }
  it("ALiBi needs exact attention; it refuses packed documents", () => {
    assert.throws(() => llamaConfig({ ...base, dFF: 24, position: "alibi", attention: "linear" }), /position "alibi" needs attention "softmax" or "flash", got "linear"/);
    const model = new TransformerLM(llamaConfig({ ...base, dFF: 24, position: "alibi" }));
    assert.throws(() => model.forward(T.zeros([1, 6], { dtype: "int32" }), SeqContext.packed([3, 3])), /with ALiBi" does not support packed documents/);
  });
});
