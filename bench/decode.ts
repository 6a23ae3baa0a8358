// Decoding throughput: greedy tokens/s at batch 1 with the KV cache, config A, 255 new tokens, with
// PyTorch's KV-cache decode of the same model in the same invocation, alternating round by round.
// npm run bench -- decode [--rounds=7] [--warmup=5]
// Warm-up: whole 255-token generations (V8 optimizes the decode loop over the first few hundred
// tokens; a short warm-up times the interpreter in the first rounds).

import * as T from "../src/index.js";
import { TransformerLM } from "../src/models/transformer.js";
import { generate } from "../src/generate/generate.js";
import { fmt, jsonLine, printTable, stats, TorchPeer } from "./common.js";
import { flag } from "./image-common.js";
import { CONFIG_A, toModelConfig } from "./models.js";

const NEW_TOKENS = 255;

export async function main(argv: string[]): Promise<void> {
  const rounds = Math.round(flag(argv, "rounds", 7)), warmup = Math.round(flag(argv, "warmup", 5));
  const c = CONFIG_A;
  const model = new TransformerLM(toModelConfig(c));
  const once = (): number => {
    const t0 = performance.now();
    generate(model, [0], { maxNewTokens: NEW_TOKENS, temperature: 0 });
    return NEW_TOKENS / ((performance.now() - t0) / 1000);
  };
  for (let i = 0; i < warmup; i++) once();
  const peer = await TorchPeer.start(new URL("./torch/decode.py", import.meta.url).pathname);
  if (typeof peer === "string") console.error(`torch peer skipped: ${peer}`);
  else await peer.ask({ config: c, newTokens: NEW_TOKENS, reps: warmup });
  const ours: number[] = [], theirs: number[] = [];
  for (let r = 0; r < rounds; r++) {
    ours.push(once());
    // after a generation burst our process keeps working for a while (V8's background threads, likely):
    // with a 100 ms pause torch measured well below its standalone rate, with 500 ms at it (RESULTS.md)
    await new Promise((done) => setTimeout(done, 500));
    if (typeof peer !== "string") theirs.push(...((await peer.ask({ config: c, newTokens: NEW_TOKENS, reps: 1 })).tokens_per_s as number[]));
    console.error(`round ${r + 1}/${rounds}: ours ${fmt(ours[r], 1)} tok/s, torch ${fmt(theirs[r] ?? NaN, 1)} tok/s`);
  }
  if (typeof peer !== "string") peer.close();
  const s = stats(ours), t = stats(theirs);
  jsonLine({ bench: "decode", config: c.name, backend: T.backend().name, new_tokens: NEW_TOKENS, rounds, tokens_per_s: s, torch_tokens_per_s: t, ratio: s.median / t.median });
  printTable(["decode (config A, batch 1, greedy, KV cache)", "tsformer tok/s", "torch tok/s", "ratio"],
    [[`${NEW_TOKENS} new tokens, ${rounds} rounds`, `${fmt(s.median)} (${fmt(s.min)}-${fmt(s.max)})`, `${fmt(t.median)} (${fmt(t.min)}-${fmt(t.max)})`, fmt(s.median / t.median, 2)]]);
}
