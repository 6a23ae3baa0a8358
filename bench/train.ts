// Training throughput: tokens/s of forward + backward + AdamW for configs A and B, with PyTorch's
// figure for the same model in the same invocation. Ours and torch's alternate in ROUNDS rounds per
// config, so that a change of machine load falls on both.
// --precision bf16 (or fp16): ours with flash attention in fp32 and under autocast, torch under
// torch.autocast("cpu", bfloat16) (its CPU autocast has no fp16), and the ratios the issue asks for.

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
function prepareOurs(c: BenchModel, attention: (typeof ATTENTIONS)[number], precision: T.Precision = "fp32"): () => number[] {
  const model = new TransformerLM({ ...toModelConfig(c), attention });
  const opt = new AdamW(defaultParamGroups(model, 0.1), { lr: 1e-4 });
  const g = new T.RandomGenerator(1);
  // one tidy() scope per step, as the Trainer does: activations and gradients are recycled
  const step = () => T.tidy(() => {
    const x = T.randint(c.V, [c.B, c.T], { generator: g }), y = T.randint(c.V, [c.B, c.T], { generator: g });
    T.autocast(precision, () => T.crossEntropy(model.forward(x).logits.reshape(-1, c.V), y.reshape(-1)).backward());
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

export async function main(argv: string[] = []): Promise<void> {
  const i = argv.findIndex((a) => a === "--precision" || a.startsWith("--precision="));
  const precision = T.parsePrecision(i < 0 ? "fp32" : argv[i].includes("=") ? argv[i].split("=")[1] : argv[i + 1], "--precision");
  const peer = await TorchPeer.start(new URL("./torch/train.py", import.meta.url).pathname);
  if (typeof peer === "string") console.error(`torch peer skipped: ${peer}`);
  // fp32: both attentions; low precision: flash in fp32 beside flash under autocast
  const variants: { attention: (typeof ATTENTIONS)[number]; precision: T.Precision }[] = precision === "fp32"
    ? ATTENTIONS.map((attention) => ({ attention, precision }))
    : [{ attention: "flash", precision: "fp32" }, { attention: "flash", precision }];
  const torchPrecision = precision === "fp32" ? "fp32" : "bf16";
  const rows: (string | number)[][] = [], derived: (string | number)[][] = [];
  for (const c of [CONFIG_A, CONFIG_B]) {
    const runs = variants.map((v) => prepareOurs(c, v.attention, v.precision));
    const ours: number[][] = variants.map(() => []), theirs: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      runs.forEach((run, i) => ours[i].push(...run()));
      if (typeof peer !== "string") {
        const l = await peer.ask({ config: c, warmup: WARMUP, reps: REPS, inner: INNER, precision: torchPrecision });
        theirs.push(...(l.tokens_per_s as number[]));
      }
    }
    const t = stats(theirs);
    variants.forEach(({ attention, precision: p }, i) => {
      const s = stats(ours[i]);
      const ratio = s.median / t.median;
      jsonLine({ bench: "train", config: c.name, attention, precision: p, torch_precision: torchPrecision, rounds: ROUNDS, backend: T.backend().name, tokens_per_s: s, torch_tokens_per_s: t, ratio });
      rows.push([`${c.name} (V=${c.V} L=${c.L} H=${c.H} d=${c.d} T=${c.T} B=${c.B})`, attention, p, `${fmt(s.median, 0)} (${fmt(s.min, 0)}-${fmt(s.max, 0)})`,
        `${fmt(t.median, 0)} (${fmt(t.min, 0)}-${fmt(t.max, 0)})`, fmt(ratio, 2)]);
    });
    if (precision !== "fp32") {
      const low = stats(ours[1]).median, fp32 = stats(ours[0]).median;
      jsonLine({ bench: "train", config: c.name, ratio: `${precision} / our fp32`, value: low / fp32, goal: ">= 1.5" });
      derived.push([c.name, `${precision} / our fp32`, fmt(low / fp32, 2), ">= 1.50"]);
      if (Number.isFinite(t.median)) derived.push([c.name, `${precision} / torch autocast bf16`, fmt(low / t.median, 2), ">= 1.30"]);
    }
  }
  if (typeof peer !== "string") peer.close();
  printTable(["config", "our attention", "precision", "tsformer tok/s", `torch tok/s (softmax, ${torchPrecision})`, "ratio"], rows);
  if (derived.length) printTable(["config", "ratio", "value", "goal"], derived);
}
