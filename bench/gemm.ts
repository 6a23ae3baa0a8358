// GEMM benchmark: native fp32 (all transpose variants), bf16 and 1 vs 2 threads, with PyTorch
// (OpenBLAS, 2 threads) on the same shapes in the same run. Shapes are m x k x n (C is m x n).
// Options: --reps=N (default 9), --rounds=N (default 3: ours and torch alternate in N rounds), --only=SUBSTRING, --no-torch, --model-shapes (the GEMMs of our small
// GPTs instead of the square sizes: Linear forward NT / grad-input NN / grad-weight TN at rows = 2048
// and 4096, and batched per-head attention products), --threads=N (default: pool size).
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";

import { native, nativeLoadError, getNativeThreads, setNativeThreads } from "../src/backend/native/addon.js";
import { nativeGemm, nativeGemmBf16, toBf16 } from "../src/backend/native/gemm.js";
import { fmt, jsonLine, printTable, stats, timeIt, TorchPeer } from "./common.js";

interface Case { name: string; batch: number; m: number; k: number; n: number; tA: boolean; tB: boolean; dtype: "fp32" | "bf16"; threads: number; reps: number; warmup: number }

function cases(threads: number, reps: number): Case[] {
  const out: Case[] = [];
  const add = (m: number, k: number, n: number, tA: boolean, tB: boolean, dtype: "fp32" | "bf16", th = threads) => {
    const op = `${tA ? "T" : "N"}${tB ? "T" : "N"}`;
    out.push({ name: `${dtype} ${op} ${m}x${k}x${n}${th !== threads ? ` ${th}T` : ""}`, batch: 1, m, k, n, tA, tB, dtype, threads: th, reps, warmup: 2 });
  };
  const shapes: [number, number, number][] = [[256, 256, 256], [512, 512, 512], [1024, 1024, 1024], [2048, 2048, 2048], [4096, 384, 1536], [4096, 1536, 384]];
  for (const [m, k, n] of shapes) add(m, k, n, false, false, "fp32");
  for (const s of [1024, 2048]) for (const [tA, tB] of [[false, true], [true, false], [true, true]] as const) add(s, s, s, tA, tB, "fp32");
  for (const [m, k, n] of shapes) add(m, k, n, false, false, "bf16");
  add(1024, 1024, 1024, false, false, "fp32", 1);
  return out;
}

// Shapes of the GEMMs in a training step of our small GPTs (src/ops/linear.ts, src/ops/attention.ts).
// Linear y = x W^T (W = [out, in]): forward NT m=rows k=in n=out; grad input NN m=rows k=out n=in;
// grad weight TN m=out k=rows n=in (the long-k reduction). Attention per head, batch = B*H: scores
// Q K^T NT m=T k=hd n=T; P V NN m=T k=T n=hd; grad K/V (dS^T Q, P^T dO) TN m=T k=T n=hd.
function modelCases(threads: number, reps: number): Case[] {
  const out: Case[] = [];
  const add = (tag: string, batch: number, m: number, k: number, n: number, tA: boolean, tB: boolean) => {
    const op = `${tA ? "T" : "N"}${tB ? "T" : "N"}`;
    out.push({ name: `${tag} ${op} ${batch > 1 ? `${batch}x` : ""}${m}x${k}x${n}`, batch, m, k, n, tA, tB, dtype: "fp32", threads, reps, warmup: 2 });
  };
  const linear: [number, number][] = [[128, 512], [512, 128], [384, 384], [384, 1536], [1536, 384]];
  for (const rows of [2048, 4096])
    for (const [inF, outF] of linear) {
      add("lin-fwd", 1, rows, inF, outF, false, true);
      add("lin-gx", 1, rows, outF, inF, false, false);
      add("lin-gw", 1, outF, rows, inF, true, false);
    }
  for (const [bh, t, hd] of [[384, 64, 32], [256, 128, 32], [128, 256, 64]]) {
    add("attn-qk", bh, t, hd, t, false, true);
    add("attn-pv", bh, t, t, hd, false, false);
    add("attn-gkv", bh, t, t, hd, true, false);
  }
  return out;
}

function cpuinfo(): { mhz: number; vendor: string; family: number } {
  try {
    const s = readFileSync("/proc/cpuinfo", "utf8");
    const m = /cpu MHz\s*:\s*([\d.]+)/.exec(s), v = /vendor_id\s*:\s*(\S+)/.exec(s), f = /cpu family\s*:\s*(\d+)/.exec(s);
    return { mhz: m ? Number(m[1]) : NaN, vendor: v ? v[1] : "unknown", family: f ? Number(f[1]) : NaN };
  } catch { return { mhz: NaN, vendor: "unknown", family: NaN }; }
}

function rand(n: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = Math.random() * 2 - 1;
  return x;
}

