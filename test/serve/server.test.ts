// `tsformer serve` on stories260K, through the official openai client and raw HTTP. Every expected
// text and count comes from generate() on the prompt alone and from the tokenizer, never from the server.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import * as T from "../../src/index.js";
import { startServer, type RunningServer } from "../../src/cli/serve.js";

const data = (f: string) => new URL(`../../data/${f}`, import.meta.url).pathname;
const model = await T.loadLlama2c(data("stories260K.bin"));
const tok = await T.Llama2cTokenizer.load(data("tok512.bin"), 512);
const lone = (prompt: number[], o: Partial<T.GenerateOptions> = {}) => T.generate(model, prompt, { maxNewTokens: 12, temperature: 0, tokenizer: tok, eosId: tok.eosId, ...o });
const completionIds = (text: string) => tok.encode(text, { bos: true });

// A chat template written here, so the rendered prompt is known: "user: ping\nassistant:"
const dir = mkdtempSync(join(tmpdir(), "tsformer-serve-"));
const template = join(dir, "chat.jinja");
writeFileSync(template, "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}");

const KEY = "sk-test-key";
let srv: RunningServer;
let client: OpenAI;

before(async () => {
  srv = await startServer({ model: data("stories260K.bin"), chatTemplate: template, host: "127.0.0.1", port: 0, apiKey: KEY, parallel: 16, maxQueue: 8, maxBody: 64 * 1024, modelName: "stories" }, () => {});
  client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: KEY, maxRetries: 0 });
});
after(async () => { await srv.close(); rmSync(dir, { recursive: true, force: true }); });

