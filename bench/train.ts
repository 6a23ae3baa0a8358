// Training throughput: tokens/s of forward + backward + AdamW for configs A and B, with PyTorch's
// figure for the same model in the same invocation. Ours and torch's alternate in ROUNDS rounds per
// config, so that a change of machine load falls on both.

import * as T from "../src/index.js";
import { TransformerLM } from "../src/models/transformer.js";
import { AdamW, defaultParamGroups } from "../src/train/optim.js";
import { fmt, jsonLine, printTable, stats, TorchPeer } from "./common.js";
import { CONFIG_A, CONFIG_B, toModelConfig, type BenchModel } from "./models.js";

const ROUNDS = 3, REPS = 2, WARMUP = 1, INNER = 2;  // per round

// Ours with the materializing softmax attention (the same computation as the torch peer's) and with
// the fused flash kernel (exact attention too; torch 1.13 has no fused CPU attention).
const ATTENTIONS = ["softmax", "flash"] as const;

/** Our model with this attention; the returned function times REPS repetitions (tokens/s each). */
function prepareOurs(c: BenchModel, attention: (typeof ATTENTIONS)[number]): () => number[] {
  const model = new TransformerLM({ ...toModelConfig(c), attention });
  const opt = new AdamW(defaultParamGroups(model, 0.1), { lr: 1e-4 });
  const g = new T.RandomGenerator(1);
  // one tidy() scope per step, as the Trainer does: activations and gradients are recycled
  const step = () => T.tidy(() => {
    const x = T.randint(c.V, [c.B, c.T], { generator: g }), y = T.randint(c.V, [c.B, c.T], { generator: g });
    const loss = T.crossEntropy(model.forward(x).logits.reshape(-1, c.V), y.reshape(-1));
    loss.backward();
    opt.step();
    opt.zeroGrad();
  });
  return () => {
    for (let i = 0; i < WARMUP; i++) step();
    const out: number[] = [];
    for (let r = 0; r < REPS; r++) {
      const t0 = performance.now();
      for (let i = 0; i < INNER; i++) step();
      out.push((c.B * c.T * INNER) / ((performance.now() - t0) / 1000));
    }
    return out;
  };
}

export async function main(): Promise<void> {
  const peer = await TorchPeer.start(new URL("./torch/train.py", import.meta.url).pathname);
  if (typeof peer === "string") console.error(`torch peer skipped: ${peer}`);
  const rows: (string | number)[][] = [];
  for (const c of [CONFIG_A, CONFIG_B]) {
    const runs = ATTENTIONS.map((a) => prepareOurs(c, a));
    const ours: number[][] = ATTENTIONS.map(() => []), theirs: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      runs.forEach((run, i) => ours[i].push(...run()));
      if (typeof peer !== "string") {
        const l = await peer.ask({ config: c, warmup: WARMUP, reps: REPS, inner: INNER });
        theirs.push(...(l.tokens_per_s as number[]));
      }
    }
    const t = stats(theirs);
    ATTENTIONS.forEach((attention, i) => {
      const s = stats(ours[i]);
      const ratio = s.median / t.median;
      jsonLine({ bench: "train", config: c.name, attention, rounds: ROUNDS, backend: T.backend().name, tokens_per_s: s, torch_tokens_per_s: t, ratio });
      rows.push([`${c.name} (V=${c.V} L=${c.L} H=${c.H} d=${c.d} T=${c.T} B=${c.B})`, attention, `${fmt(s.median, 0)} (${fmt(s.min, 0)}-${fmt(s.max, 0)})`,
        `${fmt(t.median, 0)} (${fmt(t.min, 0)}-${fmt(t.max, 0)})`, fmt(ratio, 2)]);
    });
  }
  if (typeof peer !== "string") peer.close();
  printTable(["config", "our attention", "tsformer tok/s", "torch tok/s (softmax)", "ratio"], rows);
}