// The other side's idle threads spin for a while after their last job (libgomp, our pool: ~0.2 ms):
// let them fall asleep before timing.
const settle = () => new Promise((r) => setTimeout(r, 30));

/** Sets up the operands of a case once; the returned function times `reps` repetitions (GFLOPS each). */
function prepareOurs(c: Case): (reps: number) => number[] {
  const sa = c.m * c.k, sb = c.k * c.n, sc = c.m * c.n;
  const a = rand(c.batch * sa), b = rand(c.batch * sb), out = new Float32Array(c.batch * sc);
  const g = {
    batch: c.batch, m: c.m, n: c.n, k: c.k, alpha: 1, beta: 0,
    a, aOff: 0, lda: c.tA ? c.m : c.k, strideA: sa, transA: c.tA,
    b, bOff: 0, ldb: c.tB ? c.k : c.n, strideB: sb, transB: c.tB,
    c: out, cOff: 0, ldc: c.n, strideC: sc,
  };
  let fn: () => void;
  if (c.dtype === "bf16") {
    const a16 = new Uint16Array(a.length), b16 = new Uint16Array(b.length);
    toBf16(a, a16); toBf16(b, b16);
    const gb = { ...g, a: a16, b: b16 };
    fn = () => nativeGemmBf16(gb);
  } else fn = () => nativeGemm(g);
  let inner = 0;
  const flops = 2 * c.batch * c.m * c.n * c.k;
  return (reps) => {
    const saved = getNativeThreads();
    setNativeThreads(c.threads);
    try {
      if (!inner) {
        const t0 = process.hrtime.bigint(); fn(); const first = Number(process.hrtime.bigint() - t0) / 1e9;
        inner = Math.max(1, Math.round(0.02 / Math.max(first, 1e-6)));
      }
      return timeIt(fn, reps, c.warmup, inner).map((s) => flops / s / 1e9);
    } finally { setNativeThreads(saved); }
  };
}

