// LoRA vs full fine-tuning at config A with flash attention, with the PyTorch peer (bench/torch/lora.py,
// hand-written LoRA on the same model) in the same invocation:
// - speed: tokens/s of a full step (forward + backward + AdamW over every weight) and of a LoRA step
//   (r 8, alpha 16 on wq, wk, wv, wo; base frozen; AdamW over the adapter only). The two alternate
//   step by step, ours and torch's alternate round by round; the speedup LoRA / full is taken per
//   round, from that round's medians, so that a change of machine load falls on both.
// - memory, over one step of a fresh model in a child process of its own (so that no storage recycled
//   by an earlier step is reused): gradient and optimizer-state bytes, counted exactly (each
//   parameter's .grad and the optimizer's stateDict; torch: p.grad and optimizer.state); the peak bytes
//   saved for backward (our memory accounting's peakSavedBytes; torch: saved_tensors_hooks); and the
//   peak of ArrayBuffer bytes held during the step (tensors and the recycle pool) above those held
//   before it, sampled after a full GC at every kernel call. The accounting's peakLiveBytes is in the
//   JSON line only: nothing is collected inside a synchronous step, so it is the fresh storage the step
//   allocates (recycled storage counts once), not a peak; and the accounting does not see the
//   optimizer's buffers (plain Float32Arrays), hence the exact count.
// Options: --rounds=N (default 3), --no-torch.

import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import * as T from "../src/index.js";
import { TransformerLM } from "../src/models/transformer.js";
import { applyLora, trainableParameters } from "../src/peft/index.js";
import { AdamW, defaultParamGroups } from "../src/train/optim.js";
import { fmt, jsonLine, printTable, stats, TorchPeer, type Stats } from "./common.js";
import { CONFIG_A, toModelConfig } from "./models.js";

const REPS = 4, WARMUP = 1, INNER = 1;  // per round and mode: full and LoRA alternate step by step
const LORA = { r: 8, alpha: 16, targetModules: ["wq", "wk", "wv", "wo"] };
const GOAL_SPEEDUP = 1.4, GOAL_FRACTION = 0.05;  // the goals
const MODES = ["full", "lora"] as const;
type Mode = (typeof MODES)[number];
const c = CONFIG_A;

interface Memory {
  grad_bytes: number; optimizer_bytes: number; param_bytes: number; peak_saved_bytes: number;
  /** ours only: the GC-sampled peak above the step's start, and the accounting's peakLiveBytes (see above) */
  peak_held_bytes?: number; accounting_peak_live_bytes?: number;
}

interface Run {
  /** One training step in its own tidy() scope; `probe` runs after the update, before zeroGrad. */
  step(probe?: () => void): void;
  memory(): Memory;
  trainable: number;
}

function prepare(mode: Mode): Run {
  const model = new TransformerLM({ ...toModelConfig(c), attention: "flash" });
  if (mode === "lora") applyLora(model, LORA, { generator: new T.RandomGenerator(2) });
  const opt = new AdamW(defaultParamGroups(model, 0.1), { lr: 1e-4 });
  const g = new T.RandomGenerator(1);
  const step = (probe?: () => void) => T.tidy(() => {
    const x = T.randint(c.V, [c.B, c.T], { generator: g }), y = T.randint(c.V, [c.B, c.T], { generator: g });
    T.crossEntropy(model.forward(x).logits.reshape(-1, c.V), y.reshape(-1)).backward();
    opt.step();
    probe?.();
    opt.zeroGrad();
  });
  const params = new Set([...model.namedParameters()].map(([, p]) => p));  // a tied tensor once
  const bytes = (t: T.Tensor) => t.numel * (t.data as Float32Array).BYTES_PER_ELEMENT;
  const memory = (): Memory => {
    let counted = { grad_bytes: 0, optimizer_bytes: 0, param_bytes: 0 };
    const probe = () => {
      const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
      counted = {
        grad_bytes: sum([...params].map((p) => (p.grad ? bytes(p.grad) : 0))),
        optimizer_bytes: sum(Object.values(opt.stateDict().tensors).map((t) => t.byteLength)),
        param_bytes: sum([...params].map(bytes)),
      };
    };
    const held = heldSampler();
    const was = T.trackLiveMemory(true);
    T.resetPeakMemory();
    const before = T.memoryStats();
    try {
      step(probe);
    } finally {
      T.trackLiveMemory(was);
    }
    const after = T.memoryStats();
    return { ...counted, peak_saved_bytes: after.peakSavedBytes - before.savedBytes, peak_held_bytes: held(),
      accounting_peak_live_bytes: after.peakLiveBytes - before.liveBytes };
  };
  return { step, memory, trainable: trainableParameters(model).trainable };
}

