// Fused / elementwise kernel benchmark: GB/s of the native kernels (GELU fwd/bwd, broadcast add,
// LayerNorm fwd/bwd, softmax fwd/bwd, cross-entropy fwd+bwd, AdamW) against PyTorch's kernels for the
// same computation in the same run (bench/torch/ops.py, interleaved case by case). Bytes counted are
// the compulsory traffic: every input read once, every output written once.
// Options: --reps=N (default 7), --only=SUBSTRING, --no-torch, --backend=js|native (default native).
import { fileURLToPath } from "node:url";

import type { Backend } from "../src/backend/backend.js";
import { jsBackend } from "../src/backend/js/index.js";
import { native, nativeLoadError, getNativeThreads } from "../src/backend/native/addon.js";
import { makeNativeBackend } from "../src/backend/native/index.js";
import { fmt, jsonLine, printTable, stats, timeIt, TorchPeer } from "./common.js";

type Kind = "gelu_fwd" | "gelu_bwd" | "add_bcast" | "ln_fwd" | "ln_bwd" | "softmax_fwd" | "softmax_bwd" | "ce_fwd_bwd" | "adamw";
interface Case { name: string; kind: Kind; rows: number; cols: number; n: number; bytes: number; reps: number; warmup: number; threads: number }

const N = 4 * 1024 * 1024, R = 8192, C = 512;

function cases(reps: number, threads: number): Case[] {
  const mk = (kind: Kind, name: string, rows: number, cols: number, perElem: number): Case =>
    ({ name, kind, rows, cols, n: rows * cols, bytes: rows * cols * perElem, reps, warmup: 2, threads });
  return [
    mk("gelu_fwd", "gelu_tanh fwd 4M", 1, N, 8),
    mk("gelu_bwd", "gelu_tanh bwd 4M", 1, N, 12),
    mk("add_bcast", `add [${R}x${C}] + [${C}]`, R, C, 8),
    mk("ln_fwd", `layerNorm fwd ${R}x${C}`, R, C, 8),
    mk("ln_bwd", `layerNorm bwd ${R}x${C}`, R, C, 12),
    mk("softmax_fwd", `softmax fwd ${R}x${C}`, R, C, 8),
    mk("softmax_bwd", `softmax bwd ${R}x${C}`, R, C, 12),
    mk("ce_fwd_bwd", `cross-entropy fwd+bwd ${R}x${C}`, R, C, 12),
    mk("adamw", "adamw 4M", 1, N, 28),
  ];
}

function rand(n: number, s = 1): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = (Math.random() * 2 - 1) * s;
  return x;
}

function runOurs(be: Backend, c: Case): number[] {
  const { rows, cols, n } = c;
  let fn: () => void;
  switch (c.kind) {
    case "gelu_fwd": { const x = rand(n, 3), y = new Float32Array(n); fn = () => be.unary("gelu_tanh", x, y, n, {}); break; }
    case "gelu_bwd": {
      const x = rand(n, 3), y = new Float32Array(n), gy = rand(n), gx = new Float32Array(n);
      fn = () => be.unaryBackward("gelu_tanh", x, y, gy, gx, n, {});
      break;
    }
    case "add_bcast": {
      const a = rand(n), b = rand(cols), out = new Float32Array(n);
      fn = () => be.binary("add", a, 0, [cols, 1], b, 0, [0, 1], out, [rows, cols]);
      break;
    }
    case "ln_fwd": case "ln_bwd": {
      const x = rand(n, 2), w = rand(cols), b = rand(cols), y = new Float32Array(n), m = new Float32Array(rows), s = new Float32Array(rows);
      be.layerNorm(x, w, b, rows, cols, 1e-5, y, m, s);
      const gy = rand(n), gx = new Float32Array(n), gw = new Float32Array(cols), gb = new Float32Array(cols);
      fn = c.kind === "ln_fwd" ? () => be.layerNorm(x, w, b, rows, cols, 1e-5, y, m, s)
        : () => be.layerNormBackward(x, w, m, s, gy, rows, cols, gx, gw, gb);
      break;
    }
    case "softmax_fwd": case "softmax_bwd": {
      const x = rand(n, 3), y = new Float32Array(n), gy = rand(n), gx = new Float32Array(n);
      be.softmax(x, y, rows, cols, false);
      fn = c.kind === "softmax_fwd" ? () => be.softmax(x, y, rows, cols, false) : () => be.softmaxBackward(y, gy, gx, rows, cols, false);
      break;
    }
    case "ce_fwd_bwd": {
      const x = rand(n, 3), t = Int32Array.from({ length: rows }, () => Math.floor(Math.random() * cols));
      const loss = new Float32Array(rows), lse = new Float32Array(rows), gl = new Float32Array(rows).fill(1 / rows), gx = new Float32Array(n);
      fn = () => { be.crossEntropy(x, t, rows, cols, -100, 0, loss, lse); be.crossEntropyBackward(x, t, lse, gl, rows, cols, -100, 0, gx); };
      break;
    }
    case "adamw": {
      const p = rand(n), g = rand(n), m = new Float32Array(n), v = new Float32Array(n);
      const args = { param: p, grad: g, m, v, lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, bc1: 0.1, bc2: 0.001 };
      fn = () => be.adamw(args, n);
      break;
    }
  }
  const t0 = process.hrtime.bigint(); fn(); const first = Number(process.hrtime.bigint() - t0) / 1e9;
  const inner = Math.max(1, Math.round(0.02 / Math.max(first, 1e-6)));
  return timeIt(fn, c.reps, c.warmup, inner);
}

