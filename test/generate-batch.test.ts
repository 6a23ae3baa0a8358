// The batched engine (generate/batch.ts) against generate() run on each sequence alone: the same ids
// and text, greedy and sampled per seed, with sequences joining and leaving between steps.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as T from "../src/index.js";

const data = (f: string) => new URL(`../data/${f}`, import.meta.url).pathname;
const model = await T.loadLlama2c(data("stories260K.bin"));
const tok = await T.Llama2cTokenizer.load(data("tok512.bin"), 512);
const enc = (s: string) => tok.encode(s, { bos: true });
const prompts = ["Once upon a time", "Lily and Tom went to the park to play with a big red ball", "The", "One day, a little bird"].map(enc);

describe("BatchEngine on stories260K", () => {
  it("decodes ragged batches (one forward per step) and greedy output equals generate() on each prompt alone", () => {
    const engine = new T.BatchEngine(model);
    assert.equal(engine.ragged, true);
    const out = T.generateBatch(model, prompts.map((prompt) => ({ prompt, maxNewTokens: 20, temperature: 0, tokenizer: tok })));
    prompts.forEach((prompt, i) => {
      const alone = T.generate(model, prompt, { maxNewTokens: 20, temperature: 0, tokenizer: tok });
      assert.deepEqual(out[i].ids, alone.ids);
      assert.equal(out[i].text, alone.text);
      assert.equal(out[i].stoppedBy, alone.stoppedBy);
    });
  });

  it("sampling with a seed per sequence equals generate() with that seed; n > 1 draws choice i with seed + i", () => {
    const opts = [{ temperature: 0.9, topK: 40, seed: 1 }, { temperature: 1, topP: 0.9, seed: 2 }, { temperature: 0.7, seed: 3 }, { temperature: 1.2, repetitionPenalty: 1.3, seed: 4 }];
    const out = T.generateBatch(model, prompts.map((prompt, i) => ({ prompt, maxNewTokens: 16, ...opts[i] })));
    prompts.forEach((prompt, i) => assert.deepEqual(out[i].ids, T.generate(model, prompt, { maxNewTokens: 16, ...opts[i] }).ids));
    const engine = new T.BatchEngine(model);
    const ids = engine.add({ prompt: prompts[0], maxNewTokens: 12, temperature: 1, seed: 7 }, 3);
    const done = engine.runToEnd();
    ids.forEach((id, i) => assert.deepEqual(done.get(id)!.ids, T.generate(model, prompts[0], { maxNewTokens: 12, temperature: 1, seed: 7 + i }).ids));
  });

  it("continuous batching: sequences join mid-way and a cancelled one leaves; the others are unchanged", () => {
    const engine = new T.BatchEngine(model);
    const [a] = engine.add({ prompt: prompts[0], maxNewTokens: 15, temperature: 0 });
    const [c] = engine.add({ prompt: prompts[2], maxNewTokens: 15, temperature: 0.8, seed: 5 });
    const results = new Map<number, T.SequenceResult>();
    const take = () => { for (const e of engine.step()) if (e.done) results.set(e.seq, e.done); };
    for (let i = 0; i < 4; i++) take();
    const [b] = engine.add({ prompt: prompts[1], maxNewTokens: 15, temperature: 1, seed: 9 });
    take();
    assert.equal(engine.cancel(c), true);
    assert.equal(engine.size, 2);
    while (engine.size) take();
    assert.deepEqual(results.get(a)!.ids, T.generate(model, prompts[0], { maxNewTokens: 15, temperature: 0 }).ids);
    assert.deepEqual(results.get(b)!.ids, T.generate(model, prompts[1], { maxNewTokens: 15, temperature: 1, seed: 9 }).ids);
    assert.equal(results.has(c), false);
  });

  it("stop strings: the streamed pieces hold back a possible stop prefix and add up to generate()'s cut text", () => {
    const o = { maxNewTokens: 40, temperature: 0, tokenizer: tok, stop: ["park"] };
    const alone = T.generate(model, prompts[0], o);
    assert.equal(alone.stoppedBy, "stop");
    const engine = new T.BatchEngine(model);
    engine.add({ prompt: prompts[0], ...o });
    let text = "", done: T.SequenceResult | undefined;
    while (engine.size) for (const e of engine.step()) { text += e.text; assert.ok(!text.includes("par") || e.done, text); done = e.done ?? done; }
    assert.equal(text, alone.text);
    assert.deepEqual(done!.ids, alone.ids);
  });

  it("logprobs equal log-softmax of a full forward's logits; a full context ends with length", () => {
    const [r] = T.generateBatch(model, [{ prompt: prompts[2], maxNewTokens: 4, temperature: 0, logprobs: 2 }]);
    const all = [...prompts[2], ...r.ids];
    const logits = model.forward(T.tensor(Int32Array.from(all), { shape: [1, all.length] })).logits.toTypedArray();
    const V = 512;
    r.tokens.forEach((t, k) => {
      const row = Array.from(logits.slice((prompts[2].length - 1 + k) * V, (prompts[2].length + k) * V));
      const lse = Math.log(row.reduce((a, v) => a + Math.exp(v), 0));
      assert.ok(Math.abs(t.logprob! - (row[t.id] - lse)) < 1e-4);
      assert.equal(t.top![0].id, t.id);  // greedy: the chosen token is the most likely
    });
    const [full] = T.generateBatch(model, [{ prompt: prompts[1], maxNewTokens: 100 }], { context: prompts[1].length + 3 });
    assert.equal(full.ids.length, 4);
    assert.equal(full.stoppedBy, "length");
  });

  it("SeqContext.ragged: one forward of segments gives each sequence's logits as its own forward does; bad input is refused", () => {
    const [a, b] = [prompts[0], prompts[2]];
    const sa = model.newState(64), sb = model.newState(64);
    const both = model.forward(T.tensor(Int32Array.from([...a, ...b]), { shape: [1, a.length + b.length] }), T.SeqContext.ragged([sa, sb], [a.length, b.length])).logits.toTypedArray();
    const alone = [a, b].flatMap((p) => [...model.forward(T.tensor(Int32Array.from(p), { shape: [1, p.length] })).logits.toTypedArray()]);
    assert.equal(both.length, alone.length);
    assert.ok(both.every((v, i) => Math.abs(v - alone[i]) < 1e-4), "ragged logits differ");
    assert.deepEqual([sa.length, sb.length], [a.length, b.length]);
    // the next token continues each state at its own position
    const ctx = T.SeqContext.ragged([sa, sb], [1, 1]);
    assert.deepEqual([...ctx.positions!], [a.length, b.length]);
    assert.throws(() => T.SeqContext.ragged([sa], [1, 2]), /one length >= 1 per state expected, got 1 states and lengths \[1, 2\]/);
    assert.throws(() => new T.SeqContext({ segments: { offsets: Int32Array.from([0, 1]), states: [sa] }, state: sb, positions: Int32Array.from([0]) }), /ragged segments carry their own states/);
    assert.throws(() => model.forward(T.tensor(Int32Array.from([1, 2, 3]), { shape: [1, 3] }), T.SeqContext.ragged([model.newState(8)], [2])), /2 positions for 1 x 3 tokens/);
    assert.throws(() => model.forward(T.tensor(Int32Array.from([1, 2, 3, 4]), { shape: [2, 2] }), T.SeqContext.ragged([model.newState(8)], [2])), /ragged segments of 2 tokens in one row, but the input is \[2, 2\]/);
  });

  it("a model whose mixer cannot take ragged segments decodes one sequence per forward, with the same output", () => {
    const m = new T.TransformerLM(T.gpt2Config({ vocabSize: 11, dModel: 16, nLayers: 1, nHeads: 2, maxSeqLen: 32, attention: "linear" }), { generator: new T.RandomGenerator(3) });
    const engine = new T.BatchEngine(m);
    assert.equal(engine.ragged, false);
    const ps = [[1, 2, 3], [4]];
    const out = T.generateBatch(m, ps.map((prompt) => ({ prompt, maxNewTokens: 6, temperature: 0.9, seed: 2 })));
    ps.forEach((p, i) => assert.deepEqual(out[i].ids, T.generate(m, p, { maxNewTokens: 6, temperature: 0.9, seed: 2 }).ids));
  });
});
