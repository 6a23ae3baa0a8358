// Training throughput: tokens/s of forward + backward + AdamW for configs A and B, with PyTorch's
// figure for the same model in the same invocation.

import * as T from "../src/index.js";
import { TransformerLM } from "../src/models/transformer.js";
import { AdamW, defaultParamGroups } from "../src/train/optim.js";
import { fmt, jsonLine, printTable, runTorchPeer, stats } from "./common.js";
import { CONFIG_A, CONFIG_B, toModelConfig, type BenchModel } from "./models.js";

const REPS = 5, WARMUP = 1, INNER = 2;

function ours(c: BenchModel): number[] {
  const model = new TransformerLM(toModelConfig(c));
  const opt = new AdamW(defaultParamGroups(model, 0.1), { lr: 1e-4 });
  const g = new T.Generator(1);
  const step = () => {
    const x = T.randint(c.V, [c.B, c.T], { generator: g }), y = T.randint(c.V, [c.B, c.T], { generator: g });
    const loss = T.crossEntropy(model.forward(x).reshape(-1, c.V), y.reshape(-1));
    loss.backward();
    opt.step();
    opt.zeroGrad();
  };
  for (let i = 0; i < WARMUP; i++) step();
  const out: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const t0 = performance.now();
    for (let i = 0; i < INNER; i++) step();
    out.push((c.B * c.T * INNER) / ((performance.now() - t0) / 1000));
  }
  return out;
}

export function main(): void {
  const configs = [CONFIG_A, CONFIG_B];
  const peer = runTorchPeer(new URL("./torch/train.py", import.meta.url).pathname, { configs, warmup: WARMUP, reps: REPS, inner: INNER, threads: 2 });
  if (!peer.ok) console.error(`torch peer skipped: ${peer.reason}`);
  const rows: (string | number)[][] = [];
  for (const c of configs) {
    const s = stats(ours(c));
    const t = stats(peer.lines.filter((l) => l.config === c.name).map((l) => l.tokens_per_s as number));
    const ratio = s.median / t.median;
    jsonLine({ bench: "train", config: c.name, backend: T.backend().name, tokens_per_s: s, torch_tokens_per_s: t, ratio });
    rows.push([`${c.name} (V=${c.V} L=${c.L} H=${c.H} d=${c.d} T=${c.T} B=${c.B})`, `${fmt(s.median, 0)} (${fmt(s.min, 0)}-${fmt(s.max, 0)})`,
      `${fmt(t.median, 0)} (${fmt(t.min, 0)}-${fmt(t.max, 0)})`, fmt(ratio, 2)]);
  }
  printTable(["config", "tsformer tok/s", "torch tok/s", "ratio"], rows);
}
