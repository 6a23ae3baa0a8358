// Gradient checkpointing (ModelConfig.checkpointing, src/nn/checkpoint.ts) at config A's width
// (d 384, 6 heads, T 256, B 8, flash), in one invocation:
// - memory: bytes saved for backward (the accounting's savedBytes) after the forward of one batch, and
//   their peak during its backward, for L = 4, 8, 16, 32 layers, without checkpointing and with
//   "block"; predicted for "block": every layer keeps only its input (4 B T D bytes) instead of its
//   whole set S_L, and the peak adds, while a block is recomputed, that block's set less its input
//   (counted already). S_L is measured on one block alone (its forward on a leaf input).
// - time: a training step (forward + backward + AdamW) of config A (L 6) without checkpointing, with
//   "block" and with { every: 2 }; the modes alternate step by step, and the overhead is taken per
//   round from that round's medians, so that a change of machine load falls on every mode.
//   Wall-clock time is the goal's measure; the process's CPU time (every thread) is shown beside it,
//   as it moves less when other processes share the cores.
// Options: --rounds=N (default 5), --layers=4,8,16,32, --batch=N (default config A's 8),
// --only=memory or --only=time.

import * as T from "../src/index.js";
import { TransformerLM } from "../src/models/transformer.js";
import type { ModelConfig } from "../src/models/config.js";
import { AdamW, defaultParamGroups } from "../src/train/optim.js";
import { fmt, jsonLine, printTable, stats, type Stats } from "./common.js";
import { CONFIG_A, toModelConfig } from "./models.js";

const REPS = 3, WARMUP = 1;  // per round and mode
const GOAL_OVERHEAD = 0.35;  // the goal for config A
type Checkpointing = ModelConfig["checkpointing"];
const MODES: [string, Checkpointing][] = [["none", "none"], ["block", "block"], ["every 2", { every: 2 }]];

const MiB = (b: number) => fmt(b / 2 ** 20, 1);
const range = (s: Stats, d: number, scale = 1) => `${fmt(s.median * scale, d)} (${fmt(s.min * scale, d)}-${fmt(s.max * scale, d)})`;

function batch(V: number, B: number, Tn: number, g: T.RandomGenerator): { x: T.Tensor; y: T.Tensor } {
  return { x: T.randint(V, [B, Tn], { generator: g }), y: T.randint(V, [B, Tn], { generator: g }) };
}

/** Saved bytes after the forward of one batch and their peak during its backward (above the start). */
function savedBytes(cfg: ModelConfig, B: number): { saved: number; peak: number } {
  const model = new TransformerLM(cfg);
  const { x, y } = batch(cfg.vocabSize, B, cfg.maxSeqLen, new T.RandomGenerator(1));
  return T.tidy(() => {
    const before = T.memoryStats().savedBytes;
    const loss = T.crossEntropy(model.forward(x).logits.reshape(-1, cfg.vocabSize), y.reshape(-1));
    const saved = T.memoryStats().savedBytes - before;
    T.resetPeakMemory();
    loss.backward();
    return { saved, peak: T.memoryStats().peakSavedBytes - before };
  });
}

/** S_L: the bytes one block saves for backward, its input included. */
function blockSet(cfg: ModelConfig, B: number): number {
  const model = new TransformerLM({ ...cfg, nLayers: 1 });
  return T.tidy(() => {
    const before = T.memoryStats().savedBytes;
    const out = model.blocks[0].forward(T.randn([B, cfg.maxSeqLen, cfg.dModel], { generator: new T.RandomGenerator(2) }).requiresGrad_());
    const s = T.memoryStats().savedBytes - before;
    out.sum().backward();  // releases the graph (and its accounting)
    return s;
  });
}

function memoryTable(layers: number[], B: number): void {
  const base = toModelConfig(CONFIG_A), input = 4 * B * base.maxSeqLen * base.dModel, S = blockSet(base, B);
  const rows: (string | number)[][] = [];
  for (const L of layers) {
    const cfg = { ...base, nLayers: L };
    const none = savedBytes(cfg, B), block = savedBytes({ ...cfg, checkpointing: "block" }, B);
    const predicted = none.saved - L * (S - input), predictedPeak = predicted + S - input;
    jsonLine({ bench: "checkpointing-memory", config: CONFIG_A.name, L, B, block_set_bytes: S, input_bytes: input, none, block, predicted_saved: predicted, predicted_peak: predictedPeak });
    rows.push([L, MiB(none.saved), MiB(block.saved), MiB(predicted), MiB(block.peak), MiB(predictedPeak), `${fmt((100 * block.peak) / none.peak, 1)}%`]);
  }
  console.log(`bytes saved for backward, d ${base.dModel}, T ${base.maxSeqLen}, B ${B}, flash; one block's set S_L = ${MiB(S)} MiB, its input ${MiB(input)} MiB`);
  printTable(["L", "none MiB", "block after fwd", "predicted", "block peak", "predicted peak", "block peak / none"], rows);
}

