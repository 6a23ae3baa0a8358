// Attention memory and speed: flash (tiled online softmax, O(N) saved for backward) vs the softmax path
// (materialized N x N probabilities), causal, batch 1, 8 heads, d = 64, N = 512 .. 16384. Each
// (impl, N) runs in its own child process so that its peak RSS (process.resourceUsage().maxRSS) is
// its own. Reported: bytes saved for backward (T.memoryStats), peak RSS, forward and forward+backward
// time. No PyTorch peer: torch 1.13 has no fused attention on CPU, its reference is the softmax path.
// Options: --n=512,1024 (sizes), --softmax-max=N (largest N for the softmax path, default 8192: at
// 16384 its P and dS would take 8.6 GB each), --reps=R (default 3, 1 from N = 4096 on),
// --backend=js|native (default: the active backend), --only=flash|softmax.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

import * as T from "../src/index.js";
import { fmt, jsonLine, printTable, stats } from "./common.js";

const H = 8, D = 64;
type Impl = "flash" | "softmax";

interface Result { impl: Impl; n: number; backend: string; savedBytes: number; rssBaseMB: number; peakRssMB: number; fwd: number[]; fwdBwd: number[] }

/** Child: one (impl, N) measurement, printed as one JSON line. */
function child(impl: Impl, n: number, reps: number): void {
  const gen = new T.RandomGenerator(1);
  const mk = () => T.randn([1, H, n, D], { generator: gen, requiresGrad: true });
  const q = mk(), k = mk(), v = mk(), gout = T.randn([1, H, n, D], { generator: gen });
  const attn = impl === "flash" ? T.flashAttention : T.attention;
  const rssBase = process.resourceUsage().maxRSS;
  const fwd: number[] = [], fwdBwd: number[] = [];
  let savedBytes = 0;
  for (let r = 0; r < reps; r++) {
    for (const x of [q, k, v]) x.grad = null;
    const before = T.memoryStats().savedBytes;
    const t0 = performance.now();
    const o = attn(q, k, v, { causal: true });
    const t1 = performance.now();
    savedBytes = T.memoryStats().savedBytes - before;
    o.backward(gout);
    const t2 = performance.now();
    fwd.push((t1 - t0) / 1000);
    fwdBwd.push((t2 - t0) / 1000);
  }
  const res: Result = { impl, n, backend: T.backend().name, savedBytes, rssBaseMB: rssBase / 1024, peakRssMB: process.resourceUsage().maxRSS / 1024, fwd, fwdBwd };
  console.log(JSON.stringify(res));
}

function spawnChild(impl: Impl, n: number, reps: number, backend: string): Result | string {
  const run = fileURLToPath(new URL("./run.ts", import.meta.url));
  const env = { ...process.env, TSFORMER_BACKEND: backend };
  const r = spawnSync(process.execPath, [...process.execArgv, run, "attention", `--child=${impl},${n},${reps}`], { env, encoding: "utf8", maxBuffer: 1 << 24 });
  const line = r.stdout?.split("\n").find((l) => l.startsWith("{"));
  const err = r.stderr ?? "";
  if (r.status !== 0 || !line) return `exit ${r.status ?? r.signal}: ${/^\w*Error\b.*$/m.exec(err)?.[0] ?? err.trim().slice(-300)}`;
  return JSON.parse(line) as Result;
}

export function main(argv: string[]): void {
  const opt = (name: string) => argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
  const c = opt("child");
  if (c) {
    const [impl, n, reps] = c.split(",");
    child(impl as Impl, Number(n), Number(reps));
    return;
  }
  const sizes = (opt("n") ?? "512,1024,2048,4096,8192,16384").split(",").map(Number);
  const softmaxMax = Number(opt("softmax-max") ?? 8192);
  const backend = opt("backend") ?? T.backend().name;
  const impls = (["flash", "softmax"] as const).filter((i) => (opt("only") ?? i) === i);
  jsonLine({ bench: "attention", backend, heads: H, headDim: D, batch: 1, causal: true, softmaxMax,
    note: "flash runs the js reference kernel until a native flashForward/flashBackward exists" });

  const results = new Map<string, Result>();
  for (const n of sizes) {
    const reps = Number(opt("reps") ?? (n >= 4096 ? 1 : 3));
    for (const impl of impls) {
      if (impl === "softmax" && n > softmaxMax) continue;
      const r = spawnChild(impl, n, reps, backend);
      if (typeof r === "string") { console.error(`# ${impl} N=${n} failed: ${r}`); continue; }
      results.set(`${impl} ${n}`, r);
      const f = stats(r.fwd), fb = stats(r.fwdBwd);
      jsonLine({ impl, n, backend: r.backend, savedMB: +(r.savedBytes / 2 ** 20).toFixed(2), rssBaseMB: +r.rssBaseMB.toFixed(0), peakRssMB: +r.peakRssMB.toFixed(0),
        fwdS: +f.median.toFixed(3), fwdBwdS: +fb.median.toFixed(3), fwdBwdMinS: +fb.min.toFixed(3), fwdBwdMaxS: +fb.max.toFixed(3), reps: fb.n });
    }
  }

  const cell = (r: Result | undefined, f: (r: Result) => string) => (r ? f(r) : "-");
  const time = (r: Result) => { const s = stats(r.fwdBwd); return `${fmt(s.median, 2)} (${fmt(s.min, 2)}-${fmt(s.max, 2)})`; };
  const rows = sizes.map((n) => {
    const fl = results.get(`flash ${n}`), sm = results.get(`softmax ${n}`);
    const speed = fl && sm ? stats(sm.fwdBwd).median / stats(fl.fwdBwd).median : NaN;
    return [n, cell(fl, (r) => fmt(r.savedBytes / 2 ** 20, 1)), cell(sm, (r) => fmt(r.savedBytes / 2 ** 20, 1)),
      cell(fl, (r) => fmt(r.peakRssMB, 0)), cell(sm, (r) => fmt(r.peakRssMB, 0)), cell(fl, time), cell(sm, time), fmt(speed, 2)];
  });
  console.log(`\nCausal attention, batch 1, ${H} heads, d = ${D}, float32, backend ${backend}; time = forward + backward, seconds, median (min-max); softmax path up to N = ${softmaxMax}`);
  printTable(["N", "flash saved MB", "softmax saved MB", "flash RSS MB", "softmax RSS MB", "flash fwd+bwd s", "softmax fwd+bwd s", "flash speedup"], rows);
  for (const [n, goal] of [[512, 1], [4096, 2]]) {
    const fl = results.get(`flash ${n}`), sm = results.get(`softmax ${n}`);
    if (fl && sm) jsonLine({ ratio: `flash speedup at N=${n}`, value: +(stats(sm.fwdBwd).median / stats(fl.fwdBwd).median).toFixed(2), goal: `>= ${goal}` });
  }
}
