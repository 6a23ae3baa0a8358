// The HF-facing commands end to end: convert between llama2.c, HF and tsformer directories (the real
// stories260K: same greedy text through every format), chat with a real chat template (history kept,
// replies streamed), tokenizer train + train --tokenizer, and their bad input.

import assert from "node:assert/strict";
import { copyFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { cliIn, failsWith, ok, root } from "./helpers/cli.js";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, describe, test } from "node:test";
import { runChat } from "../src/cli/chat.js";
import { runEval, runGenerate } from "../src/cli/generate.js";
import * as T from "../src/index.js";

const cli = cliIn();
const dir = mkdtempSync(join(tmpdir(), "tsformer-cli-hf-"));
after(() => rmSync(dir, { recursive: true, force: true }));


const greedy = (model: string) => ok(cli("generate", "--model", model, "--prompt", "Once upon a time", "--temperature", "0", "--max-new-tokens", "40"));

describe("tsformer convert", () => {
  const hf = join(dir, "stories-hf"), back = join(dir, "stories-l2c"), ours = join(dir, "stories-ts");
  test("llama2.c -> HF -> llama2.c / tsformer: the same greedy story from every format", () => {
    const reference = greedy("data/stories260K.bin");
    ok(cli("convert", "--from", "data/stories260K.bin", "--to", "hf", hf));
    for (const f of ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"]) assert.ok(existsSync(join(hf, f)), f);
    assert.equal(greedy(hf), reference);
    ok(cli("convert", "--from", hf, "--to", "llama2c", back));
    assert.ok(readFileSync(join(back, "model.bin")).subarray(0, 1_040_156).equals(readFileSync(join(root, "data/stories260K.bin")).subarray(0, 1_040_156)), "weights byte-identical to the original .bin");
    assert.equal(greedy(join(back, "model.bin")), reference);
    ok(cli("convert", "--from", hf, "--to", "tsformer", ours));
    assert.equal(greedy(ours), reference);
  });
  test("fine-tuning an HF model: train --init-from the HF directory, convert the checkpoint back to HF", async () => {
    const run = join(dir, "run-hf"), out = join(dir, "tuned-hf");
    ok(cli("train", "--init-from", hf, "--data", "data/tinystories-valid-head.txt", "--steps", "2", "--batch", "2", "--block", "32",
      "--lr", "1e-3", "--eval-interval", "2", "--eval-iters", "1", "--sample-tokens", "3", "--out", run));
    ok(cli("convert", "--from", join(run, "last"), "--to", "hf", out));
    assert.deepEqual((JSON.parse(readFileSync(join(out, "config.json"), "utf8")) as { architectures: string[] }).architectures, ["LlamaForCausalLM"]);
    assert.deepEqual(JSON.parse(readFileSync(join(out, "tokenizer.json"), "utf8")), JSON.parse(readFileSync(join(hf, "tokenizer.json"), "utf8")));
    const a = await T.loadModel(join(run, "last")), b = await T.loadModel(out), base = await T.loadModel(hf);
    const prompt = b.tokenizer!.encode("Once upon a time", { bos: true });
    const ids = T.tensor(Int32Array.from(prompt), { shape: [1, prompt.length] });
    assert.deepEqual(b.model.forward(ids).logits.toTypedArray(), a.model.forward(ids).logits.toTypedArray());
    assert.notDeepEqual(b.model.forward(ids).logits.toTypedArray(), base.model.forward(ids).logits.toTypedArray(), "the fine-tuned weights differ from the base");
  });
  test("bad input: an unknown format, an existing output", () => {
    failsWith(cli("convert", "--from", "data/stories260K.bin", "--to", "gguf", join(dir, "x")), /--to "gguf": expected one of hf, tsformer, llama2c/);
    failsWith(cli("convert", "--from", "data/stories260K.bin", "--to", "hf", hf), /exists and is not empty; pass overwrite \(--overwrite\)/);
  });
});

describe("tsformer chat", () => {
  const chatDir = join(dir, "stories-chat");
  test("renders the history with the model's template, streams each reply, keeps the turns", async () => {
    ok(cli("convert", "--from", "data/stories260K.bin", "--to", "hf", chatDir));
    // a real Llama-2 chat template (test/fixtures/chat-templates) on a Llama-2-tokenizer model
    const template = JSON.parse(readFileSync(join(root, "test/fixtures/chat-templates/llama-2-7b-chat-hf/tokenizer_config.json"), "utf8")) as Record<string, unknown>;
    const cfgFile = join(chatDir, "tokenizer_config.json");
    writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(readFileSync(cfgFile, "utf8")), chat_template: template.chat_template }));
    let streamed = "";
    const turns = await runChat({ model: chatDir, maxNewTokens: 12, temperature: 0, seed: 0, system: "Tell stories." },
      Readable.from(["Hi there\n", "Tell me about a cat\n"]), (s) => { streamed += s; });
    assert.equal(turns.length, 2);
    assert.match(turns[0]!.prompt, /^<s>\[INST\] <<SYS>>\nTell stories.\n<<\/SYS>>\n\nHi there \[\/INST\]$/);
    // the second prompt holds the first exchange, as the template renders it
    assert.ok(turns[1]!.prompt.startsWith(`${turns[0]!.prompt} ${turns[0]!.reply.trim()} </s><s>[INST] Tell me about a cat [/INST]`), turns[1]!.prompt);
    for (const t of turns) assert.ok(streamed.includes(t.reply));
    // each reply is what generate gives on the encoded prompt
    const { model, tokenizer } = await T.loadModel(chatDir);
    const r = T.generate(model, tokenizer!.encode(turns[1]!.prompt), { maxNewTokens: 12, temperature: 0, eosId: tokenizer!.eosId, tokenizer: tokenizer! });
    assert.equal(turns[1]!.reply, r.text);
  });
  test("the command line: a piped conversation, /reset, and a base model refused", () => {
    const r = cliIn(root, "Hello\n/reset\nHello\n")("chat", "--model", chatDir, "--temperature", "0", "--max-new-tokens", "5");
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.split("\n");
    assert.ok(lines.includes("(history cleared)"));
    // the same message after /reset gets the same greedy reply
    const replies = lines.filter((l) => l && !l.startsWith("(")); 
    assert.equal(replies.length, 2);
    assert.equal(replies[0], replies[1]);
    failsWith(cli("chat", "--model", join(dir, "stories-hf")), /has no chat template .* use `tsformer generate` instead/);
  });
  test("a broken chat template fails chat with the template's error; generate and eval never parse it", async () => {
    const broken = join(dir, "stories-broken-template");
    cpSync(chatDir, broken, { recursive: true });
    const cfgFile = join(broken, "tokenizer_config.json");
    writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(readFileSync(cfgFile, "utf8")), chat_template: "{% if messages %}unfinished" }));
    const o = { model: broken, prompt: "Once upon a time", maxNewTokens: 5, temperature: 0, seed: 0, stop: [] };
    assert.deepEqual((await runGenerate(o, () => true)).ids, (await runGenerate({ ...o, model: chatDir }, () => true)).ids);
    writeFileSync(join(dir, "short.txt"), "Once upon a time, there was a little cat.");
    assert.ok((await runEval({ model: broken, text: join(dir, "short.txt") })).tokens > 0);
    await assert.rejects(runChat({ model: broken, seed: 0 }, Readable.from(["Hi\n"]), () => {}), /tokenizer_config\.json: field "chat_template" .* does not parse/);
  });
});

