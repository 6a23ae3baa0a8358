// Context extension past the training length (Su Jianlin, "Transformer升级之路" 10-13, kexue.fm/archives/9675,
// 9706, 9708, 9728; HF modeling_rope_utils.py for PI / NTK / dynamic / YaRN / Llama 3) and ReRoPE's speed.
// Usage: npm run bench -- context [1|2|3] [--steps=N] (part 2's steps per model, default 600); no part = all three.
//
// Part 1: the pretrained stories260K (trained at 512) read under each position scheme (withPositions),
//   scoring the same tokens in windows of 512 .. 4096 (scoreTokens). Text: the TinyStories validation
//   stories of data/tinystories-valid-head.txt, each trimmed and encoded with BOS in front, concatenated
//   (llama2.c tinystories.py pretokenize: encode(text.strip(), bos=True, eos=False)); the first, partial
//   story is dropped. Factor 8 = 4096 / 512 wherever a factor applies.
// Part 2: inverse Leaky ReRoPE (post 13) on Shakespeare, char level: two llama-small-char models (T = 128,
//   same init seed, data order and steps, trained interleaved a step at a time), (a) plain RoPE and
//   (b) trained with rerope { window 32, leak 8 }, both scored with plain RoPE on the held-out last 10 %
//   at 128 .. 1024; (a) also under ReRoPE w 32 ("RoPE -> ReRoPE", post 12).
// Part 3: forward time of stories260K on one 4096-token window, plain (flash) vs ReRoPE vs Leaky ReRoPE in
//   alternating rounds, and the ops reropeAttention vs flashAttention on [1, 8, 4096, 64], with a PyTorch
//   peer (bench/torch/context_peer.py: Su's two-matrix ReRoPE and torch's attention, both materialized).

import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as T from "../src/index.js";
import { presetConfig } from "../src/cli/presets.js";
import { linePlotSvg, type Series } from "../src/train/metrics.js";
import { fmt, jsonLine, printTable, stats, TorchPeer } from "./common.js";

const ROOT = new URL("..", import.meta.url).pathname;
const out = (f: string) => join(ROOT, "bench", f);

/** Writes an SVG and, when rsvg-convert exists, its PNG twin. */
function writePlot(file: string, series: Series[], o: { title: string; xLabel: string; yLabel: string }): void {
  writeFileSync(out(file), linePlotSvg(series, o));
  const png = file.replace(/\.svg$/, ".png"), rsvg = spawnSync("rsvg-convert", ["--version"]).status === 0;
  if (rsvg) execFileSync("rsvg-convert", ["-o", out(png), out(file)]);
  console.log(`wrote bench/${file}${rsvg ? ` and bench/${png}` : ""}`);
}

const load = () => execFileSync("uptime").toString().trim().replace(/^.*load average: /, "load ");

// ---------------------------------------------------------------- part 1

const LENGTHS = [512, 1024, 2048, 4096], WINDOWS = 16, BUCKET = 128;