export async function main(argv: string[]): Promise<void> {
  if (!native) throw new Error(`native addon not loaded: ${nativeLoadError}`);
  const opt = (k: string) => argv.find((a) => a.startsWith(`--${k}=`))?.split("=")[1];
  const reps = Number(opt("reps") ?? 9), rounds = Number(opt("rounds") ?? 3), only = opt("only");
  if (!(Number.isInteger(rounds) && rounds >= 1 && reps >= rounds)) throw new RangeError(`--rounds: expected an integer in [1, reps]`);
  const threads = opt("threads") ? Number(opt("threads")) : getNativeThreads();
  if (!(Number.isInteger(threads) && threads >= 1)) throw new RangeError(`--threads: expected a positive integer`);
  const model = argv.includes("--model-shapes");
  let list = model ? modelCases(threads, reps) : cases(threads, reps);
  if (only) list = list.filter((c) => c.name.includes(only));

  // Peak: fp32 FLOP/cycle/core x measured clock x threads. Zen 2-4 and Intel AVX2 cores retire two
  // 8-wide FMAs per cycle (32 FLOP/cycle); Zen 4 runs a 16-wide AVX-512 FMA as two halves, so also 32;
  // Intel server cores with AVX-512 and Zen 5 (family 26) have two 16-wide FMA units (64). The clock is
  // what the core runs at with one thread busy (turbo included), so the peak is an upper bound.
  const ghz = native.clockGHz(), { mhz, vendor, family } = cpuinfo();
  const flopsPerCycle = native.isa().startsWith("avx512") && (vendor === "GenuineIntel" || family >= 26) ? 64 : 32;
  const peak = (th: number) => th * ghz * flopsPerCycle;
  jsonLine({ bench: "gemm", isa: native.isa(), features: native.cpuFeatures(), threads, clockGHz: +ghz.toFixed(3),
    clockMethod: "timed chain of 5e6 dependent 64-bit multiplies (3 cycles each), best of 5", cpuinfoMHz: mhz, vendor,
    flopsPerCycle, peakGflops: +peak(threads).toFixed(1), loadavg: loadavg().map((x) => +x.toFixed(2)), shape: "m x k x n, C[m,n] = op(A)[m,k] op(B)[k,n]" });

  let peer: TorchPeer | string = "disabled by --no-torch";
  if (!argv.includes("--no-torch")) peer = await TorchPeer.start(fileURLToPath(new URL("./torch/gemm.py", import.meta.url)));
  if (typeof peer === "string") console.log(`# PyTorch peer not run: ${peer}; our figures only.`);
  else jsonLine({ impl: "torch", ...peer.hello });

  // Each case in rounds: some repetitions of ours, then the same number of torch's, again and again,
  // so that a change in machine load (other tenants) falls on both sides alike.
  const ours = new Map<string, number[]>(), theirs = new Map<string, number[]>();
  for (const c of list) {
    const measure = prepareOurs(c);
    const g: number[] = [], t: number[] = [];
    let note: unknown;
    for (let r = 0; r < rounds; r++) {
      const n = Math.round(reps * (r + 1) / rounds) - Math.round(reps * r / rounds);
      await settle();
      g.push(...measure(n));
      await settle();
      if (typeof peer !== "string" && note === undefined) {  // a "slow" note: one sample is enough
        const l = await peer.ask({ ...c, reps: n });
        if (Array.isArray(l.gflops)) t.push(...(l.gflops as number[]));
        note ??= l.note;
      }
    }
    ours.set(c.name, g);
    const s = stats(g);
    jsonLine({ impl: "tsformer", name: c.name, batch: c.batch, m: c.m, k: c.k, n: c.n, op: `${c.tA ? "T" : "N"}${c.tB ? "T" : "N"}`, dtype: c.dtype,
      threads: c.threads, rounds, gflops: +s.median.toFixed(2), min: +s.min.toFixed(2), max: +s.max.toFixed(2), pctPeak: +(100 * s.median / peak(c.threads)).toFixed(1) });
    if (t.length) {
      theirs.set(c.name, t);
      const ts = stats(t);
      jsonLine({ impl: "torch", name: c.name, gflops: +ts.median.toFixed(2), min: +ts.min.toFixed(2), max: +ts.max.toFixed(2), ...(note ? { note } : {}) });
    }
  }
  if (typeof peer !== "string") peer.close();

  const med = (m: Map<string, number[]>, k: string) => (m.has(k) ? stats(m.get(k)!).median : NaN);
  const rows = list.map((c) => {
    const s = stats(ours.get(c.name)!), t = med(theirs, c.name);
    return [c.name, c.threads, `${fmt(s.median)} (${fmt(s.min)}-${fmt(s.max)})`, fmt(100 * s.median / peak(c.threads)), fmt(t), fmt(s.median / t, 2)];
  });
  console.log(`\nGEMM GFLOPS, shapes m x k x n; isa ${native.isa()}; peak = threads x ${fmt(ghz, 2)} GHz (dependent-multiply clock; /proc/cpuinfo says ${fmt(mhz, 0)} MHz) x ${flopsPerCycle} FLOP/cycle = ${fmt(peak(threads))} GFLOPS at ${threads} threads`);
  printTable(["case", "thr", "ours median (min-max)", "%peak", "torch", "ours/torch"], rows);

  console.log(`# load average at start/end of the run: see the header line; now ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
  if (model) {  // geometric mean of ours/torch per kind of product
    const groups = new Map<string, number[]>();
    for (const c of list) {
      const r = stats(ours.get(c.name)!).median / med(theirs, c.name), tag = c.name.split(" ").slice(0, 2).join(" ");
      if (Number.isFinite(r)) groups.set(tag, [...(groups.get(tag) ?? []), r]);
    }
    const gm = (xs: number[]) => Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length);
    const rows2 = [...groups].map(([tag, xs]) => [tag, xs.length, fmt(gm(xs), 2), fmt(Math.min(...xs), 2)]);
    for (const [tag, n, g, mn] of rows2) jsonLine({ group: tag, cases: n, geomeanRatio: Number(g), minRatio: Number(mn) });
    if (rows2.length) { console.log(""); printTable(["group", "cases", "ours/torch geomean", "min"], rows2); }
    return;
  }
  // Derived goals: transposes vs NN, bf16 vs fp32, 2 threads vs 1.
  const derived: (string | number)[][] = [];
  for (const s of [1024, 2048]) {
    const nn = med(ours, `fp32 NN ${s}x${s}x${s}`);
    for (const op of ["NT", "TN", "TT"]) {
      const v = med(ours, `fp32 ${op} ${s}x${s}x${s}`);
      if (Number.isFinite(v) && Number.isFinite(nn)) derived.push([`fp32 ${op} / NN ${s}^3`, fmt(v / nn, 2), ">= 0.90"]);
    }
  }
  for (const [m, k, n] of [[1024, 1024, 1024], [2048, 2048, 2048]]) {
    const r = med(ours, `bf16 NN ${m}x${k}x${n}`) / med(ours, `fp32 NN ${m}x${k}x${n}`);
    if (Number.isFinite(r)) derived.push([`bf16 / fp32 ${m}^3`, fmt(r, 2), ">= 1.80"]);
  }
  const r1 = med(ours, `fp32 NN 1024x1024x1024`) / med(ours, `fp32 NN 1024x1024x1024 1T`);
  if (Number.isFinite(r1)) derived.push([`${threads}T / 1T fp32 1024^3`, fmt(r1, 2), ">= 1.80"]);
  for (const [lbl, v, goal] of derived) jsonLine({ ratio: lbl, value: Number(v), goal });
  if (derived.length) { console.log(""); printTable(["ratio", "value", "goal"], derived); }
}