describe("tsformer tokenizer train + train --tokenizer", () => {
  test("a BPE vocabulary learned on TinyStories trains a model whose checkpoint decodes with it", () => {
    const tok = join(dir, "tok");
    const corpus = join(dir, "stories.txt");
    copyFileSync(join(root, "data/tinystories-valid-head.txt"), corpus);
    const summary = JSON.parse(ok(cli("tokenizer", "train", "--data", corpus, "--vocab-size", "600", "--out", tok, "--json"))) as { vocabSize: number; bytesPerToken: number };
    assert.equal(summary.vocabSize, 600);
    assert.ok(summary.bytesPerToken > 2, `compression ${summary.bytesPerToken} bytes/token`);
    const run = join(dir, "run-bpe");
    ok(cli("train", "--data", corpus, "--tokenizer", join(tok, "tokenizer.json"), "--steps", "4", "--d-model", "32", "--n-layers", "1", "--block", "32", "--batch", "4",
      "--eval-interval", "2", "--eval-iters", "1", "--sample-tokens", "5", "--out", run));
    const ck = join(run, "last");
    assert.deepEqual(JSON.parse(readFileSync(join(ck, "tokenizer.json"), "utf8")), JSON.parse(readFileSync(join(tok, "tokenizer.json"), "utf8")));
    const cfg = JSON.parse(readFileSync(join(ck, "config.json"), "utf8")) as { vocabSize: number };
    assert.equal(cfg.vocabSize, 600);
    const text = ok(cli("generate", "--model", ck, "--prompt", "Once upon a time", "--max-new-tokens", "5", "--temperature", "0"));
    assert.ok(text.startsWith("Once upon a time"));
    ok(cli("train", "--resume", ck, "--steps", "6"));
  });
  test("bad input: a vocabulary too small, a tokenizer that is not a tokenizer", () => {
    failsWith(cli("tokenizer", "train", "--data", "data/tinyshakespeare.txt", "--vocab-size", "100", "--out", join(dir, "t2")), /vocab/i);
    failsWith(cli("train", "--tokenizer", "data/tinyshakespeare.txt", "--steps", "1", "--out", join(dir, "r2")), /tokenizer data\/tinyshakespeare\.txt is a text file; expected/);
  });
});
