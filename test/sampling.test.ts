// sampleNext on rows whose logits are not all finite. A repetition penalty < 1 divides a seen token's
// positive logit, past float32's range for a tiny penalty (2 / 1e-300 is +Infinity): softmax's limit
// gives the tokens holding +Infinity all the probability, shared evenly; the others get none.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as T from "../src/index.js";

const row = () => Float32Array.from([0, 2, 1, -1, 3]);

describe("sampleNext with infinite logits", () => {
  it("--repetition-penalty 1e-300 with --top-p 0.9: only the seen tokens with positive logits, half and half", () => {
    const counts = new Map<number, number>();
    for (let seed = 0; seed < 400; seed++) {
      const id = T.sampleNext(row(), [1, 2, 3], { repetitionPenalty: 1e-300, topP: 0.9, temperature: 0.7 }, new T.RandomGenerator(seed));
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    assert.deepEqual([...counts.keys()].sort(), [1, 2]);
    assert.ok(Math.abs(counts.get(1)! - 200) < 50, JSON.stringify([...counts]));  // binomial(400, 1/2): sd 10
    assert.equal(T.sampleNext(row(), [1, 2], { repetitionPenalty: 1e-300, temperature: 0 }, new T.RandomGenerator(0)), 1);  // argmax: the first +Infinity
  });

  it("a row that is -Infinity everywhere top-k keeps is uniform over those; a NaN logit is refused", () => {
    const ids = new Set<number>();
    for (let seed = 0; seed < 50; seed++) ids.add(T.sampleNext(Float32Array.from([-Infinity, -Infinity, -Infinity]), [], { topK: 2 }, new T.RandomGenerator(seed)));
    assert.deepEqual([...ids].sort(), [0, 1]);
    assert.throws(() => T.sampleNext(Float32Array.from([0, NaN, 1]), [], {}, new T.RandomGenerator(0)), /the logit of token 1 is NaN/);
  });

  it("generate with the penalty: every id is a token of the vocabulary; infinite penalties and temperatures are refused", () => {
    const m = new T.TransformerLM(T.gpt2Config({ vocabSize: 11, dModel: 16, nLayers: 1, nHeads: 2, maxSeqLen: 16 }), { generator: new T.RandomGenerator(3) });
    const { ids } = T.generate(m, [1, 2, 3, 4, 5], { maxNewTokens: 8, repetitionPenalty: 1e-300, topP: 0.9, seed: 1 });
    assert.ok(ids.length === 8 && ids.every((i) => Number.isInteger(i) && i >= 0 && i < 11), JSON.stringify(ids));
    assert.throws(() => T.generate(m, [1], { maxNewTokens: 1, repetitionPenalty: Infinity }), /repetitionPenalty must be a finite number > 0, got Infinity/);
    assert.throws(() => T.generate(m, [1], { maxNewTokens: 1, temperature: Infinity }), /temperature must be a finite number >= 0, got Infinity/);
  });
});
