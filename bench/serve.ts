// `npm run bench -- serve [--tokens N] [--clients 1,8,64] [--batches 1,8,32]`: first the batched engine
// alone (generate/batch.ts, no HTTP): aggregate tokens/s with 1, 8, 32 sequences decoded together; then
// a load test of `tsformer serve` on 127.0.0.1 with stories260K: N concurrent streaming clients (POST /v1/completions, stream: true,
// include_usage), each sampling `--tokens` tokens with its own seed. Per level: aggregate completion
// tokens/s (usage counts over wall time), p50 / p99 time to first token, the process RSS (HTTP thread
// + engine worker) before and after; then the ratio of the largest level's aggregate to a single stream's.

import { startServer } from "../src/cli/serve.js";
import { BatchEngine, loadLlama2c } from "../src/index.js";
import { fmt, jsonLine, printTable, stats } from "./common.js";

const PROMPTS = ["Once upon a time", "The little dog", "Lily and Tom", "One day, a bird", "The sun was"];

function arg(argv: string[], name: string, dflt: string): string {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : dflt;
}

/** One streaming client: its time to first token (ms) and the completion tokens its usage chunk reports. */
async function client(url: string, i: number, tokens: number): Promise<{ ttft: number; tokens: number }> {
  const t0 = performance.now();
  const res = await fetch(url, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "stories", prompt: PROMPTS[i % PROMPTS.length], max_tokens: tokens, temperature: 0.8, seed: i, stream: true, stream_options: { include_usage: true } }),
  });
  if (res.status !== 200) throw new Error(`client ${i}: HTTP ${res.status} ${await res.text()}`);
  const reader = res.body!.getReader(), dec = new TextDecoder();
  let buf = "", ttft = NaN, n = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let k;
    while ((k = buf.indexOf("\n\n")) >= 0) {
      const rec = buf.slice(6, k);
      buf = buf.slice(k + 2);
      if (rec === "[DONE]") continue;
      const c = JSON.parse(rec) as { choices: { text: string }[]; usage?: { completion_tokens: number } | null };
      if (Number.isNaN(ttft) && c.choices[0]?.text) ttft = performance.now() - t0;
      if (c.usage) n = c.usage.completion_tokens;
    }
  }
  return { ttft, tokens: n };
}

/** The engine alone: B sequences of `tokens` sampled tokens each, decoded together; aggregate tokens/s. */
async function engineRows(model: string, batches: number[], tokens: number): Promise<void> {
  const m = await loadLlama2c(model);
  const rows: (string | number)[][] = [];
  // run 0 warms up (the first steps compile and allocate) and is not reported
  [batches[0], ...batches].forEach((B, run) => {
    const engine = new BatchEngine(m);
    for (let i = 0; i < B; i++) engine.add({ prompt: [1, 403 + (i % 20)], maxNewTokens: tokens, temperature: 0.8, seed: i });
    const t0 = performance.now();
    let n = 0;
    while (engine.size) n += engine.step().filter((e) => e.token).length;
    const secs = (performance.now() - t0) / 1000;
    if (run === 0) return;
    rows.push([B, n, fmt(secs, 2), fmt(n / secs, 0)]);
    jsonLine({ bench: "serve-engine", batch: B, tokens: n, seconds: secs, aggregateTokensPerSec: n / secs, ragged: engine.ragged });
  });
  printTable(["batch", "tokens", "seconds", "agg tok/s"], rows);
  console.log();
}

export async function main(argv: string[]): Promise<void> {
  const tokens = Number(arg(argv, "--tokens", "128"));
  const levels = arg(argv, "--clients", "1,8,64").split(",").map(Number);
  const parallel = Math.max(...levels);
  const model = new URL("../data/stories260K.bin", import.meta.url).pathname;
  await engineRows(model, arg(argv, "--batches", "1,8,32").split(",").map(Number), 200);
  const srv = await startServer({ model, host: "127.0.0.1", port: 0, parallel, maxQueue: parallel, maxBody: 1 << 20, modelName: "stories" }, () => {});
  const url = `${srv.url}/v1/completions`;
  const rows: (string | number)[][] = [];
  const agg = new Map<number, number>();
  try {
    await client(url, 0, 8);  // warm-up: the worker's first step compiles and allocates
    for (const n of levels) {
      const rss0 = process.memoryUsage().rss;
      const t0 = performance.now();
      const rs = await Promise.all(Array.from({ length: n }, (_, i) => client(url, i, tokens)));
      const secs = (performance.now() - t0) / 1000;
      const total = rs.reduce((a, r) => a + r.tokens, 0);
      const ttft = [...rs.map((r) => r.ttft)].sort((a, b) => a - b);
      const p99 = ttft[Math.min(ttft.length - 1, Math.ceil(0.99 * ttft.length) - 1)];
      const rss1 = process.memoryUsage().rss;
      agg.set(n, total / secs);
      const row = { bench: "serve", clients: n, tokensPerClient: tokens, totalTokens: total, seconds: secs, aggregateTokensPerSec: total / secs, ttftP50Ms: stats(ttft).median, ttftP99Ms: p99, rssBeforeMB: rss0 / 2 ** 20, rssAfterMB: rss1 / 2 ** 20 };
      jsonLine(row);
      rows.push([n, total, fmt(secs, 2), fmt(total / secs, 0), fmt(row.ttftP50Ms, 0), fmt(p99, 0), fmt(row.rssBeforeMB, 0), fmt(row.rssAfterMB, 0)]);
    }
  } finally {
    await srv.close();
  }
  console.log();
  printTable(["clients", "tokens", "seconds", "agg tok/s", "TTFT p50 ms", "TTFT p99 ms", "RSS before MB", "RSS after MB"], rows);
  const single = agg.get(Math.min(...levels))!, most = agg.get(parallel)!;
  jsonLine({ bench: "serve", ratio: most / single, of: `${parallel} clients / ${Math.min(...levels)}` });
  console.log(`\naggregate(${parallel}) / aggregate(${Math.min(...levels)}) = ${fmt(most / single, 2)}x`);
}