/**
 * Starts sampling, after a full GC, the ArrayBuffer bytes held at every backend kernel call; the
 * returned function stops and gives the peak above the start. Needs node --expose-gc.
 */
function heldSampler(): () => number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("bench lora: the memory probe needs node --expose-gc");
  const be = T.backend() as unknown as Record<string, unknown>;
  const original = Object.entries(be).filter(([, f]) => typeof f === "function") as [string, (...a: unknown[]) => unknown][];
  const held = () => { gc(); return process.memoryUsage().arrayBuffers; };
  const start = held();
  let peak = start;
  for (const [k, f] of original) {
    be[k] = function (this: unknown, ...a: unknown[]) {
      peak = Math.max(peak, held());
      const r = f.apply(this, a);
      peak = Math.max(peak, held());
      return r;
    };
  }
  return () => {
    for (const [k, f] of original) be[k] = f;
    return peak - start;
  };
}

/** The memory figures of one mode, from a fresh process (bench/run.ts lora --probe=MODE). */
function probeInChild(mode: Mode): Memory {
  const run = fileURLToPath(new URL("./run.ts", import.meta.url));
  const r = spawnSync(process.execPath, [...process.execArgv, "--expose-gc", run, "lora", `--probe=${mode}`], { encoding: "utf8", maxBuffer: 1 << 24 });
  const line = r.stdout.split("\n").find((l) => l.startsWith("{"));
  if (r.status !== 0 || !line) throw new Error(`bench lora: the ${mode} memory probe failed: ${(r.stderr || r.error?.message || "").trim().slice(-400)}`);
  return JSON.parse(line) as Memory;
}

/** REPS timed repetitions of each mode, alternating (and alternating which goes first); tokens/s. */
function timeOurs(runs: Record<Mode, Run>): Record<Mode, number[]> {
  for (const m of MODES) for (let i = 0; i < WARMUP; i++) runs[m].step();
  const out: Record<Mode, number[]> = { full: [], lora: [] };
  for (let r = 0; r < REPS; r++) {
    for (const m of r % 2 ? [...MODES].reverse() : MODES) {
      const t0 = performance.now();
      for (let i = 0; i < INNER; i++) runs[m].step();
      out[m].push((c.B * c.T * INNER) / ((performance.now() - t0) / 1000));
    }
  }
  return out;
}

const MiB = (b: number | undefined) => (b === undefined ? "-" : fmt(b / 2 ** 20, 2));
const range = (s: Stats, d: number) => `${fmt(s.median, d)} (${fmt(s.min, d)}-${fmt(s.max, d)})`;