interface Scheme { name: string; o: T.PositionOptions }
const f8 = (type: string, extra: Partial<T.RopeScaling> = {}) => ({ type, factor: 8, ...extra });
const SCHEMES: Scheme[] = [
  { name: "RoPE", o: {} },
  { name: "PI (linear 8)", o: { ropeScaling: f8("linear") } },
  { name: "NTK (ntk 8)", o: { ropeScaling: f8("ntk") } },
  { name: "dynamic NTK (8)", o: { ropeScaling: f8("dynamic") } },
  { name: "YaRN (8)", o: { ropeScaling: f8("yarn") } },
  { name: "Llama 3 (8)", o: { ropeScaling: f8("llama3") } },
  { name: "mixed base (8, 0.625)", o: { ropeScaling: f8("mixed_base", { exponent: 0.625 }) } },
  { name: "NTK + logn", o: { ropeScaling: f8("ntk"), logn: true } },
  { name: "mixed base + logn", o: { ropeScaling: f8("mixed_base", { exponent: 0.625 }), logn: true } },
  { name: "ReRoPE w128", o: { rerope: { window: 128, leak: 0 } } },
  { name: "ReRoPE w256", o: { rerope: { window: 256, leak: 0 } } },
  { name: "Leaky ReRoPE w128 1/16", o: { rerope: { window: 128, leak: 1 / 16 } } },
  { name: "ReRoPE w256 + logn", o: { rerope: { window: 256, leak: 0 }, logn: true } },
];
const COLORS = ["#000000", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e"];
const BY_POSITION = ["RoPE", "NTK (ntk 8)", "YaRN (8)", "ReRoPE w256"];

async function storyTokens(): Promise<number[]> {
  const tok = await T.Llama2cTokenizer.load(join(ROOT, "data/tok512.bin"));
  const stories = readFileSync(join(ROOT, "data/tinystories-valid-head.txt"), "utf8").split("<|endoftext|>").slice(1)
    .map((s) => s.trim()).filter((s) => s.length > 0);
  const ids: number[] = [];
  for (const s of stories) ids.push(...tok.encode(s, { bos: true }));
  return ids;
}

async function part1(): Promise<void> {
  const base = await T.loadLlama2c(join(ROOT, "data/stories260K.bin"));
  const all = await storyTokens();
  const n = WINDOWS * 4096 + 1;
  if (all.length < n) throw new Error(`context bench: ${all.length} tokens of stories, expected at least ${n}`);
  const ids = all.slice(0, n);
  jsonLine({ bench: "context", part: 1, model: "stories260K", trainLen: base.config.maxSeqLen, tokens: n - 1, bos: ids.filter((t) => t === 1).length, load: load() });
  const t0 = performance.now();
  const rows: { name: string; loss: number[]; near: number; far: number; pos?: Float64Array; posCount?: Float64Array }[] = [];
  for (const s of SCHEMES) {
    const m = T.withPositions(base, s.o);
    const loss: number[] = [];
    let near = NaN, far = NaN, pos: Float64Array | undefined, posCount: Float64Array | undefined;
    for (const L of LENGTHS) {
      const t = performance.now();
      const r = T.scoreTokens(m, ids, { window: L, byPosition: L === 4096 });
      loss.push(r.loss);
      if (r.byPosition) {
        ({ nll: pos, count: posCount } = r.byPosition);
        const sum = (a: Float64Array, lo: number, hi: number) => a.subarray(lo, hi).reduce((p, q) => p + q, 0);
        near = sum(pos, 0, 512) / sum(posCount, 0, 512);
        far = sum(pos, 512, 4096) / sum(posCount, 512, 4096);
      }
      jsonLine({ part: 1, scheme: s.name, window: L, loss: +r.loss.toFixed(5), tokens: r.tokens, seconds: +((performance.now() - t) / 1000).toFixed(2) });
    }
    rows.push({ name: s.name, loss, near, far, pos, posCount });
  }
  console.log(`\nstories260K (trained at 512), ${n - 1} TinyStories validation tokens scored in windows of L (the same tokens at every L); loss in nats/token; ${((performance.now() - t0) / 1000).toFixed(0)} s, ${load()}`);
  printTable(["scheme", ...LENGTHS.map(String), "4096 - 512", "4096: pos < 512", "4096: pos >= 512"],
    rows.map((r) => [r.name, ...r.loss.map((x) => fmt(x, 4)), (r.loss[3] - r.loss[0] >= 0 ? "+" : "") + fmt(r.loss[3] - r.loss[0], 4), fmt(r.near, 4), fmt(r.far, 4)]));
  // Two plots, frequency scalings (with RoPE) and ReRoPE (without: its scale would flatten their differences).
  const curve = (r: (typeof rows)[number]) => ({ name: r.name, color: COLORS[rows.indexOf(r)], points: r.loss.map((x, i) => [Math.log2(LENGTHS[i]), x] as [number, number]) });
  const isRerope = (r: (typeof rows)[number]) => !!SCHEMES.find((s) => s.name === r.name)!.o.rerope;
  writePlot("context.svg", rows.filter((r) => !isRerope(r)).map(curve),
    { title: "stories260K (trained at 512), RoPE scalings: loss vs window", xLabel: "log2(window length)", yLabel: "loss (nats/token)" });
  writePlot("context-rerope.svg", rows.filter(isRerope).map(curve),
    { title: "stories260K (trained at 512), ReRoPE: loss vs window", xLabel: "log2(window length)", yLabel: "loss (nats/token)" });
  writePlot("context-position.svg", rows.filter((r) => BY_POSITION.includes(r.name)).map((r) => {
    const pts: [number, number][] = [];
    for (let b = 0; b < 4096; b += BUCKET) {
      const nll = r.pos!.subarray(b, b + BUCKET).reduce((p, q) => p + q, 0), c = r.posCount!.subarray(b, b + BUCKET).reduce((p, q) => p + q, 0);
      pts.push([b + BUCKET / 2, nll / c]);
    }
    return { name: r.name, color: COLORS[rows.indexOf(r)], points: pts };
  }), { title: `stories260K in 4096-token windows: loss by position (${BUCKET}-token buckets)`, xLabel: "position in the window", yLabel: "loss (nats/token)" });
  verdicts(rows);
}

function verdicts(rows: { name: string; loss: number[] }[]): void {
  const rise = (name: string) => { const r = rows.find((x) => x.name === name)!; return r.loss[3] - r.loss[0]; };
  const at = (name: string, i: number) => rows.find((x) => x.name === name)!.loss[i];
  const best = rows.reduce((a, b) => (b.loss[3] < a.loss[3] ? b : a));
  jsonLine({ claim: 1, text: "plain RoPE's loss past 512 rises sharply", rise1024: +(at("RoPE", 1) - at("RoPE", 0)).toFixed(4), rise4096: +rise("RoPE").toFixed(4) });
  for (const s of ["NTK (ntk 8)", "dynamic NTK (8)", "YaRN (8)"]) jsonLine({ claim: 2, scheme: s, loss512: +at(s, 0).toFixed(4), loss4096: +at(s, 3).toFixed(4), rise4096: +rise(s).toFixed(4) });
  for (const s of ["ReRoPE w128", "ReRoPE w256", "Leaky ReRoPE w128 1/16", "ReRoPE w256 + logn"]) {
    jsonLine({ claim: 3, scheme: s, rise4096: +rise(s).toFixed(4), withinTwoHundredths: rise(s) <= 0.02 });
  }
  jsonLine({ claim: 3, lowestLossAt4096: best.name, loss: +best.loss[3].toFixed(4) });
}

// ---------------------------------------------------------------- part 2

const SEQ = 128, EVAL_LENGTHS = [128, 256, 512, 1024], EVAL_WINDOWS = 64, BATCH = 16, LR = 2e-3, WARMUP = 50, SEED = 1337;
const INV_LEAKY: T.Rerope = { window: SEQ / 4, leak: 8 };

/**
 * scoreTokens' figure (non-overlapping windows of L inputs, every token after the first predicted once;
 * ids.length - 1 a multiple of L) with the windows run 8192 / L at a time.
 */
function windowLoss(model: T.TransformerLM, ids: number[], L: number): number {
  const n = (ids.length - 1) / L, group = Math.max(1, Math.floor(8192 / L));
  let total = 0;
  T.noGrad(() => {
    for (let w = 0; w < n; w += group) {
      const b = Math.min(group, n - w), x = new Int32Array(b * L), y = new Int32Array(b * L);
      for (let i = 0; i < b; i++) { x.set(ids.slice((w + i) * L, (w + i + 1) * L), i * L); y.set(ids.slice((w + i) * L + 1, (w + i + 1) * L + 1), i * L); }
      total += T.tidy(() => T.crossEntropy(model.eval().forward(T.tensor(x, { shape: [b, L] })).logits.reshape(-1, model.config.vocabSize), T.tensor(y)).item()) * b * L;
    }
  });
  return total / (ids.length - 1);
}

async function part2(steps: number): Promise<void> {
  const text = readFileSync(join(ROOT, "data/tinyshakespeare.txt"), "utf8");
  const cut = text.lastIndexOf("\n", Math.floor(text.length * 0.9)) + 1;
  const tok = T.CharTokenizer.fromText(text.slice(0, cut));
  const trainIds = Int32Array.from(tok.encode(text.slice(0, cut)));
  const held = tok.encode(text.slice(cut)).slice(0, EVAL_WINDOWS * 1024 + 1);
  const arms = [{ name: "(a) RoPE", rerope: undefined }, { name: "(b) inverse Leaky ReRoPE", rerope: INV_LEAKY }].map((a) => {
    const model = new T.TransformerLM(presetConfig("llama-small-char", { rerope: a.rerope }, tok.vocabSize, "context bench"), { generator: new T.RandomGenerator(SEED) });
    return {
      ...a, model, ms: 0, loss: [] as number[],
      opt: new T.AdamW(T.defaultParamGroups(model, 0.1), { lr: LR, beta1: 0.9, beta2: 0.99 }),
      sampler: new T.BatchSampler(new T.TokenDataset(trainIds, "shakespeare training split"), BATCH, SEQ, SEED),
    };
  });
  const lrAt = T.makeSchedule({ kind: "cosine", lr: LR, minLr: LR / 10, warmupSteps: Math.min(WARMUP, steps >> 1), decaySteps: steps });
  jsonLine({ bench: "context", part: 2, preset: "llama-small-char", seq: SEQ, batch: BATCH, steps, lr: LR, invLeaky: INV_LEAKY, trainChars: cut, heldOutTokens: held.length - 1, load: load() });
  for (let i = 0; i < steps; i++) {
    for (const a of arms) {
      const t = performance.now();
      a.opt.setLr(lrAt(i));
      a.loss.push(T.tidy(() => {
        const l = T.lmObjective(a.model, a.sampler.next()).loss, v = l.item();
        if (!Number.isFinite(v)) throw new Error(`context bench: ${a.name} loss is ${v} at step ${i + 1}`);
        l.backward();
        T.clipGradNorm(a.model.parameters(), 1);
        a.opt.step();
        a.opt.zeroGrad();
        return v;
      }));
      a.ms += performance.now() - t;
    }
    if ((i + 1) % 100 === 0) console.error(`step ${i + 1}/${steps}: ${arms.map((a) => `${a.name} ${fmt(a.loss.slice(-20).reduce((p, q) => p + q, 0) / 20, 3)}`).join(", ")}`);
  }
  for (const a of arms) jsonLine({ part: 2, arm: a.name, trainSeconds: +(a.ms / 1000).toFixed(1), msPerStep: +(a.ms / steps).toFixed(1), finalTrainLoss: +(a.loss.slice(-50).reduce((p, q) => p + q, 0) / Math.min(50, steps)).toFixed(4) });
  const [a, b] = arms.map((x) => x.model);
  const check = held.slice(0, 1025), ref = T.scoreTokens(a, check, { window: 128 }).loss;
  if (Math.abs(windowLoss(a, check, 128) - ref) > 1e-5) throw new Error(`context bench: batched loss differs from scoreTokens' ${ref}`);
  const evals: { name: string; m: T.TransformerLM }[] = [
    { name: "(a) RoPE -> RoPE", m: a },
    { name: "(b) InvLeaky -> RoPE", m: T.withPositions(b, { rerope: null }) },
    { name: "(a) RoPE -> ReRoPE w32", m: T.withPositions(a, { rerope: { window: INV_LEAKY.window, leak: 0 } }) },
    { name: "(b) InvLeaky -> own (leak 8)", m: b },
  ];
  const res = evals.map((e) => ({ name: e.name, loss: EVAL_LENGTHS.map((L) => {
    const t = performance.now(), loss = windowLoss(e.m, held, L);
    jsonLine({ part: 2, eval: e.name, window: L, loss: +loss.toFixed(5), seconds: +((performance.now() - t) / 1000).toFixed(1) });
    return loss;
  }) }));
  console.log(`\nShakespeare char, llama-small-char trained at ${SEQ} for ${steps} steps x ${BATCH} x ${SEQ}; held-out loss (nats/char, ${held.length - 1} chars, windows of L); ${load()}`);
  printTable(["model -> eval positions", ...EVAL_LENGTHS.map(String)], res.map((r) => [r.name, ...r.loss.map((x) => fmt(x, 4))]));
  const i512 = EVAL_LENGTHS.indexOf(512);
  jsonLine({ claim: "InvLeaky (b) at 512 below (a) at 512", a512: +res[0].loss[i512].toFixed(4), b512: +res[1].loss[i512].toFixed(4), holds: res[1].loss[i512] < res[0].loss[i512] });
  writePlot("context-invleaky.svg", res.map((r) => ({ name: r.name, points: r.loss.map((x, i) => [Math.log2(EVAL_LENGTHS[i]), x] as [number, number]) })),
    { title: `Shakespeare char, trained at ${SEQ}: held-out loss vs window length`, xLabel: "log2(window length)", yLabel: "loss (nats/char)" });
}

// ---------------------------------------------------------------- part 3

const ROUNDS = 7, OP_SHAPE = [1, 8, 4096, 64], OP_WINDOW = 256;

const ms = (fn: () => void) => { const t = performance.now(); fn(); return performance.now() - t; };
const cell = (xs: number[]) => { const s = stats(xs); return `${fmt(s.median, 1)} (${fmt(s.min, 1)}-${fmt(s.max, 1)})`; };

async function part3(): Promise<void> {
  jsonLine({ bench: "context", part: 3, backend: T.backend().name, rounds: ROUNDS, load: load() });
  const base = await T.loadLlama2c(join(ROOT, "data/stories260K.bin"));
  const ids = await storyTokens();
  const x = T.tensor(Int32Array.from(ids.slice(0, 4096)), { shape: [1, 4096] });
  const models = [
    { name: "RoPE (flash)", m: base },
    { name: "ReRoPE w256", m: T.withPositions(base, { rerope: { window: 256, leak: 0 } }) },
    { name: "Leaky ReRoPE w128 1/16", m: T.withPositions(base, { rerope: { window: 128, leak: 1 / 16 } }) },
  ].map((e) => ({ ...e, times: [] as number[] }));
  const fwd = (m: T.TransformerLM) => T.noGrad(() => T.tidy(() => { m.eval().forward(x).logits.toTypedArray(); }));
  for (let r = -1; r < ROUNDS; r++) for (const e of models) { const t = ms(() => fwd(e.m)); if (r >= 0) e.times.push(t); }
  console.log(`\nstories260K forward, one 4096-token window, no grad; ms, median (min-max) of ${ROUNDS} alternating rounds; ${load()}`);
  const plain = stats(models[0].times).median;
  printTable(["scheme", "ms", "x plain"], models.map((e) => [e.name, cell(e.times), fmt(stats(e.times).median / plain, 2)]));
  for (const e of models) jsonLine({ part: 3, model: "stories260K", scheme: e.name, ms: +stats(e.times).median.toFixed(1), min: +stats(e.times).min.toFixed(1), max: +stats(e.times).max.toFixed(1), ratio: +(stats(e.times).median / plain).toFixed(3) });
  await ops();
}

async function ops(): Promise<void> {
  const gen = new T.RandomGenerator(7);
  const mk = () => T.randn(OP_SHAPE, { generator: gen, requiresGrad: true });
  const [q1, k1, q2, k2, v] = [mk(), mk(), mk(), mk(), mk()], g = T.randn(OP_SHAPE, { generator: gen });
  const run = (rerope: boolean, backward: boolean) => ms(() => T.tidy(() => {
    for (const t of [q1, k1, q2, k2, v]) t.grad = null;
    const o = rerope ? T.reropeAttention(q1, k1, q2, k2, v, { window: OP_WINDOW }) : T.flashAttention(q1, k1, v, { causal: true });
    if (backward) o.backward(g);
    else o.toTypedArray();
  }));
  const peer = await TorchPeer.start(join(ROOT, "bench/torch/context_peer.py"));
  if (typeof peer === "string") console.error(`# no PyTorch peer: ${peer}`);
  const cases = [
    { name: "flashAttention", side: "ours", rerope: false }, { name: "reropeAttention w256", side: "ours", rerope: true },
    ...(typeof peer === "string" ? [] : [{ name: "torch _scaled_dot_product_attention (math)", side: "torch", rerope: false }, { name: "torch Su two-matrix ReRoPE w256", side: "torch", rerope: true }]),
  ];
  const times = new Map<string, number[]>();
  for (const backward of [false, true]) {
    for (let r = -1; r < ROUNDS; r++) {
      for (const c of cases) {
        const t = c.side === "ours" ? run(c.rerope, backward)
          : 1000 * ((await (peer as TorchPeer).ask({ kind: c.rerope ? "rerope" : "sdpa", shape: OP_SHAPE, window: OP_WINDOW, backward })).seconds as number);
        if (r < 0) continue;
        const key = `${c.name} ${backward ? "fwd+bwd" : "fwd"}`;
        times.set(key, [...(times.get(key) ?? []), t]);
      }
    }
  }
  if (typeof peer !== "string") peer.close();
  console.log(`\ncausal attention [${OP_SHAPE}], float32; ms, median (min-max) of ${ROUNDS} alternating rounds; ratio = / flashAttention (same pass); ${load()}`);
  const rows: (string | number)[][] = [];
  for (const pass of ["fwd", "fwd+bwd"]) {
    const ref = stats(times.get(`flashAttention ${pass}`)!).median;
    for (const c of cases) {
      const xs = times.get(`${c.name} ${pass}`)!;
      rows.push([`${c.name} ${pass}`, cell(xs), fmt(stats(xs).median / ref, 2)]);
      jsonLine({ part: 3, op: c.name, pass, ms: +stats(xs).median.toFixed(1), min: +stats(xs).min.toFixed(1), max: +stats(xs).max.toFixed(1), ratio: +(stats(xs).median / ref).toFixed(3) });
    }
  }
  printTable(["op", "ms", "x flash"], rows);
}

export async function main(argv: string[]): Promise<void> {
  const parts = argv.filter((a) => /^[123]$/.test(a)).map(Number);
  const bad = argv.filter((a) => !/^[123]$/.test(a) && !/^--steps=\d+$/.test(a));
  if (bad.length) throw new Error(`context bench: unknown argument(s) ${bad.join(" ")}; expected 1, 2, 3 and/or --steps=N`);
  const steps = Number(argv.find((a) => a.startsWith("--steps="))?.slice(8) ?? 600);
  const t0 = performance.now();
  for (const p of parts.length ? parts : [1, 2, 3]) {
    if (p === 1) await part1();
    if (p === 2) await part2(steps);
    if (p === 3) await part3();
  }
  jsonLine({ bench: "context", seconds: +((performance.now() - t0) / 1000).toFixed(0), load: load() });
}
