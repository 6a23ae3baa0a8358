// DeepNorm vs plain Post-LN at depth: two 48-layer post-norm models trained with the same data, steps
// and learning rate; DeepNorm (Wang et al. 2022: residual x * alpha, beta-scaled init) should train
// where plain Post-LN diverges or stalls. Writes bench/deepnorm.svg and prints both curves.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as T from "../src/index.js";
import { jsonLine, printTable, fmt } from "./common.js";

const ROOT = new URL("..", import.meta.url).pathname;

function run(placement: "post" | "deepnorm", ids: Int32Array, steps: number, lr: number): number[] {
  const cfg = T.gpt2Config({
    vocabSize: 65, dModel: 32, nLayers: 48, nHeads: 2, maxSeqLen: 32,
    normPlacement: placement, init: placement === "deepnorm" ? "deepnorm" : "xavier",
  });
  const model = new T.TransformerLM(cfg, { generator: new T.Generator(1) });
  const opt = new T.AdamW(T.defaultParamGroups(model, 0), { lr, beta1: 0.9, beta2: 0.98 });
  const sampler = new T.BatchSampler(new T.TokenDataset(ids), 16, 32, 7);
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const { x, y } = sampler.next();
    const loss = T.crossEntropy(model.forward(x).reshape(-1, 65), y.reshape(-1));
    losses.push(loss.item());
    loss.backward();
    opt.step();
    opt.zeroGrad();
    if (!Number.isFinite(losses[s])) break;
  }
  return losses;
}

export async function main(argv: string[]): Promise<void> {
  const steps = Number(argv[0] ?? 300), lr = Number(argv[1] ?? 2e-3);
  const text = readFileSync(join(ROOT, "data/tinyshakespeare.txt"), "utf8");
  const tok = T.CharTokenizer.fromText(text);
  const ids = Int32Array.from(tok.encode(text.slice(0, 200_000)));
  const curves = { post: run("post", ids, steps, lr), deepnorm: run("deepnorm", ids, steps, lr) };
  const avg = (xs: number[], a: number, b: number) => xs.slice(a, b).reduce((p, q) => p + q, 0) / Math.max(1, xs.slice(a, b).length);
  const rows: (string | number)[][] = [];
  for (const [name, c] of Object.entries(curves)) {
    jsonLine({ bench: "deepnorm", placement: name, layers: 48, lr, steps, losses: c.map((l) => Number(l.toFixed(4))) });
    rows.push([name, fmt(c[0], 3), fmt(avg(c, 90, 100), 3), fmt(avg(c, c.length - 10, c.length), 3), c.length < steps ? `diverged at step ${c.length}` : "finite"]);
  }
  printTable([`48-layer post-norm, lr ${lr}`, "step 0", "steps 90-99", "last 10", "status"], rows);
  const series = Object.entries(curves).map(([name, c]) => ({ name: name === "post" ? "Post-LN" : "DeepNorm", points: c.map((l, i) => [i, l] as const) }));
  await T.writeSvg(join(ROOT, "bench/deepnorm.svg"), T.linePlotSvg(series, { title: `48-layer post-norm models, lr ${lr}: training loss` }));
}