const post = (path: string, body: string | object, headers: Record<string, string> = { authorization: `Bearer ${KEY}` }) =>
  fetch(`${srv.url}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: typeof body === "string" ? body : JSON.stringify(body) });

describe("tsformer serve with the openai client", () => {
  it("completion, not streamed: the text and usage of generate() on the prompt alone", async () => {
    const r = await client.completions.create({ model: "stories", prompt: "Once upon a time", max_tokens: 12, temperature: 0 });
    const ref = lone(completionIds("Once upon a time"));
    assert.equal(r.object, "text_completion");
    assert.equal(r.choices[0].text, ref.text);
    assert.equal(r.choices[0].finish_reason, "length");
    assert.deepEqual(r.usage, { prompt_tokens: completionIds("Once upon a time").length, completion_tokens: ref.ids.length, total_tokens: completionIds("Once upon a time").length + ref.ids.length });
  });

  it("chat, streamed with include_usage: role first, the text of generate(), a usage chunk with empty choices", async () => {
    const prompt = tok.encode("user: ping\nassistant:");
    const ref = lone(prompt, { maxNewTokens: 8 });
    const stream = await client.chat.completions.create({ model: "stories", messages: [{ role: "user", content: "ping" }], max_tokens: 8, temperature: 0, stream: true, stream_options: { include_usage: true } });
    let text = "", role = "", finish = "", usage: OpenAI.CompletionUsage | null | undefined = null;
    for await (const c of stream) {
      assert.equal(c.object, "chat.completion.chunk");
      if (c.choices.length) {
        role ||= c.choices[0].delta.role ?? "";
        text += c.choices[0].delta.content ?? "";
        finish ||= c.choices[0].finish_reason ?? "";
      } else usage = c.usage;
    }
    assert.equal(role, "assistant");
    assert.equal(text, ref.text);
    assert.equal(finish, ref.stoppedBy === "length" ? "length" : "stop");
    assert.deepEqual(usage, { prompt_tokens: prompt.length, completion_tokens: ref.ids.length, total_tokens: prompt.length + ref.ids.length });
  });

  it("stop sequences cut the text as generate() does, streamed and not", async () => {
    const full = lone(completionIds("Once upon a time"), { maxNewTokens: 30 }).text!;
    const stop = "Lily";
    assert.ok(full.includes(stop), full);
    const ref = lone(completionIds("Once upon a time"), { maxNewTokens: 30, stop: [stop] });
    const r = await client.completions.create({ model: "stories", prompt: "Once upon a time", max_tokens: 30, temperature: 0, stop });
    assert.equal(r.choices[0].text, ref.text);
    assert.equal(r.choices[0].finish_reason, "stop");
    let streamed = "";
    for await (const c of await client.completions.create({ model: "stories", prompt: "Once upon a time", max_tokens: 30, temperature: 0, stop: [stop], stream: true })) streamed += c.choices[0]?.text ?? "";
    assert.equal(streamed, ref.text);
  });

  it("seed: sampled output is generate()'s with that seed; n = 2 gives choice i seed + i", async () => {
    const ids = completionIds("The cat");
    const r = await client.completions.create({ model: "stories", prompt: "The cat", max_tokens: 10, temperature: 1, seed: 42, n: 2 });
    assert.equal(r.choices.length, 2);
    assert.equal(r.choices[0].text, lone(ids, { maxNewTokens: 10, temperature: 1, seed: 42 }).text);
    assert.equal(r.choices[1].text, lone(ids, { maxNewTokens: 10, temperature: 1, seed: 43 }).text);
    const again = await client.completions.create({ model: "stories", prompt: "The cat", max_tokens: 10, temperature: 1, seed: 42 });
    assert.equal(again.choices[0].text, r.choices[0].text);
    assert.equal(r.usage!.completion_tokens, r.choices.reduce((a, c) => a + lone(ids, { maxNewTokens: 10, temperature: 1, seed: 42 + c.index }).ids.length, 0));
  });

  it("chat logprobs: the chosen token's log-probability leads its top alternatives", async () => {
    const r = await client.chat.completions.create({ model: "stories", messages: [{ role: "user", content: "ping" }], max_tokens: 3, temperature: 0, logprobs: true, top_logprobs: 3 });
    const lp = r.choices[0].logprobs!.content!;
    assert.equal(lp.length, r.usage!.completion_tokens);
    for (const t of lp) {
      assert.equal(t.top_logprobs.length, 3);
      assert.equal(t.top_logprobs[0].logprob, t.logprob);  // greedy picks the most likely
      assert.ok(t.logprob <= 0 && t.top_logprobs[1].logprob <= t.logprob);
    }
  });

  it("16 concurrent streaming clients each get what a lone request gets", async () => {
    const prompts = Array.from({ length: 16 }, (_, i) => ["Once upon a time", "The dog", "Lily saw", "Tom and Sue"][i % 4] + " ".repeat(i % 3));
    const texts = await Promise.all(prompts.map(async (p) => {
      let s = "";
      for await (const c of await client.completions.create({ model: "stories", prompt: p, max_tokens: 10, temperature: 0, stream: true })) s += c.choices[0]?.text ?? "";
      return s;
    }));
    prompts.forEach((p, i) => assert.equal(texts[i], lone(completionIds(p), { maxNewTokens: 10 }).text, p));
  });

  it("/v1/models lists the model; /tokenize and /detokenize agree with the tokenizer", async () => {
    const models = await client.models.list();
    assert.deepEqual(models.data.map((m) => m.id), ["stories"]);
    const t = await (await post("/tokenize", { prompt: "Once upon a time" })).json() as { tokens: number[]; count: number; max_model_len: number };
    assert.deepEqual(t.tokens, completionIds("Once upon a time"));
    assert.equal(t.max_model_len, 512);
    const d = await (await post("/detokenize", { tokens: t.tokens })).json() as { prompt: string };
    assert.equal(d.prompt, tok.decode(t.tokens));
  });

  it("Dify's validation request: 200 with object chat.completion", async () => {
    const res = await post("/v1/chat/completions", { model: "stories", messages: [{ role: "user", content: "ping" }], max_tokens: 5, stream: false });
    assert.equal(res.status, 200);
    const body = await res.json() as { object: string; choices: { message: { role: string } }[]; usage: { completion_tokens: number } };
    assert.equal(body.object, "chat.completion");
    assert.equal(body.choices[0].message.role, "assistant");
    assert.ok(body.usage.completion_tokens <= 5);
  });
});

describe("tsformer serve refuses bad requests with OpenAI's error body and keeps answering", () => {
  const expectError = async (res: Response, status: number, message: RegExp, param?: string) => {
    assert.equal(res.status, status);
    const body = await res.json() as { error: { message: string; type: string; param: string | null; code: string | null } };
    assert.match(body.error.message, message);
    assert.equal(typeof body.error.type, "string");
    if (param !== undefined) assert.equal(body.error.param, param);
  };
  const ok = { model: "stories", prompt: "Once", max_tokens: 2 };

  it("malformed JSON, wrong types, unknown fields' values, huge max_tokens, a prompt over the context", async () => {
    await expectError(await post("/v1/completions", "{\"model\": \"stories\", "), 400, /not valid JSON/);
    await expectError(await post("/v1/completions", { ...ok, max_tokens: "5" }), 400, /max_tokens: .*expected number/i, "max_tokens");
    await expectError(await post("/v1/chat/completions", { model: "stories", messages: "hi" }), 400, /messages: .*expected array/i, "messages");
    await expectError(await post("/v1/completions", { ...ok, temperature: 5 }), 400, /temperature/, "temperature");
    await expectError(await post("/v1/completions", [1, 2]), 400, /must be a JSON object/);
    await expectError(await post("/v1/completions", { ...ok, prompt: 1 }), 400, /prompt: expected a string or a non-empty array of token ids/, "prompt");
    const P = completionIds("Once").length;
    await expectError(await post("/v1/completions", { ...ok, max_tokens: 1_000_000 }), 400, new RegExp(`maximum context length is 512 tokens.*${P + 1_000_000} tokens \\(${P} in the prompt, 1000000 for the completion\\)`), "max_tokens");
    const long = "Once upon a time there was a little girl. ".repeat(60);
    const n = completionIds(long).length;
    assert.ok(n > 512);
    await expectError(await post("/v1/completions", { ...ok, prompt: long }), 400, new RegExp(`context length is 512 tokens; the prompt has ${n} tokens`), "prompt");
    await expectError(await post("/v1/completions", { ...ok, logit_bias: { 99999: 1 } }), 400, /token id 99999 is outside the vocabulary/, "logit_bias");
  });

  it("a body over --max-body: 413; an unknown model: 404; a bad or missing key: 401; an unknown route: 404", async () => {
    await expectError(await post("/v1/completions", { ...ok, prompt: "x".repeat(70 * 1024) }), 413, /exceeds the server's --max-body of 65536 bytes/);
    await expectError(await post("/v1/completions", { ...ok, model: "gpt-4" }), 404, /model `gpt-4` does not exist/, "model");
    await expectError(await post("/v1/completions", ok, { authorization: "Bearer wrong" }), 401, /Incorrect API key/);
    await expectError(await post("/v1/completions", ok, {}), 401, /Missing API key/);
    await expectError(await post("/v1/embeddings", ok), 404, /Unknown route POST \/v1\/embeddings/);
    const health = await fetch(`${srv.url}/health`);
    assert.equal(health.status, 200);
    const r = await client.completions.create({ model: "stories", prompt: "Once", max_tokens: 2, temperature: 0 });
    assert.equal(r.choices[0].text, lone(completionIds("Once"), { maxNewTokens: 2 }).text);
  });
});