function timeTable(rounds: number): void {
  const c = CONFIG_A;
  const steps = MODES.map(([, ck]) => {
    const model = new TransformerLM({ ...toModelConfig(c), checkpointing: ck });
    const opt = new AdamW(defaultParamGroups(model, 0.1), { lr: 1e-4 }), g = new T.RandomGenerator(1);
    return () => T.tidy(() => {
      const { x, y } = batch(c.V, c.B, c.T, g);
      T.crossEntropy(model.forward(x).logits.reshape(-1, c.V), y.reshape(-1)).backward();
      opt.step();
      opt.zeroGrad();
    });
  });
  for (const step of steps) for (let i = 0; i < WARMUP; i++) step();
  const clocks = { wall: () => performance.now() / 1000, cpu: () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; } };
  type Clock = keyof typeof clocks;
  const secs = { wall: MODES.map((): number[] => []), cpu: MODES.map((): number[] => []) };
  const over = { wall: MODES.map((): number[] => []), cpu: MODES.map((): number[] => []) };
  for (let r = 0; r < rounds; r++) {
    const round = { wall: MODES.map((): number[] => []), cpu: MODES.map((): number[] => []) };
    for (let k = 0; k < REPS; k++) {
      const order = MODES.map((_, i) => i);
      for (const i of (r + k) % 2 ? order.reverse() : order) {
        const w0 = clocks.wall(), c0 = clocks.cpu();
        steps[i]();
        round.cpu[i].push(clocks.cpu() - c0);
        round.wall[i].push(clocks.wall() - w0);
      }
    }
    for (const k of Object.keys(clocks) as Clock[]) round[k].forEach((s, i) => { secs[k][i].push(...s); over[k][i].push(stats(s).median / stats(round[k][0]).median - 1); });
  }
  const rows = MODES.map(([name], i) => {
    const s = stats(secs.wall[i]), o = stats(over.wall[i]), cs = stats(secs.cpu[i]), co = stats(over.cpu[i]);
    jsonLine({ bench: "checkpointing-time", config: c.name, mode: name, backend: T.backend().name, rounds, reps: REPS, step_seconds: s, overhead: o, cpu_seconds: cs, cpu_overhead: co, goal_overhead: GOAL_OVERHEAD });
    return [name, range(s, 3), i ? range(o, 1, 100) : "-", range(cs, 3), i ? range(co, 1, 100) : "-"];
  });
  console.log(`\nconfig ${c.name} (V=${c.V} L=${c.L} H=${c.H} d=${c.d} T=${c.T} B=${c.B}, flash): training step (forward + backward + AdamW), ${rounds} rounds x ${REPS} steps per mode`);
  printTable(["mode", "step s (wall)", `overhead % (goal <= ${100 * GOAL_OVERHEAD})`, "step CPU s", "CPU overhead %"], rows);
}

export async function main(argv: string[] = []): Promise<void> {
  const opt = (k: string) => argv.find((a) => a.startsWith(`--${k}=`))?.split("=")[1];
  const rounds = Number(opt("rounds") ?? 5), B = Number(opt("batch") ?? CONFIG_A.B);
  const layers = (opt("layers") ?? "4,8,16,32").split(",").map(Number);
  if (!(Number.isInteger(rounds) && rounds >= 1)) throw new RangeError("--rounds: expected a positive integer");
  if (!(Number.isInteger(B) && B >= 1)) throw new RangeError("--batch: expected a positive integer");
  if (!layers.every((L) => Number.isInteger(L) && L >= 1)) throw new RangeError("--layers: expected positive integers separated by commas");
  const only = opt("only");
  if (only !== undefined && only !== "memory" && only !== "time") throw new RangeError("--only: expected memory or time");
  if (only !== "time") memoryTable(layers, B);
  if (only !== "memory") timeTable(rounds);
}