export async function main(argv: string[]): Promise<void> {
  const opt = (k: string) => argv.find((a) => a.startsWith(`--${k}=`))?.split("=")[1];
  const reps = Number(opt("reps") ?? 7), only = opt("only"), which = opt("backend") ?? "native";
  let be: Backend = jsBackend;
  if (which === "native") {
    const nb = makeNativeBackend();
    if (!nb) throw new Error(`native addon not loaded: ${nativeLoadError}`);
    be = nb;
  }
  const threads = native ? getNativeThreads() : 1;
  let list = cases(reps, threads);
  if (only) list = list.filter((c) => c.name.includes(only));
  jsonLine({ bench: "ops", backend: be.name, isa: native?.isa() ?? "none", threads, unit: "GB/s of compulsory traffic (inputs read once, outputs written once)" });

  let peer: TorchPeer | string = "disabled by --no-torch";
  if (!argv.includes("--no-torch")) peer = await TorchPeer.start(fileURLToPath(new URL("./torch/ops.py", import.meta.url)));
  if (typeof peer === "string") console.log(`# PyTorch peer not run: ${peer}; our figures only.`);
  else jsonLine({ impl: "torch", ...peer.hello });

  const rows: (string | number)[][] = [];
  for (const c of list) {
    const g = runOurs(be, c).map((s) => c.bytes / s / 1e9);
    const s = stats(g);
    jsonLine({ impl: "tsformer", backend: be.name, name: c.name, bytes: c.bytes, gbps: +s.median.toFixed(2), min: +s.min.toFixed(2), max: +s.max.toFixed(2), usPerCall: +(c.bytes / s.median / 1e3).toFixed(1) });
    let t = stats([]);
    if (typeof peer !== "string") {
      const l = await peer.ask(c);
      if (Array.isArray(l.seconds)) {
        t = stats((l.seconds as number[]).map((sec) => c.bytes / sec / 1e9));
        jsonLine({ impl: "torch", name: c.name, gbps: +t.median.toFixed(2), min: +t.min.toFixed(2), max: +t.max.toFixed(2), usPerCall: +(c.bytes / t.median / 1e3).toFixed(1) });
      }
    }
    rows.push([c.name, `${fmt(s.median, 2)} (${fmt(s.min, 2)}-${fmt(s.max, 2)})`, `${fmt(t.median, 2)} (${fmt(t.min, 2)}-${fmt(t.max, 2)})`, fmt(s.median / t.median, 2)]);
  }
  if (typeof peer !== "string") peer.close();
  console.log(`\nKernel GB/s (compulsory traffic), backend ${be.name}, isa ${native?.isa() ?? "none"}, ${threads} threads; median (min-max) of ${reps}`);
  printTable(["case", "ours GB/s", "torch GB/s", "ours/torch"], rows);
}
