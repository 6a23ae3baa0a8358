import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CharTokenizer, CharTokenizerError } from "../src/tokenizers/char.js";
import { Llama2cTokenizer, Llama2cTokenizerError } from "../src/tokenizers/llama2c.js";
import { decodeStream, type Tokenizer } from "../src/tokenizers/tokenizer.js";

const TOK = "data/tok512.bin";
// SOURCES.md: greedy ids of stories260K from BOS, and the text they begin with.
const REF_IDS = "403 407 261 378 432 383 286 261 376 298 315 421 395 317 426 338 401 396 267 337 410 408 419 292 411 322 265 282 295 433 426 385 328 432 358 394 261 370 432 352"
  .split(" ").map(Number);
const REF_TEXT = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball.";

const streamed = (tok: Tokenizer, ids: number[]) => {
  const s = decodeStream(tok);
  const chunks = ids.map((id) => s.push(id));
  return { chunks, text: chunks.join("") + s.flush() };
};

/** Straight transliteration of llama2.c run.c `encode` (O(n^2) merge loop), as an oracle. */
function naiveEncode(tok: Llama2cTokenizer, text: string, bos: boolean): number[] {
  const find = (s: string) => tok.pieces.indexOf(s);
  const tokens: number[] = bos ? [1] : [];
  if (text !== "") tokens.push(find(" "));
  const b = Buffer.from(text, "utf8");
  let buf: number[] = [];
  for (let c = 0; c < b.length; c++) {
    if ((b[c]! & 0xc0) !== 0x80) buf = [];
    buf.push(b[c]!);
    if (c + 1 < b.length && (b[c + 1]! & 0xc0) === 0x80 && buf.length < 4) continue;
    const id = find(Buffer.from(buf).toString("latin1"));
    if (id !== -1) tokens.push(id);
    else for (const x of buf) tokens.push(x + 3);
    buf = [];
  }
  for (;;) {
    let best = Math.fround(-1e10), bestId = -1, bestIdx = -1;
    for (let i = 0; i < tokens.length - 1; i++) {
      const id = find(tok.pieces[tokens[i]!]! + tok.pieces[tokens[i + 1]!]!);
      if (id !== -1 && tok.scores[id]! > best) [best, bestId, bestIdx] = [tok.scores[id]!, id, i];
    }
    if (bestIdx === -1) break;
    tokens.splice(bestIdx, 2, bestId);
  }
  return tokens;
}

