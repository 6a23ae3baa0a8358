// RoPE frequency schemes against scripts/golden/rope.py (HF's rope init functions and Su's posts, written
// independently in float64), log-n scaling, the rotate-half layout on the real stories260K, HF's
// rope_scaling mapping and the config's bad-input errors.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as T from "../../src/index.js";
import { fromHFRopeScaling } from "../../src/nn/position/hf.js";
import { lognScales } from "../../src/nn/position/logn.js";
import type { RopeScaling } from "../../src/nn/position/types.js";
import { loadLlama2c } from "../../src/models/llama2c.js";
import { TransformerLM } from "../../src/models/transformer.js";
import { gpt2Config, llamaConfig, parseModelConfig } from "../../src/models/config.js";
import { permuteRope } from "../../src/models/hf/weights.js";
import { maxRelError, maxScaledError } from "../helpers/golden.js";

interface RopeCase {
  name: string; type: string; params: Record<string, unknown>; d: number; base: number;
  seq_len?: number; max_position_embeddings?: number; inv_freq: number[]; attention_factor: number;
}
const golden = JSON.parse(readFileSync(new URL("../fixtures/rope/rope.json", import.meta.url), "utf8")) as {
  cases: RopeCase[]; logn: { name: string; train_len: number; n?: number; positions?: number[]; q_scale: number | number[] }[];
};
const data = (f: string) => new URL(`../../data/${f}`, import.meta.url).pathname;

/** The golden's parameters as a RopeScaling: HF's types through the HF mapping, Su's two by their names. */
function scalingOf(c: RopeCase): RopeScaling | undefined {
  if (c.type === "ntk") return { type: "ntk", factor: c.params.factor as number };
  if (c.type === "mixed_base") return { type: "mixed_base", factor: c.params.factor as number, exponent: c.params.mixed_b as number };
  return fromHFRopeScaling(c.params, c.name);
}

describe("RoPE frequency schemes vs the PyTorch golden (HF's rope init functions, Su's posts)", () => {
  for (const c of golden.cases) {
    it(c.name, () => {
      // HF's dynamic NTK and the 4.4x YaRN read max_position_embeddings; the model's training length here
      const rot = new T.Rotary({ theta: c.base, scaling: scalingOf(c), trainLen: c.max_position_embeddings ?? 2048 });
      const f = rot.frequencies(c.d, c.seq_len ?? 0);
      const err = maxRelError(f.invFreq, c.inv_freq);
      assert.ok(err <= 1e-6, `inv_freq relative error ${err}`);
      assert.ok(Math.abs((f.mscale ?? 1) - c.attention_factor) <= 1e-12 * c.attention_factor, `attention factor ${f.mscale} vs ${c.attention_factor}`);
    });
  }
  it("log-n query scales equal the golden's max(1, ln(pos + 1) / ln L)", () => {
    for (const l of golden.logn) {
      const want = Array.isArray(l.q_scale) ? l.q_scale : [l.q_scale];
      const got = l.positions ? lognScales(Int32Array.from(l.positions), l.positions.length, l.train_len) : lognScales(l.n! - 1, 1, l.train_len);
      assert.ok(maxRelError(got ?? new Float64Array(want.length).fill(1), want) <= 1e-12, l.name);
    }
  });
});

describe("RoPE layouts", () => {
  it("stories260K with q/k rows permuted to rotate-half and ropeLayout half gives the interleaved logits", async () => {
    const model = await loadLlama2c(data("stories260K.bin"));
    const c = model.config, heads = c.nHeads, kvHeads = c.nKvHeads ?? c.nHeads;
    const half = new TransformerLM(parseModelConfig({ ...c, ropeLayout: "half" }));
    const sd = model.stateDict();
    for (const [name, t] of Object.entries(sd)) {
      if (!/attn\.w[qk]\.weight$/.test(name)) continue;
      const m = permuteRope({ data: t.toTypedArray() as Float32Array, shape: [...t.shape] }, name.includes("wq") ? heads : kvHeads, true);
      sd[name] = T.tensor(m.data, { shape: t.shape });
    }
    half.loadStateDict(sd);
    const ids = T.tensor(Int32Array.from({ length: 40 }, (_, i) => (i * 37 + 1) % c.vocabSize), { shape: [1, 40] });
    const a = model.forward(ids).logits.toTypedArray(), b = half.forward(ids).logits.toTypedArray();
    // float32: the two layouts sum q.k in different orders, so the bits differ
    assert.ok(maxScaledError(b, a) <= 1e-5, `max |a - b| / max |a| = ${maxScaledError(b, a)}`);
  });
});

describe("position config: one clear error each", () => {
  const base = { vocabSize: 11, dModel: 16, nLayers: 1, nHeads: 2, maxSeqLen: 32, dFF: 24 };
  it("an unknown scheme", () => {
    assert.throws(() => llamaConfig({ ...base, ropeScaling: { type: "ntk2", factor: 2 } }), /ropeScaling\.type: unknown RoPE scaling "ntk2"; expected one of linear, ntk, dynamic, yarn, llama3, mixed_base/);
  });
  it("a factor <= 0", () => {
    assert.throws(() => llamaConfig({ ...base, ropeScaling: { type: "linear", factor: 0 } }), /ropeScaling\.factor: Too small/);
    assert.throws(() => llamaConfig({ ...base, ropeScaling: { type: "yarn", factor: -2 } }), /ropeScaling\.factor/);
  });
  it("a parameter of another scheme", () => {
    assert.throws(() => llamaConfig({ ...base, ropeScaling: { type: "ntk", factor: 2, betaFast: 3 } }), /ropeScaling\.betaFast: not a parameter of RoPE scaling "ntk"/);
  });
  it("a ReRoPE window at or past the training length, and ReRoPE without exact attention", () => {
    assert.throws(() => llamaConfig({ ...base, rerope: { window: 32, leak: 0 } }), /rerope\.window 32 must be below the training length 32/);
    assert.throws(() => llamaConfig({ ...base, rerope: { window: 8, leak: 0 }, attention: "linear" }), /rerope needs attention "softmax" or "flash", got "linear"/);
    assert.throws(() => llamaConfig({ ...base, rerope: { window: 0, leak: 0 } }), /rerope\.window/);
  });
  it("RoPE options on a model without RoPE", () => {
    assert.throws(() => gpt2Config({ ...base, ropeScaling: { type: "linear", factor: 2 } }), /ropeScaling need position "rope", got "learned"/);
  });
  it("a learned-position model asked past its length", () => {
    const m = new TransformerLM(gpt2Config({ ...base, maxSeqLen: 8 }));
    assert.throws(() => m.forward(T.zeros([1, 9], { dtype: "int32" })), /9 positions exceed the 8 learned positions \(position "learned" cannot extrapolate/);
  });
  it("a RoPE model reads past its training length", () => {
    const m = new TransformerLM(llamaConfig({ ...base, maxSeqLen: 8 }));
    assert.deepEqual(m.forward(T.zeros([1, 20], { dtype: "int32" })).logits.shape, [1, 20, 11]);
  });
});
