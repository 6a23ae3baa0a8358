// State space models (issue 18's claims): the native selective scan against its js twin; the Mamba
// paper's selective copying at small scale (Mamba vs S4D, bench/ssm-copy.ts); per-token decoding
// latency of a Mamba LM (O(1) recurrent step) vs an attention LM (KV cache) as the context grows.
// Usage: npm run bench -- ssm [scan|copy|decode|all] [COPY_STEPS=3000] [CONTEXT=64] [COPY=8] [MODEL=both|mamba|s4d]
//   [--lr-schedule=cosine|constant|wsd] (the copy runs' lr after 100 warmup steps: cosine to 10%, constant, or
//   constant to 80% of the steps and then linear to 0).
// Writes bench/ssm-copy-CONTEXT-COPY.svg and bench/ssm-decode.svg. Run single-threaded (TSFORMER_THREADS=1) for
// the figures of bench/RESULTS.md. To train the two models in parallel processes, run `copy ... mamba` and
// `copy ... s4d` with their output to logs, then `npm run bench -- ssm copy-plot CONTEXT COPY LOG...`.

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import * as T from "../src/index.js";
import { selectiveScan } from "../src/nn/ssm/scan.js";
import { linePlotSvg, writeSvg } from "../src/train/metrics.js";
import { fmt, jsonLine, printTable, stats, timeIt } from "./common.js";
import { COPY_SCHEDULES, copyConfig, trainCopy, type CopyRun, type CopySchedule, type CopyTask } from "./ssm-copy.js";

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

// the same parameter count within 2%: a Mamba layer at d 64 (d_inner 128, N 16: 32,704) vs an S4D layer at d 120 (2 d^2 + 38 d: 33,360)
const COPY_MODELS = { mamba: { name: "Mamba (S6)", mixer: "mamba", d: 64 }, s4d: { name: "S4D (LTI)", mixer: "s4d", d: 120 } } as const;
type CopyModel = keyof typeof COPY_MODELS;

/** Trains the chosen models one after the other; the table and plot need both (else see copy-plot). */
async function copyClaim(steps: number, task: CopyTask, which: CopyModel[], schedule: CopySchedule): Promise<void> {
  const o = { steps, every: 100, batch: 32, lr: 2e-3, schedule };
  const runs = which.map((k) => trainCopy(COPY_MODELS[k].name, copyConfig(COPY_MODELS[k].mixer, COPY_MODELS[k].d, task), task, o));
  await copyReport(runs, task, which.length === 2);
}

/** The table (accuracy every 500 steps and at the last) and, with both models, the curve plot. */
async function copyReport(runs: CopyRun[], task: CopyTask, plot: boolean): Promise<void> {
  const last = Math.max(...runs.map((r) => r.steps.at(-1)!));
  const marks = [...new Set([...Array.from({ length: Math.floor(last / 500) }, (_, i) => 500 * (i + 1)), last])];
  // two decimals near 100%, so that 1 error in 2000 does not print as 100.0%
  const pct = (a: number) => fmt(100 * a, a >= 0.995 ? 2 : 1) + "%";
  const at = (r: CopyRun, s: number) => (r.steps.includes(s) ? pct(r.acc[r.steps.indexOf(s)]) : "-");
  printTable(["model", "params", ...marks.map((s) => `@${s}`), "best accuracy", "train seconds"],
    runs.map((r) => [r.name, r.params, ...marks.map((s) => at(r, s)), pct(Math.max(...r.acc)), fmt(r.seconds, 0)]));
  if (!plot) return;
  const series = runs.map((r) => ({ name: r.name, points: r.steps.map((s, i) => [s, 100 * r.acc[i]] as [number, number]) }));
  const file = `bench/ssm-copy-${task.context}-${task.copy}.svg`;
  await writeSvg(join(ROOT, file), linePlotSvg(series, { title: `Selective copying, ${task.copy} of ${task.context} (2 layers): held-out accuracy`, xLabel: "step", yLabel: "accuracy %" }));
  console.log(`wrote ${file}`);
}

/** Rebuilds the runs of this task from the JSON lines that trainCopy logged (models trained in separate processes). */
async function copyFromLogs(task: CopyTask, files: string[]): Promise<void> {
  const runs = new Map<string, CopyRun>();
  for (const f of files) {
    for (const line of (await readFile(f, "utf8")).split("\n")) {
      if (!line.startsWith('{"bench":"ssm-copy"')) continue;
      const j = JSON.parse(line) as { model: string; params: number; context: number; copy: number; step: number; acc: number; loss: number; seconds: number };
      if (j.context !== task.context || j.copy !== task.copy) continue;
      const r = runs.get(j.model) ?? { name: j.model, params: j.params, steps: [], acc: [], loss: [], seconds: 0 };
      r.steps.push(j.step), r.acc.push(j.acc), r.loss.push(j.loss), (r.seconds = j.seconds);
      runs.set(j.model, r);
    }
  }
  if (runs.size === 0) throw new RangeError(`ssm copy-plot: no ssm-copy lines for ${task.copy} of ${task.context} in ${files.join(", ")}`);
  await copyReport([...runs.values()], task, true);
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
  const sched = (argv.find((s) => s.startsWith("--lr-schedule="))?.slice(14) ?? "cosine") as CopySchedule;
  if (!COPY_SCHEDULES.includes(sched)) throw new RangeError(`ssm: --lr-schedule must be ${COPY_SCHEDULES.join(", ")}, got ${sched}`);
  argv = argv.filter((s) => !s.startsWith("--lr-schedule="));
  const what = argv[0] ?? "all";
  if (!["scan", "copy", "copy-plot", "decode", "all"].includes(what)) throw new RangeError(`ssm: expected scan, copy, copy-plot, decode or all, got ${what}`);
  // copy-plot takes CONTEXT COPY LOG...; the others STEPS CONTEXT COPY [MODEL]
  const a = what === "copy-plot" ? ["0", ...argv.slice(1)] : argv.slice(1);
  const steps = Number(a[0] ?? 3000), task = { context: Number(a[1] ?? 64), copy: Number(a[2] ?? 8) };
  if (what !== "copy-plot" && (!Number.isSafeInteger(steps) || steps < 100)) throw new RangeError(`ssm: COPY_STEPS must be an integer >= 100, got ${a[0]}`);
  if (!(Number.isSafeInteger(task.context) && Number.isSafeInteger(task.copy) && task.copy >= 1 && task.context >= task.copy)) throw new RangeError(`ssm: expected CONTEXT >= COPY >= 1, got ${a[1]} ${a[2]}`);
  if (what === "copy-plot") {
    if (a.length < 4) throw new RangeError("ssm copy-plot: expected CONTEXT COPY LOG..., the logs of the copy runs");
    return copyFromLogs(task, a.slice(3));
  }
  const model = a[3] ?? "both";
  if (!["mamba", "s4d", "both"].includes(model)) throw new RangeError(`ssm: MODEL must be mamba, s4d or both, got ${model}`);
  jsonLine({ bench: "ssm", backend: T.backend().name, threads: process.env.TSFORMER_THREADS ?? "default" });
  if (what === "scan" || what === "all") scanSpeed();
  if (what === "decode" || what === "all") await decodeLatency();
  if (what === "copy" || what === "all") await copyClaim(steps, task, model === "both" ? ["mamba", "s4d"] : [model as CopyModel], sched);
}