export async function main(argv: string[] = []): Promise<void> {
  const probe = argv.find((a) => a.startsWith("--probe="))?.split("=")[1];
  if (probe !== undefined) {
    if (!(MODES as readonly string[]).includes(probe)) throw new RangeError(`--probe: expected ${MODES.join(" or ")}`);
    console.log(JSON.stringify(prepare(probe as Mode).memory()));
    return;
  }
  const rounds = Number(argv.find((a) => a.startsWith("--rounds="))?.split("=")[1] ?? 3);
  if (!(Number.isInteger(rounds) && rounds >= 1)) throw new RangeError("--rounds: expected a positive integer");
  const peer = argv.includes("--no-torch") ? "--no-torch" : await TorchPeer.start(new URL("./torch/lora.py", import.meta.url).pathname);
  if (typeof peer === "string") console.error(`torch peer skipped: ${peer}`);
  const mem: Record<string, Record<Mode, Memory>> = { tsformer: { full: probeInChild("full"), lora: probeInChild("lora") } };
  if (typeof peer !== "string") mem.torch = (await peer.ask({ op: "memory", config: c })) as unknown as Record<Mode, Memory>;

  const tok: Record<string, Record<Mode, number[]>> = { tsformer: { full: [], lora: [] }, torch: { full: [], lora: [] } };
  const speedups: Record<string, number[]> = { tsformer: [], torch: [] };
  const add = (side: string, r: Record<Mode, number[]>) => {
    for (const m of MODES) tok[side][m].push(...r[m]);
    speedups[side].push(stats(r.lora).median / stats(r.full).median);
  };
  const runs = { full: prepare("full"), lora: prepare("lora") };
  for (let r = 0; r < rounds; r++) {
    add("tsformer", timeOurs(runs));
    if (typeof peer !== "string") add("torch", (await peer.ask({ op: "time", config: c, warmup: WARMUP, reps: REPS, inner: INNER })).tokens_per_s as Record<Mode, number[]>);
  }
  if (typeof peer !== "string") peer.close();

  const speedRows: (string | number)[][] = [], memRows: (string | number)[][] = [];
  const sides = typeof peer === "string" ? ["tsformer"] : ["tsformer", "torch"];
  for (const side of sides) {
    const attention = side === "torch" ? "softmax" : "flash";
    const full = stats(tok[side].full), lora = stats(tok[side].lora), speedup = stats(speedups[side]);
    jsonLine({ bench: "lora", config: c.name, side, attention, rounds, ...(side === "tsformer" ? { backend: T.backend().name } : {}), lora: LORA,
      full_tokens_per_s: full, lora_tokens_per_s: lora, speedup, goal_speedup: GOAL_SPEEDUP });
    speedRows.push([side, attention, range(full, 0), range(lora, 0), range(speedup, 2)]);
    const f = mem[side].full, l = mem[side].lora;
    const gradOpt = (x: Memory) => x.grad_bytes + x.optimizer_bytes;
    const fraction = gradOpt(l) / gradOpt(f);
    for (const m of MODES) {
      const x = mem[side][m];
      jsonLine({ bench: "lora-memory", config: c.name, side, mode: m, ...x, grad_plus_optimizer_bytes: gradOpt(x),
        ...(m === "lora" ? { fraction_of_full: fraction, goal_fraction: GOAL_FRACTION } : {}) });
      memRows.push([side, m, MiB(x.param_bytes), MiB(x.grad_bytes), MiB(x.optimizer_bytes), MiB(gradOpt(x)),
        m === "lora" ? `${fmt(100 * fraction, 2)}%` : "", MiB(x.peak_saved_bytes), MiB(x.peak_held_bytes)]);
    }
  }
  console.log(`config ${c.name} (V=${c.V} L=${c.L} H=${c.H} d=${c.d} T=${c.T} B=${c.B}); LoRA r=${LORA.r} alpha=${LORA.alpha} on ${LORA.targetModules.join(", ")}: ` +
    `${runs.lora.trainable.toLocaleString("en-US")} trainable of ${runs.full.trainable.toLocaleString("en-US")}; ${rounds} rounds`);
  printTable(["side", "attention", "full tok/s", "LoRA tok/s", `speedup (goal >= ${GOAL_SPEEDUP})`], speedRows);
  console.log();
  printTable(["side", "mode", "params MiB", "grads MiB", "AdamW state MiB", "grads+state MiB", `of full (goal <= ${100 * GOAL_FRACTION}%)`, "peak saved MiB", "step peak held MiB"], memRows);
}
