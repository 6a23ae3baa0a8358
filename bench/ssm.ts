// State space models (issue 18's claims): the native selective scan against its js twin; the Mamba
// paper's selective copying at small scale (Mamba vs S4D, bench/ssm-copy.ts); per-token decoding
// latency of a Mamba LM (O(1) recurrent step) vs an attention LM (KV cache) as the context grows.
// Usage: npm run bench -- ssm [scan|copy|decode|all] [COPY_STEPS=3000] [CONTEXT=64] [COPY=8]. Writes
// bench/ssm-copy-CONTEXT-COPY.svg and bench/ssm-decode.svg. Run single-threaded (TSFORMER_THREADS=1) for the figures of bench/RESULTS.md.

import { join } from "node:path";
import * as T from "../src/index.js";
import { selectiveScan } from "../src/nn/ssm/scan.js";
import { linePlotSvg, writeSvg } from "../src/train/metrics.js";
import { fmt, jsonLine, printTable, stats, timeIt } from "./common.js";
import { copyConfig, trainCopy, type CopyTask } from "./ssm-copy.js";

const ROOT = new URL("..", import.meta.url).pathname;

/** Native vs js scan (forward, forward + backward) at Mamba-block sizes (d_inner 256, N 16). */
function scanSpeed(): void {
  const rows: (string | number)[][] = [];
  for (const L of [256, 1024]) {
    const [b, d, n] = [1, 256, 16], g = new T.RandomGenerator(1);
    const x = [T.randn([b, d, L], { generator: g }), T.softplus(T.randn([b, d, L], { generator: g })), T.neg(T.exp(T.randn([d, n], { generator: g }))),
      T.randn([b, n, L], { generator: g }), T.randn([b, n, L], { generator: g }), T.randn([d], { generator: g })].map((t) => t.requiresGrad_());
    const ms: Record<string, [number, number]> = {};
    for (const be of T.availableBackends()) {
      T.setBackend(be);
      const fwd = stats(timeIt(() => { T.noGrad(() => selectiveScan(x[0], x[1], x[2], x[3], x[4], x[5])); }, 5, 1)).median * 1e3;
      const both = stats(timeIt(() => { T.sum(selectiveScan(x[0], x[1], x[2], x[3], x[4], x[5]).y).backward(); }, 5, 1)).median * 1e3;
      ms[be] = [fwd, both];
      jsonLine({ bench: "ssm-scan", backend: be, b, d, n, L, forwardMs: Number(fwd.toFixed(3)), forwardBackwardMs: Number(both.toFixed(3)) });
    }
    T.setBackend("native" in ms ? "native" : "js");
    const speedup = (i: 0 | 1) => (ms.native ? fmt(ms.js[i] / ms.native[i], 1) + "x" : "-");
    rows.push([`b ${b}, d ${d}, N ${n}, L ${L}`, fmt(ms.js[0], 2), ms.native ? fmt(ms.native[0], 2) : "-", speedup(0), fmt(ms.js[1], 2), ms.native ? fmt(ms.native[1], 2) : "-", speedup(1)]);
  }
  printTable(["scan", "js fwd ms", "native fwd ms", "speedup", "js fwd+bwd ms", "native fwd+bwd ms", "speedup"], rows);
}

async function copyClaim(steps: number, task: CopyTask): Promise<void> {
  // the same parameter count within 2%: a Mamba layer at d 64 (d_inner 128, N 16: 32,704) vs an S4D layer at d 120 (2 d^2 + 38 d: 33,360)
  const o = { steps, every: 100, batch: 32, lr: 2e-3 };
  const runs = [trainCopy("Mamba (S6)", copyConfig("mamba", 64, task), task, o), trainCopy("S4D (LTI)", copyConfig("s4d", 120, task), task, o)];
  printTable(["model", "params", "steps", "final accuracy", "best accuracy", "train seconds"],
    runs.map((r) => [r.name, r.params, steps, fmt(100 * r.acc.at(-1)!, 1) + "%", fmt(100 * Math.max(...r.acc), 1) + "%", fmt(r.seconds, 0)]));
  const series = runs.map((r) => ({ name: r.name, points: r.steps.map((s, i) => [s, 100 * r.acc[i]] as [number, number]) }));
  const file = `bench/ssm-copy-${task.context}-${task.copy}.svg`;
  await writeSvg(join(ROOT, file), linePlotSvg(series, { title: `Selective copying, ${task.copy} of ${task.context} (2 layers): held-out accuracy`, xLabel: "step", yLabel: "accuracy %" }));
  console.log(`wrote ${file}`);
}

