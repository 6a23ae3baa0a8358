// Decoding throughput: greedy tokens/s at batch 1 with the KV cache, config A, 256 new tokens, with
// PyTorch's KV-cache decode of the same model in the same invocation.

import * as T from "../src/index.js";
import { TransformerLM } from "../src/models/transformer.js";
import { generate } from "../src/generate/generate.js";
import { fmt, jsonLine, printTable, runTorchPeer, stats } from "./common.js";
import { CONFIG_A, toModelConfig } from "./models.js";

const NEW_TOKENS = 255, REPS = 5;

export function main(): void {
  const c = CONFIG_A;
  const model = new TransformerLM(toModelConfig(c));
  generate(model, [0], { maxNewTokens: 8, temperature: 0 });
  const ours: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const t0 = performance.now();
    generate(model, [0], { maxNewTokens: NEW_TOKENS, temperature: 0 });
    ours.push(NEW_TOKENS / ((performance.now() - t0) / 1000));
  }
  const peer = runTorchPeer(new URL("./torch/decode.py", import.meta.url).pathname, { config: c, newTokens: NEW_TOKENS, reps: REPS, threads: 2 });
  if (!peer.ok) console.error(`torch peer skipped: ${peer.reason}`);
  const s = stats(ours), t = stats(peer.lines.map((l) => l.tokens_per_s as number));
  jsonLine({ bench: "decode", config: c.name, backend: T.backend().name, new_tokens: NEW_TOKENS, tokens_per_s: s, torch_tokens_per_s: t, ratio: s.median / t.median });
  printTable(["decode (config A, batch 1, greedy, KV cache)", "tsformer tok/s", "torch tok/s", "ratio"],
    [[`${NEW_TOKENS} new tokens`, `${fmt(s.median)} (${fmt(s.min)}-${fmt(s.max)})`, `${fmt(t.median)} (${fmt(t.min)}-${fmt(t.max)})`, fmt(s.median / t.median, 2)]]);
}
