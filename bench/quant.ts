// Inference weights (issue 19): greedy batch-1 KV-cache decode tokens/s of config A with fp32, bf16
// and int8 Linear weights (quantizeForInference; the formats alternate round by round, so a change in
// the machine's load hits all three alike), and the perplexity of the real stories260K (data/) on the
// shipped TinyStories text per format.
// `npm run bench -- quant [decode|ppl|all] [--rounds N] [--chars N]`

import { loadavg } from "node:os";
import { readFileSync } from "node:fs";

import * as T from "../src/index.js";
import { TransformerLM } from "../src/models/transformer.js";
import { loadLlama2c } from "../src/models/llama2c.js";
import { generate } from "../src/generate/generate.js";
import { scoreTokens } from "../src/generate/score.js";
import { Llama2cTokenizer } from "../src/tokenizers/llama2c.js";
import { quantizeForInference } from "../src/models/quantize.js";
import type { InferenceWeights } from "../src/ops/quantize.js";
import { fmt, jsonLine, printTable, stats } from "./common.js";
import { CONFIG_A, toModelConfig } from "./models.js";

const FORMATS: InferenceWeights[] = ["fp32", "bf16", "int8"];
const NEW_TOKENS = 255;
const data = (f: string) => new URL(`../data/${f}`, import.meta.url).pathname;
const flag = (argv: string[], name: string, dflt: number) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const load = () => loadavg().map((x) => x.toFixed(2)).join(" ");

function decode(rounds: number): void {
  const mb: number[] = [];
  const models = FORMATS.map((f) => {
    const m = new TransformerLM(toModelConfig(CONFIG_A));  // the same seed: the same weights
    const s = quantizeForInference(m, f);
    mb.push((f === "fp32" ? 4 * [...m.namedModules()].reduce((n, [, x]) => n + (x instanceof T.Linear ? x.weight.numel : 0), 0) : s.bytes) / 2 ** 20);
    generate(m, [0], { maxNewTokens: 8, temperature: 0 });
    return m;
  });
  const tps: number[][] = FORMATS.map(() => []);
  const loadBefore = load();
  for (let r = 0; r < rounds; r++) {
    for (let s = 0; s < FORMATS.length; s++) {
      const f = (r + s) % FORMATS.length;  // the order rotates too
      const t0 = performance.now();
      generate(models[f], [0], { maxNewTokens: NEW_TOKENS, temperature: 0 });
      tps[f].push(NEW_TOKENS / ((performance.now() - t0) / 1000));
    }
  }
  const st = tps.map(stats), base = st[0].median;
  jsonLine({ bench: "quant-decode", config: CONFIG_A.name, backend: T.backend().name, new_tokens: NEW_TOKENS, rounds, load: [loadBefore, load()],
    ...Object.fromEntries(FORMATS.map((f, i) => [f, { tokens_per_s: st[i], vs_fp32: st[i].median / base, linear_weights_mib: mb[i] }])) });
  printTable(["decode (config A, batch 1, greedy, KV cache)", "Linear weights MiB", "tok/s", "vs fp32"],
    FORMATS.map((f, i) => [`${f} weights`, fmt(mb[i]), `${fmt(st[i].median)} (${fmt(st[i].min)}-${fmt(st[i].max)})`, fmt(st[i].median / base, 2)]));
  console.log(`load average (1, 5, 15 min): before ${loadBefore}, after ${load()}`);
}

async function perplexity(chars: number): Promise<void> {
  const model = await loadLlama2c(data("stories260K.bin"));
  const tok = await Llama2cTokenizer.load(data("tok512.bin"), 512);
  const text = readFileSync(data("tinystories-valid-head.txt"), "utf8").slice(0, chars);
  const ids = tok.encode(text, { bos: true });
  const rows: (string | number)[][] = [];
  let base = 0;
  for (const f of FORMATS) for (const head of f === "fp32" ? [false] : [false, true]) {
    quantizeForInference(model, f, { head });
    const t0 = performance.now();
    const r = scoreTokens(model, ids);
    const secs = (performance.now() - t0) / 1000;
    if (f === "fp32") base = r.perplexity;
    const change = (r.perplexity / base - 1) * 100;
    jsonLine({ bench: "quant-ppl", model: "stories260K", format: f, head_quantized: head, tokens: r.tokens, loss: r.loss, perplexity: r.perplexity, change_percent: change, seconds: secs });
    rows.push([`${f}${f === "fp32" ? "" : head ? ", LM head too" : ", LM head fp32"}`, r.tokens, r.perplexity.toFixed(4), `${change >= 0 ? "+" : ""}${change.toFixed(3)}%`]);
  }
  printTable(["stories260K on data/tinystories-valid-head.txt", "tokens", "perplexity", "change vs fp32"], rows);
}

export async function main(argv: string[]): Promise<void> {
  const what = argv[0] && !argv[0].startsWith("--") ? argv[0] : "all";
  if (!["decode", "ppl", "all"].includes(what)) throw new Error(`bench quant: unknown part ${JSON.stringify(what)}; expected decode, ppl or all`);
  if (what !== "ppl") decode(flag(argv, "--rounds", 7));
  if (what !== "decode") await perplexity(flag(argv, "--chars", Infinity));
}
