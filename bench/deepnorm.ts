// DeepNorm vs plain Post-LN at depth (Wang et al. 2022, "DeepNet"): 48-layer post-norm models trained
// with the same data, steps and learning rate. DeepNorm (x_{l+1} = LN(alpha x_l + F(x_l)), alpha =
// (2N)^(1/4), beta-scaled init) should train where plain Post-LN fails: both placements at each
// learning rate of the list.
// Usage: npm run bench -- deepnorm [STEPS=500] [LRS=5e-4,1e-3]. Writes bench/deepnorm.svg.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as T from "../src/index.js";
import { createProgress } from "../src/train/progress.js";
import { linePlotSvg, writeSvg } from "../src/train/metrics.js";
import { jsonLine, printTable, fmt } from "./common.js";

const ROOT = new URL("..", import.meta.url).pathname;
const LAYERS = 48;

function run(placement: "post" | "deepnorm", ids: Int32Array, steps: number, lr: number): number[] {
  const cfg = T.gpt2Config({
    vocabSize: 65, dModel: 32, nLayers: LAYERS, nHeads: 2, maxSeqLen: 32,
    normPlacement: placement, init: placement === "deepnorm" ? "deepnorm" : "xavier", attention: "softmax",
  });
  const model = new T.TransformerLM(cfg, { generator: new T.RandomGenerator(1) });
  // The paper's optimiser: Adam(0.9, 0.98); here without warmup or clipping, and without decay.
  const opt = new T.AdamW(T.defaultParamGroups(model, 0), { lr, beta1: 0.9, beta2: 0.98 });
  const sampler = new T.BatchSampler(new T.TokenDataset(ids), 16, 32, 7);
  const bar = createProgress({ total: steps, label: `${placement} lr ${lr}`, every: 50 });
  const t0 = Date.now();
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const { x, y } = sampler.next();
    const loss = T.crossEntropy(model.forward(x).logits.reshape(-1, 65), y.reshape(-1));
    losses.push(loss.item());
    loss.backward();
    opt.step();
    opt.zeroGrad();
    bar.update(s + 1, { loss: losses[s], tokensPerSec: (16 * 32 * (s + 1)) / ((Date.now() - t0) / 1000) });
    if (!Number.isFinite(losses[s])) break;
  }
  bar.stop();
  return losses;
}

export async function main(argv: string[]): Promise<void> {
  const steps = Number(argv[0] ?? 500), lrs = (argv[1] ?? "5e-4,1e-3").split(",").map(Number);
  if (!Number.isSafeInteger(steps) || steps < 1) throw new RangeError(`deepnorm: STEPS must be a positive integer, got ${argv[0]}`);
  if (!lrs.every((v) => Number.isFinite(v) && v > 0)) throw new RangeError(`deepnorm: LRS must be positive numbers separated by commas, got ${argv[1]}`);
  const text = readFileSync(join(ROOT, "data/tinyshakespeare.txt"), "utf8");
  const tok = T.CharTokenizer.fromText(text);
  const ids = Int32Array.from(tok.encode(text.slice(0, 200_000)));
  const curves: [string, number, number[]][] = [];
  for (const lr of lrs) {
    curves.push(["Post-LN", lr, run("post", ids, steps, lr)]);
    curves.push(["DeepNorm", lr, run("deepnorm", ids, steps, lr)]);
  }
  const avg = (xs: number[], a: number, b: number) => xs.slice(a, b).reduce((p, q) => p + q, 0) / Math.max(1, xs.slice(a, b).length);
  const rows: (string | number)[][] = [];
  for (const [name, l, c] of curves) {
    jsonLine({ bench: "deepnorm", placement: name, layers: LAYERS, lr: l, steps, losses: c.map((x) => Number(x.toFixed(4))) });
    rows.push([name, l, fmt(c[0], 3), fmt(avg(c, 0, 50), 3), fmt(avg(c, c.length - 50, c.length), 3), fmt(Math.min(...c), 3), c.length < steps ? `diverged at step ${c.length}` : "finite"]);
  }
  printTable([`${LAYERS}-layer post-norm`, "lr", "step 0", "first 50 mean", "last 50 mean", "min", "status"], rows);
  const series = curves.map(([name, l, c]) => ({ name: `${name}, lr ${l}`, points: c.map((x, i) => [i, x] as const) }));
  await writeSvg(join(ROOT, "bench/deepnorm.svg"), linePlotSvg(series, { title: `${LAYERS}-layer post-norm models (d = 32): training loss` }));
}
