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

// The additions of the server's sampling: expected values computed by hand from the definitions.
describe("sampling additions: penalties, logit bias, min-p, typical-p, logprobs", () => {
  it("frequency / presence penalties count the generated tokens only (OpenAI: logit -= f * count + p * (count > 0))", () => {
    const logits = Float32Array.from([1, 2, 3, 0]);
    // token 2 twice, token 0 once: 3 - (0.5 * 2 + 0.25) = 1.75, 1 - (0.5 + 0.25) = 0.25; the prompt's token 1 is not penalized
    T.sampleNext(logits, [1, 2, 2, 0], { temperature: 0, frequencyPenalty: 0.5, presencePenalty: 0.25 }, new T.RandomGenerator(0), [2, 2, 0]);
    assert.deepEqual([...logits], [0.25, 2, 1.75, 0]);
    assert.equal(T.sampleNext(Float32Array.from([1, 2, 3, 0]), [], { temperature: 0, frequencyPenalty: 0.5 }, new T.RandomGenerator(0), [2, 2, 2]), 1);
  });

  it("logit bias is added before everything else (a +10 bias makes the last token the argmax)", () => {
    const o = { temperature: 0, logitBias: new Map([[3, 10]]) };
    assert.equal(T.sampleNext(Float32Array.from([1, 2, 3, 0]), [], o, new T.RandomGenerator(0)), 3);
    assert.throws(() => T.validateSampling({ logitBias: new Map([[-1, 1]]) }), /logitBias must be a map of token ids/);
  });

  const probs = [0.5, 0.3, 0.15, 0.05];
  const row = () => Float64Array.from(probs, Math.log);
  it("min-p keeps tokens with p >= minP * max p", () => {
    assert.deepEqual(T.samplingWeights(row(), [], { minP: 0.2 }).ids, [0, 1, 2]);  // threshold 0.1
    assert.deepEqual(T.samplingWeights(row(), [], { minP: 0.7 }).ids, [0]);  // threshold 0.35
  });

  it("typical-p (Meister et al. 2022): the tokens closest to the entropy, by cumulative mass", () => {
    // H = 1.1421 nats; |-log p - H| = 0.449, 0.062, 0.755, 1.853: order 1, 0, 2, 3 with cumulative 0.3, 0.8, 0.95, 1
    assert.deepEqual(T.samplingWeights(row(), [], { typicalP: 0.5 }).ids, [0, 1]);
    assert.deepEqual(T.samplingWeights(row(), [], { typicalP: 0.9 }).ids, [0, 1, 2]);
    assert.deepEqual(T.samplingWeights(row(), [], { typicalP: 0.2 }).ids, [1]);
    const w = T.samplingWeights(row(), [], { typicalP: 0.9 });
    assert.ok(Math.abs(w.weights[1] / w.total - 0.3 / 0.95) < 1e-12);
  });

  it("tokenLogprobs: log-softmax of the row, top alternatives descending with ties in id order", () => {
    const r = T.tokenLogprobs(Float32Array.from([0, Math.log(2), 0]), 2, 2);
    assert.ok(Math.abs(r.logprob - Math.log(0.25)) < 1e-6);
    assert.deepEqual(r.top.map((t) => t.id), [1, 0]);
    assert.ok(Math.abs(r.top[0].logprob - Math.log(0.5)) < 1e-6);
    assert.deepEqual(T.tokenLogprobs(Float32Array.from([3, 1, 2, 5, 4]), 0, 5).top.map((t) => t.id), [3, 4, 0, 2, 1]);
    assert.deepEqual(T.tokenLogprobs(Float32Array.from([3, 1]), 0, 0).top, []);
  });

  it("bad values name the option", () => {
    assert.throws(() => T.validateSampling({ minP: 2 }), /minP must be in \[0, 1\], got 2/);
    assert.throws(() => T.validateSampling({ typicalP: 0 }), /typicalP must be in \(0, 1\], got 0/);
    assert.throws(() => T.validateSampling({ presencePenalty: NaN }), /presencePenalty must be a finite number, got NaN/);
  });
});

describe("sortedIds", () => {
  it("equals the stable comparator sort (descending, ties in id order) on rows with ties, zeros of both signs and infinities", () => {
    const g = new T.RandomGenerator(5);
    const u = new Float64Array(4000);
    g.uniform(u);
    const specials = [0, -0, Infinity, -Infinity, 1e-38, -1e-38, 3.4e38, 1.5, -1.5];
    const row = Float32Array.from(u, (x, i) => (i % 7 === 0 ? specials[i % specials.length] : i % 5 === 0 ? Math.round(x * 4) / 4 : (x - 0.5) * 20));
    const reference = Array.from(row.keys()).sort((a, b) => (row[a] > row[b] ? -1 : row[a] < row[b] ? 1 : 0));
    assert.deepEqual(T.sortedIds(row), reference);
    assert.deepEqual(T.sortedIds(Float64Array.from(row)), reference);
  });
});
