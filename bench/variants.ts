// Every attention variant on the Shakespeare character task: validation loss after 300 steps
// (same data, seed and schedule for all), and training tokens/s at context N = 256 and N = 2048.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as T from "../src/index.js";
import { fmt, jsonLine, printTable, stats } from "./common.js";

const ROOT = new URL("..", import.meta.url).pathname;
const STEPS = 300;

function config(attention: string, maxSeqLen: number): T.ModelConfig {
  return T.gpt2Config({ vocabSize: 65, dModel: 128, nLayers: 4, nHeads: 4, maxSeqLen, attention });
}

function valLossAfterTraining(attention: string, train: T.TokenDataset, val: T.TokenDataset): number {
  const model = new T.TransformerLM(config(attention, 64), { generator: new T.RandomGenerator(1) });
  const opt = new T.AdamW(T.defaultParamGroups(model, 0.1), { beta1: 0.9, beta2: 0.99 });
  const lrAt = T.makeSchedule({ kind: "cosine", lr: 2e-3, minLr: 2e-4, warmupSteps: 30, decaySteps: STEPS });
  const sampler = new T.BatchSampler(train, 32, 64, 1337);
  for (let s = 0; s < STEPS; s++) {
    opt.setLr(lrAt(s));
    const { x, y } = sampler.next();
    const loss = T.crossEntropy(model.forward(x).logits.reshape(-1, 65), y.reshape(-1));
    if (!Number.isFinite(loss.item())) return NaN;
    loss.backward();
    T.clipGradNorm(model.parameters(), 1);
    opt.step();
    opt.zeroGrad();
  }
  model.eval();
  const vs = new T.BatchSampler(val, 32, 64, 99);
  let sum = 0;
  T.noGrad(() => { for (let i = 0; i < 10; i++) { const { x, y } = vs.next(); sum += T.crossEntropy(model.forward(x).logits.reshape(-1, 65), y.reshape(-1)).item(); } });
  return sum / 10;
}

function tokensPerSecond(attention: string, n: number): number[] {
  const model = new T.TransformerLM(config(attention, n), { generator: new T.RandomGenerator(1) });
  const g = new T.RandomGenerator(2);
  const out: number[] = [];
  for (let r = 0; r < 4; r++) {
    const x = T.randint(65, [1, n], { generator: g }), y = T.randint(65, [1, n], { generator: g });
    const t0 = performance.now();
    T.crossEntropy(model.forward(x).logits.reshape(-1, 65), y.reshape(-1)).backward();
    model.zeroGrad();
    if (r > 0) out.push(n / ((performance.now() - t0) / 1000));
  }
  return out;
}

export function main(argv: string[]): void {
  const only = argv.length ? argv : Object.keys(T.ATTENTION_VARIANTS);
  const text = readFileSync(join(ROOT, "data/tinyshakespeare.txt"), "utf8");
  const tok = T.CharTokenizer.fromText(text);
  const { train, val } = new T.TokenDataset(Int32Array.from(tok.encode(text))).split(0.1);
  const rows: (string | number)[][] = [];
  for (const v of only) {
    const loss = valLossAfterTraining(v, train, val);
    const t256 = stats(tokensPerSecond(v, 256)), t2048 = stats(tokensPerSecond(v, 2048));
    jsonLine({ bench: "variants", attention: v, steps: STEPS, val_loss: loss, tokens_per_s_256: t256, tokens_per_s_2048: t2048 });
    rows.push([v, fmt(loss, 3), `${fmt(t256.median, 0)} (${fmt(t256.min, 0)}-${fmt(t256.max, 0)})`, `${fmt(t2048.median, 0)} (${fmt(t2048.min, 0)}-${fmt(t2048.max, 0)})`]);
  }
  printTable(["attention", `val loss @${STEPS}`, "train tok/s N=256", "train tok/s N=2048"], rows);
}
