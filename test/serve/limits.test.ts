// `tsformer serve` at its limits: one slot (--parallel 1, --max-queue 0) is full -> 429; a client that
// disconnects mid-stream frees the slot; shutdown lets the stream in flight finish; bad CLI input
// gets one clear error each.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as T from "../../src/index.js";
import { startServer } from "../../src/cli/serve.js";

const root = new URL("../../", import.meta.url).pathname;
const data = (f: string) => `${root}data/${f}`;
const model = await T.loadLlama2c(data("stories260K.bin"));
const tok = await T.Llama2cTokenizer.load(data("tok512.bin"), 512);
const lone = (p: string, n: number) => T.generate(model, tok.encode(p, { bos: true }), { maxNewTokens: n, temperature: 0, tokenizer: tok, eosId: tok.eosId }).text;

/** Reads an SSE response until `until` is true of the text so far (or the end); returns the text of its choices. */
async function readStream(res: Response, until = (_: string) => false): Promise<string> {
  const reader = res.body!.getReader(), dec = new TextDecoder();
  let buf = "", text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return text;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const rec = buf.slice(0, i).replace(/^data: /, "");
      buf = buf.slice(i + 2);
      if (rec !== "[DONE]") text += (JSON.parse(rec) as { choices: { text: string }[] }).choices[0]?.text ?? "";
    }
    if (until(text)) { await reader.cancel(); return text; }
  }
}

describe("tsformer serve limits", () => {
  it("a full slot gives 429; a client disconnecting mid-stream frees it; shutdown finishes the stream in flight", async () => {
    const srv = await startServer({ model: data("stories260K.bin"), host: "127.0.0.1", port: 0, parallel: 1, maxQueue: 0, maxBody: 4096 }, () => {});
    const url = `${srv.url}/v1/completions`;
    const req = (o: object) => fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "stories260K.bin", prompt: "Once", temperature: 0, ...o }) });
    const health = async () => (await (await fetch(`${srv.url}/health`)).json()) as { sequences: number; queued: number; cancelled: number };
    try {
      const abort = new AbortController();
      const long = await fetch(url, { method: "POST", signal: abort.signal, headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "stories260K.bin", prompt: "Once", max_tokens: 500, stream: true }) });
      assert.equal(long.status, 200);
      const reader = long.body!.getReader();
      await reader.read();  // the first records: decoding has started
      const busy = await req({ max_tokens: 2 });
      assert.equal(busy.status, 429);
      assert.match(((await busy.json()) as { error: { message: string } }).error.message, /server is busy: 1 requests in flight, its limit \(--parallel 1 \+ --max-queue 0\)/);
      assert.equal((await health()).sequences, 1);
      abort.abort();
      // the engine dropped the sequence when the client left (cancelled, not run to its 500 tokens)
      let h = await health();
      for (let i = 0; i < 500 && h.sequences; i++) { await new Promise((r) => setTimeout(r, 10)); h = await health(); }
      assert.deepEqual(h, { status: "ok", sequences: 0, queued: 0, cancelled: 1 });
      const next = await req({ max_tokens: 6 });
      assert.equal(next.status, 200);
      assert.equal(((await next.json()) as { choices: { text: string }[] }).choices[0].text, lone("Once", 6));
      // shutdown: the stream in flight runs to its end, then the server is gone
      const inflight = await req({ max_tokens: 40, stream: true });
      const text = readStream(inflight);
      await srv.close();
      assert.equal(await text, lone("Once", 40));
      await assert.rejects(req({ max_tokens: 2 }));
    } finally {
      await srv.close();
    }
  });

  it("CLI: --parallel 0 gets one clear error", () => {
    const run = (...args: string[]) => spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", "serve", "--model", "data/stories260K.bin", "--port", "0", ...args], { cwd: root, encoding: "utf8", timeout: 60_000 });
    const p = run("--parallel", "0");
    assert.equal(p.status, 1);
    assert.match(p.stderr, /--parallel expects an integer >= 1, got '0'/);
  });

  it("an adapter for another base: startServer rejects with one clear error and leaves nothing running", async () => {
    await assert.rejects(startServer({ model: data("stories260K.bin"), adapter: `${root}test/fixtures/peft/llama-lora`, host: "127.0.0.1", port: 0, parallel: 1, maxQueue: 0, maxBody: 4096 }, () => {}),
      /adapter .*test\/fixtures\/peft\/llama-lora: .*the adapter does not fit this base/);
  });
});