/**
 * Per-token decode latency after a prefill of each context length. The two models decode in turns
 * (one token each), so that a machine shared with other work slows both alike; the median is reported.
 */
async function decodeLatency(): Promise<void> {
  const contexts = [256, 1024, 4096, 8192], steps = 48, warmup = 8, maxSeqLen = 8192 + steps + warmup + 8;
  const base = { vocabSize: 65, dModel: 128, nHeads: 4, dFF: 384, maxSeqLen, position: "rope", norm: "rmsnorm", ffn: "swiglu", bias: false } as const;
  // two Mamba layers per attention layer (+ FFN) hold about the same parameters, as in the Mamba paper's comparisons
  const models = [
    { name: "attention (4 layers)", cfg: T.parseModelConfig({ ...base, nLayers: 4 }) },
    { name: "Mamba (8 layers)", cfg: T.parseModelConfig({ ...base, nLayers: 8, position: "none", mixer: "mamba", ssm: { ffn: false } }) },
  ].map((m) => ({ ...m, model: new T.TransformerLM(m.cfg, { generator: new T.RandomGenerator(1) }) }));
  const params = models.map((m) => m.model.parameters().reduce((a, p) => a + p.numel, 0));
  const ms: number[][] = models.map(() => []);
  const one = (t: number) => T.tensor(Int32Array.of(t), { shape: [1, 1] });
  T.noGrad(() => {
    for (const C of contexts) {
      const ids = new Int32Array(C);
      new T.RandomGenerator(C).randint(ids, 65);
      const states = models.map(({ model }) => {
        model.eval();
        const state = model.newState(maxSeqLen);
        model.forward(T.tensor(ids, { shape: [1, C] }), T.SeqContext.decode(state));
        return state;
      });
      const times: number[][] = models.map(() => []);
      for (let s = 0; s < warmup + steps; s++) {
        models.forEach(({ model }, i) => {
          const t0 = process.hrtime.bigint();
          model.forward(one(s % 65), T.SeqContext.decode(states[i])).logits.toTypedArray();
          if (s >= warmup) times[i].push(Number(process.hrtime.bigint() - t0) / 1e6);
        });
      }
      models.forEach(({ name }, i) => {
        ms[i].push(stats(times[i]).median);
        jsonLine({ bench: "ssm-decode", model: name, params: params[i], context: C, msPerToken: Number(ms[i].at(-1)!.toFixed(3)), minMs: Number(stats(times[i]).min.toFixed(3)) });
      });
    }
  });
  printTable(["model", "params", ...contexts.map((c) => `ms/token @${c}`)], models.map(({ name }, i) => [name, params[i], ...ms[i].map((x) => fmt(x, 2))]));
  const series = models.map(({ name }, i) => ({ name, points: contexts.map((c, j) => [c, ms[i][j]] as [number, number]) }));
  await writeSvg(join(ROOT, "bench/ssm-decode.svg"), linePlotSvg(series, { title: "Per-token decode latency after a prefill (1 thread, median)", xLabel: "context (tokens)", yLabel: "ms per token" }));
  console.log("wrote bench/ssm-decode.svg");
}

export async function main(argv: string[]): Promise<void> {
  const what = argv[0] ?? "all", steps = Number(argv[1] ?? 3000);
  if (!["scan", "copy", "decode", "all"].includes(what)) throw new RangeError(`ssm: expected scan, copy, decode or all, got ${what}`);
  if (!Number.isSafeInteger(steps) || steps < 100) throw new RangeError(`ssm: COPY_STEPS must be an integer >= 100, got ${argv[1]}`);
  jsonLine({ bench: "ssm", backend: T.backend().name, threads: process.env.TSFORMER_THREADS ?? "default" });
  if (what === "scan" || what === "all") scanSpeed();
  if (what === "decode" || what === "all") await decodeLatency();
  const task = { context: Number(argv[2] ?? 64), copy: Number(argv[3] ?? 8) };
  if (!(Number.isSafeInteger(task.context) && Number.isSafeInteger(task.copy) && task.copy >= 1 && task.context >= task.copy)) throw new RangeError(`ssm: expected CONTEXT >= COPY >= 1, got ${argv[2]} ${argv[3]}`);
  if (what === "copy" || what === "all") await copyClaim(steps, task);
}
