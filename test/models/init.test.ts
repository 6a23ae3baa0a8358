// Every init scheme starts at a loss within 0.1 nats of ln(vocab) (near-uniform predictions), on
// fresh random data, and every placement builds and runs.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as T from "../../src/index.js";
import { TransformerLM } from "../../src/models/transformer.js";
import { gpt2Config, llamaConfig, INIT_SCHEMES } from "../../src/models/config.js";

const V = 97;

function step0Loss(model: TransformerLM, seed: number): number {
  const g = new T.RandomGenerator(seed);
  const x = T.randint(V, [4, 32], { generator: g }), y = T.randint(V, [4, 32], { generator: g });
  return T.noGrad(() => T.crossEntropy(model.forward(x).logits.reshape(-1, V), y.reshape(-1)).item());
}

describe("step-0 loss is ~ln(vocab) for every init scheme", () => {
  for (const init of INIT_SCHEMES) {
    for (const layout of ["gpt2", "llama"] as const) {
      it(`${init} / ${layout}`, () => {
        const base = { vocabSize: V, dModel: 64, nLayers: 4, nHeads: 4, maxSeqLen: 32, init };
        const cfg = layout === "gpt2"
          ? gpt2Config({ ...base, tieEmbeddings: false, normPlacement: init === "deepnorm" ? "deepnorm" : "pre" })
          : llamaConfig({ ...base, dFF: 128, nKvHeads: 2, normPlacement: init === "deepnorm" ? "deepnorm" : "pre" });
        const loss = step0Loss(new TransformerLM(cfg, { generator: new T.RandomGenerator(3) }), 5);
        assert.ok(Math.abs(loss - Math.log(V)) < 0.1, `${init}/${layout}: step-0 loss ${loss} vs ln(V) ${Math.log(V)}`);
      });
    }
  }
});

describe("step-0 loss is ~ln(vocab) for every attention variant", () => {
  for (const attention of Object.keys(T.ATTENTION_VARIANTS)) {
    it(attention, () => {
      const cfg = gpt2Config({ vocabSize: V, dModel: 64, nLayers: 2, nHeads: 4, maxSeqLen: 32, attention });
      const loss = step0Loss(new TransformerLM(cfg, { generator: new T.RandomGenerator(3) }), 6);
      assert.ok(Math.abs(loss - Math.log(V)) < 0.1, `${attention}: step-0 loss ${loss} vs ln(V) ${Math.log(V)}`);
    });
  }
});

describe("model config validation", () => {
  it("rejects an unknown key and names it", () => {
    assert.throws(() => gpt2Config({ vocabSize: 5, dModel: 8, nLayers: 1, nHeads: 2, maxSeqLen: 4, nEmbd: 3 } as never), /nEmbd/);
  });
  it("rejects heads that do not divide the width, and kv heads that do not divide heads", () => {
    assert.throws(() => gpt2Config({ vocabSize: 5, dModel: 10, nLayers: 1, nHeads: 3, maxSeqLen: 4 }), /divisible by nHeads/);
    assert.throws(() => llamaConfig({ vocabSize: 5, dModel: 12, nLayers: 1, nHeads: 6, nKvHeads: 4, maxSeqLen: 4, dFF: 8 }), /must divide nHeads/);
  });
  it("a sequence longer than the context is an error, not a silent wrap", () => {
    const m = new TransformerLM(gpt2Config({ vocabSize: 5, dModel: 8, nLayers: 1, nHeads: 2, maxSeqLen: 4 }));
    assert.throws(() => m.forward(T.zeros([1, 5], { dtype: "int32" })), /exceed the 4 learned positions \(position "learned" cannot extrapolate/);
  });
});