test("char tokenizer: Shakespeare vocabulary, round trip, JSON", async () => {
  const text = await readFile("data/tinyshakespeare.txt", "utf8");
  const tok = CharTokenizer.fromText(text);
  assert.equal(tok.vocabSize, 65);
  assert.equal(tok.vocab.join(""), "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
  const ids = tok.encode(text);
  assert.equal(ids.length, text.length);
  assert.equal(tok.decode(ids), text);
  const back = CharTokenizer.fromJSON(JSON.parse(JSON.stringify(tok)));
  assert.deepEqual(back.encode("First Citizen:\n"), tok.encode("First Citizen:\n"));
  assert.equal(streamed(tok, ids.slice(0, 500)).text, text.slice(0, 500));
});

test("char tokenizer: code points, errors naming character and position", () => {
  const tok = CharTokenizer.fromText("ba😀é");
  assert.deepEqual(tok.vocab, ["a", "b", "é", "😀"]);
  assert.deepEqual(tok.encode("😀ab"), [3, 0, 1]);
  assert.throws(() => tok.encode("abXa"), (e: Error) => e instanceof CharTokenizerError && /"X" \(U\+0058\) at position 2/.test(e.message));
  assert.throws(() => tok.encode("😀😀z"), /"z" \(U\+007A\) at position 2/);
  assert.throws(() => tok.encode("a", { bos: true }), /no BOS\/EOS/);
  assert.throws(() => tok.decode([0, 4]), /id 4 at position 1 is out of range/);
  assert.throws(() => CharTokenizer.fromJSON({ type: "bpe", vocab: ["a"] }, "ck/tokenizer.json"), /ck\/tokenizer.json: "type" is "bpe"; expected "char"/);
  assert.throws(() => CharTokenizer.fromJSON({ type: "char", vocab: ["b", "a"] }), /"vocab"\[1\] "a" \(U\+0061\) is out of order/);
  assert.throws(() => CharTokenizer.fromJSON({ type: "char", vocab: ["ab"] }), /"vocab"\[0\] is "ab"; expected a single character/);
  assert.throws(() => CharTokenizer.fromText(""), /corpus is empty/);
});

test("llama2c tokenizer: file facts, vocab size from caller or inferred", async () => {
  const tok = await Llama2cTokenizer.load(TOK, 512);
  const inferred = await Llama2cTokenizer.load(TOK);
  assert.equal(tok.vocabSize, 512);
  assert.equal(inferred.vocabSize, 512);
  assert.deepEqual(inferred.pieces, tok.pieces);
  assert.equal(tok.maxTokenLength, 7);
  assert.deepEqual(tok.pieces.slice(0, 4), ["<unk>", "\n<s>\n", "\n</s>\n", "<0x00>"]);
  assert.equal(tok.pieces[258], "<0xFF>");
  assert.equal(tok.pieces[403], " Once");
});

test("llama2c tokenizer: decodes the reference greedy ids of stories260K", async () => {
  const tok = await Llama2cTokenizer.load(TOK, 512);
  const text = tok.decode([1, ...REF_IDS]);
  // The 40 ids are a prefix of the generation: they stop inside "red" (last id 352 is " r").
  assert.equal(text, REF_TEXT.slice(0, REF_TEXT.length - "ed ball.".length));
  // Without the BOS before it, run.c keeps the leading space of " Once".
  assert.equal(tok.decode(REF_IDS), ` ${text}`);
  const s = streamed(tok, [1, ...REF_IDS]);
  assert.equal(s.text, text);
  assert.equal(s.chunks[1], "Once");
  // encode(decoded text) round-trips, and here even reproduces the model's ids.
  const ids = tok.encode(text, { bos: true });
  assert.equal(tok.decode(ids), text);
  assert.deepEqual(ids, [1, ...REF_IDS]);
  assert.deepEqual(tok.encode(text, { bos: true, eos: true }), [1, ...REF_IDS, 2]);
  assert.equal(tok.decode(tok.encode(REF_TEXT, { bos: true })), REF_TEXT);
  assert.deepEqual(tok.encode(""), []);
  assert.deepEqual(tok.encode("", { bos: true }), [1]);
});

test("llama2c tokenizer: non-ASCII uses byte fallback and decodes back exactly, also streamed", async () => {
  const tok = await Llama2cTokenizer.load(TOK, 512);
  for (const text of ["naïve café 😀", "\uFEFFBOM stays", "日本語 and Ελληνικά", "tab\tnew\nline  two  spaces"]) {
    const ids = tok.encode(text, { bos: true });
    assert.equal(tok.decode(ids), text);
    const s = streamed(tok, ids);
    assert.equal(s.text, text);
    for (const c of s.chunks) assert.ok(!c.includes("\uFFFD"), `broken character streamed for ${JSON.stringify(text)}`);
  }
  const emoji = tok.encode("😀");
  assert.deepEqual(emoji.slice(-4), [...Buffer.from("😀")].map((b) => b + 3));
  const ids = tok.encode("naïve");
  assert.ok(ids.includes(0xc3 + 3) && ids.includes(0xaf + 3), `ï as bytes <0xC3><0xAF>: ${ids}`);
});

test("llama2c tokenizer: heap merge equals run.c's naive merge loop on random text", async () => {
  const tok = await Llama2cTokenizer.load(TOK, 512);
  let seed = 12345;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
  const extra = ["é", "ü", "😀", "\n", "  ", ".", "中", "\u0000"];
  for (let t = 0; t < 300; t++) {
    let text = "";
    const parts = 1 + rand(30);
    for (let k = 0; k < parts; k++) {
      text += rand(4) === 0 ? extra[rand(extra.length)] : tok.pieces[259 + rand(tok.vocabSize - 259)];
    }
    const bos = rand(2) === 0;
    assert.deepEqual(tok.encode(text, { bos }), naiveEncode(tok, text, bos), JSON.stringify(text));
    assert.equal(tok.decode(tok.encode(text, { bos: true })), text);
  }
});

test("llama2c tokenizer: broken files give one clear error", async () => {
  const dir = await mkdtemp(join(tmpdir(), "tsformer-tok-"));
  try {
    const good = await readFile(TOK);
    const write = async (name: string, bytes: Uint8Array) => { const f = join(dir, name); await writeFile(f, bytes); return f; };
    const cut = await write("tok512.bin", good.subarray(0, 300));
    await assert.rejects(Llama2cTokenizer.load(cut, 512), (e: Error) =>
      e instanceof Llama2cTokenizerError && /tok512\.bin: truncated at token 21 of 512: expected 4-byte int32 length at byte 300/.test(e.message));
    await assert.rejects(Llama2cTokenizer.load(await write("t1.bin", good.subarray(0, 6)), 512), /t1\.bin: truncated at token 0 of 512: expected 4-byte float32 score at byte 4/);
    await assert.rejects(Llama2cTokenizer.load(await write("t2.bin", good.subarray(0, 10))), /t2\.bin: truncated at token 0: expected 4-byte int32 length at byte 8/);
    await assert.rejects(Llama2cTokenizer.load(await write("t3.bin", good.subarray(0, 2))), /t3\.bin: file is 2 bytes; expected at least a 4-byte int32 max_token_length/);
    await assert.rejects(Llama2cTokenizer.load(await write("t4.bin", Buffer.concat([good, Buffer.alloc(3)])), 512), /t4\.bin: 3 trailing bytes after 512 tokens/);
    await assert.rejects(Llama2cTokenizer.load(await write("t5.bin", good), 1000), /t5\.bin: truncated at token 512 of 1000: expected 4-byte float32 score/);
    const garbled = Buffer.from(good);
    garbled.writeInt32LE(1_000_000, 4 + 4); // length of token 0
    await assert.rejects(Llama2cTokenizer.load(await write("t6.bin", garbled)), /t6\.bin: token 0 has length 1000000 at byte 8; expected 0\.\.7/);
    await assert.rejects(Llama2cTokenizer.load(join(dir, "missing.bin")), /missing\.bin: cannot read the tokenizer file/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
