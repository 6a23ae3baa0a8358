// Multi-token prediction (DeepSeek-V3 §2.2) as a self-speculative draft.
//   npm run bench -- mtp train DIR [STEPS] [D] [LAMBDA] [BATCH]   config A (bench/models.ts) trained from scratch with
//     D MTP modules (loss weight LAMBDA) on Tiny Shakespeare (characters, the first 90%), AdamW, cosine lr;
//     progress lines with ETA; DIR/model.safetensors (base + modules) every 100 steps and at the end.
//   npm run bench -- mtp distill DIR OUT [STEPS] [SEQS] [LR] [D]   the modules alone, base frozen, trained on
//     the base's greedy continuations of SEQS training-text prompts (self-distillation). DIR: a `mtp train`
//     directory, or a trained model directory (e.g. runs/bench-targets/C-shakespeare/last) that gets D fresh modules.
//   npm run bench -- mtp [DIR] [NEW_TOKENS] [ROUNDS]   greedy decoding of the trained model: generate() and
//     mtpGenerate() (all D depths with fp32 modules; 1..D depths with int8 copies of the modules)
//     alternating in rounds over held-out prompts, identical output checked every round, acceptance
//     per depth, tokens per verify step, wall-clock tok/s and the speedup median (min–max).

import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as T from "../src/index.js";
import { MTPLM, MTPModules, mtpObjective } from "../src/models/mtp.js";
import { mtpGenerate } from "../src/generate/mtp.js";
import { fmt, jsonLine, printTable, stats } from "./common.js";
import { CONFIG_A, toModelConfig } from "./models.js";

const TEXT = new URL("../data/tinyshakespeare.txt", import.meta.url);

function corpus(): { tok: T.CharTokenizer; train: Int32Array; val: Int32Array } {
  const text = readFileSync(TEXT, "utf8"), tok = T.CharTokenizer.fromText(text);
  const ids = Int32Array.from(tok.encode(text)), cut = Math.floor(ids.length * 0.9);
  return { tok, train: ids.subarray(0, cut), val: ids.subarray(cut) };
}

/** D fresh MTP modules on `base` (default: a fresh config A). */
function build(D: number, lambda: number, base = new T.TransformerLM(toModelConfig(CONFIG_A), { generator: new T.RandomGenerator(1) })): MTPLM {
  return new MTPLM(base, { depth: D, weight: lambda, generator: new T.RandomGenerator(2) });
}

async function save(lm: MTPLM, dir: string, meta: Record<string, unknown>): Promise<void> {
  const tensors: Record<string, T.SafeTensor> = {};
  for (const [n, t] of Object.entries(lm.stateDict())) tensors[n] = { dtype: "F32", shape: [...t.shape], data: Float32Array.from(t.toTypedArray() as Float32Array) };
  await T.writeSafetensors(join(dir, "model.safetensors"), tensors, { mtp: JSON.stringify(meta) });
}

/**
 * DIR/model.safetensors as `train` or `distill` saved it (the base is config A unless the metadata names a
 * config), or a trained model directory without MTP modules (`tsformer train`'s RUN/last): then D fresh
 * modules on it, for `distill`.
 */
async function load(dir: string, D = 3): Promise<{ lm: MTPLM; meta: Record<string, number> }> {
  const st = await T.readSafetensors(join(dir, "model.safetensors"));
  if (st.metadata.mtp === undefined) {
    const l = await T.loadForInference(dir);
    if (!(l.model instanceof T.TransformerLM)) throw new Error(`${dir}: expected a TransformerLM or an mtp bench directory`);
    return { lm: build(D, 0.3, l.model), meta: { depth: D, weight: 0.3, step: 0, steps: 0, batch: 0, config: l.model.config as never } };
  }
  const meta = JSON.parse(st.metadata.mtp) as Record<string, number>;
  const lm = build(meta.depth, meta.weight, meta.config ? new T.TransformerLM(T.parseModelConfig(meta.config)) : undefined);
  T.noGrad(() => lm.loadStateDict(Object.fromEntries(Object.entries(st.tensors).map(([n, t]) => [n, T.tensor(t.data as Float32Array, { shape: t.shape })]))));
  return { lm: lm.eval(), meta };
}

async function train(argv: string[]): Promise<void> {
  const dir = argv[0], steps = Number(argv[1] ?? 600), D = Number(argv[2] ?? 3), lambda = Number(argv[3] ?? 0.3), B = Number(argv[4] ?? CONFIG_A.B);
  if (!dir) throw new Error("usage: npm run bench -- mtp train DIR [STEPS] [D] [LAMBDA] [BATCH]");
  mkdirSync(dir, { recursive: true });
  const { train: tr, val } = corpus(), c = CONFIG_A;
  const lm = build(D, lambda);
  const opt = new T.AdamW(T.defaultParamGroups(lm, 0.1), { lr: 1e-3 });
  const lr = T.makeSchedule({ kind: "cosine", lr: 1e-3, minLr: 1e-4, warmupSteps: Math.min(50, steps >> 2), decaySteps: steps });
  const sampler = new T.BatchSampler(new T.TokenDataset(tr), B, c.T, 3), valSampler = new T.BatchSampler(new T.TokenDataset(val), B, c.T, 4);
  const t0 = performance.now();
  const evalLoss = () => T.noGrad(() => {
    lm.eval();
    const sums: Record<string, number> = {};
    for (let i = 0; i < 4; i++) T.tidy(() => { for (const [k, v] of Object.entries(mtpObjective(lm, valSampler.next()).aux!)) sums[k] = (sums[k] ?? 0) + (v as T.Tensor).item() / 4; });
    lm.train();
    return sums;
  });
  lm.train();
  for (let s = 1; s <= steps; s++) {
    opt.setLr(lr(s - 1));
    const aux = T.tidy(() => {
      const { loss, aux } = mtpObjective(lm, sampler.next());
      loss.backward();
      T.clipGradNorm(lm.parameters(), 1);
      opt.step();
      opt.zeroGrad();
      return Object.fromEntries(Object.entries(aux!).map(([k, v]) => [k, (v as T.Tensor).item()]));
    });
    if (s % 10 === 0 || s === 1) {
      const el = (performance.now() - t0) / 1000;
      console.log(`step ${s}/${steps} ${Object.entries(aux).map(([k, v]) => `${k} ${fmt(v, 3)}`).join(" ")} lr ${lr(s - 1).toExponential(2)} ${fmt(el / s, 2)} s/step ETA ${fmt((steps - s) * el / s / 60, 1)} min`);
    }
    if (s % 100 === 0 || s === steps) {
      const v = evalLoss();
      console.log(`val step ${s}: ${Object.entries(v).map(([k, x]) => `${k} ${fmt(x, 3)}`).join(" ")}`);
      await save(lm, dir, { depth: D, weight: lambda, step: s, steps, batch: B, ...Object.fromEntries(Object.entries(v).map(([k, x]) => [`val_${k}`, x])) });
    }
  }
}

/**
 * The modules alone (base frozen) trained on the base's own greedy continuations of SEQS training-text
 * prompts (self-distillation, as Medusa-2's recipe for heads without the base's data: Cai et al. 2024,
 * sec. 2.3.2), so that the drafts follow what greedy decoding will verify.
 */
async function distill(argv: string[]): Promise<void> {
  const [dir, out] = argv, steps = Number(argv[2] ?? 150), seqs = Number(argv[3] ?? 32), lr = Number(argv[4] ?? 1e-3), B = 4;
  if (!dir || !out) throw new Error("usage: npm run bench -- mtp distill DIR OUT [STEPS] [SEQS] [LR] [D]");
  mkdirSync(out, { recursive: true });
  const { lm, meta } = await load(dir, Number(argv[5] ?? 3)), base = lm.model, { train: tr } = corpus(), TL = base.config.maxSeqLen;
  base.requiresGrad_(false);
  const g = new T.RandomGenerator(7), u = new Float64Array(1), data: number[][] = [];
  let t0 = performance.now();
  for (let i = 0; i < seqs; i++) {
    g.uniform(u);
    const at = Math.floor(u[0] * (tr.length - 64)), p = [...tr.subarray(at, at + 64)];
    data.push([...p, ...mtpGenerate(base, p, { maxNewTokens: TL - 64 + 1, temperature: 0, mtp: lm.mtp }).ids]);
    if ((i + 1) % 8 === 0) console.log(`greedy continuation ${i + 1}/${seqs}, ${fmt((performance.now() - t0) / 1000 / (i + 1), 1)} s each`);
  }
  const opt = new T.AdamW(T.defaultParamGroups(lm.mtp, 0), { lr });
  const batch = (): T.Batch => {
    const pick = Array.from({ length: B }, () => { g.uniform(u); return data[Math.floor(u[0] * data.length)]; });
    const mk = (off: number) => T.tensor(Int32Array.from(pick.flatMap((s) => s.slice(off, off + TL))), { shape: [B, TL] });
    return { x: mk(0), y: mk(1) } as T.Batch;
  };
  t0 = performance.now();
  lm.train();
  for (let s = 1; s <= steps; s++) {
    const aux = T.tidy(() => {
      const { loss, aux } = mtpObjective(lm, batch());
      loss.backward();
      T.clipGradNorm(lm.mtp.parameters(), 1);
      opt.step();
      opt.zeroGrad();
      return Object.fromEntries(Object.entries(aux!).map(([k, v]) => [k, (v as T.Tensor).item()]));
    });
    if (s % 10 === 0 || s === 1) console.log(`distill step ${s}/${steps} ${Object.entries(aux).map(([k, v]) => `${k} ${fmt(v, 3)}`).join(" ")} ${fmt((performance.now() - t0) / 1000 / s, 2)} s/step`);
  }
  await save(lm, out, { ...meta, config: base.config as never, distill_steps: steps, distill_seqs: seqs, distill_lr: lr });
}

/** Greedy decoding, plain vs MTP drafting 1..D tokens per round, alternating in rounds. */
async function decode(argv: string[]): Promise<void> {
  const dir = argv[0] ?? "runs/mtp-A", newTokens = Number(argv[1] ?? 200), rounds = Number(argv[2] ?? 3);
  const { lm, meta } = await load(dir);
  const { tok, val } = corpus(), base = lm.model, mtp = lm.mtp;
  console.log(`${dir}: ${meta.config ? `d ${base.config.dModel}, ${base.config.nLayers} layers` : "config A"} + ${meta.depth} MTP modules (lambda ${meta.weight}), step ${meta.step}/${meta.steps}, batch ${meta.batch}; val lm ${fmt(meta.val_lm, 3)}, ${Array.from({ length: meta.depth }, (_, k) => `mtp${k + 1} ${fmt(meta[`val_mtp${k + 1}`], 3)}`).join(", ")}`);
  // held-out prompts: 48 characters from the validation text, starting at a line
  const prompts = [0.1, 0.35, 0.6, 0.85].map((f) => { const at = Math.floor(val.length * f); const nl = val.indexOf(tok.encode("\n")[0], at) + 1; return [...val.subarray(nl, nl + 48)]; });
  const o = { maxNewTokens: newTokens, temperature: 0 };
  // the drafts' weights do not change the output (the fp32 main model verifies), so the modules may
  // run on int8 copies (models/quantize.ts): decoding is bound by the bytes of weights read per round
  const mtp8 = new MTPModules(base.config, meta.depth);
  T.noGrad(() => mtp8.loadStateDict(mtp.stateDict()));
  T.quantizeForInference(mtp8, "int8");
  const variants = [{ name: `fp32 x${meta.depth}`, mtp, draft: meta.depth }, ...Array.from({ length: meta.depth }, (_, k) => ({ name: `int8 x${k + 1}`, mtp: mtp8, draft: k + 1 }))];
  const rows: (string | number)[][] = [], summary = new Map<string, { sp: number[]; tpr: number[]; acc: number[][] }>();
  let allSame = true;
  T.noGrad(() => base.forward(T.tensor(Int32Array.of(0), { shape: [1, 1] })));  // warm-up
  prompts.forEach((p, pi) => {
    const tp: number[] = [], tm = variants.map((): number[] => []);
    const last = variants.map((): ReturnType<typeof mtpGenerate>["stats"] | null => null);
    let same = true;
    for (let r = 0; r < rounds; r++) {
      let t = performance.now();
      const plain = T.generate(base, p, o).ids;
      tp.push(performance.now() - t);
      variants.forEach((v, i) => {
        t = performance.now();
        const got = mtpGenerate(base, p, { ...o, mtp: v.mtp, draft: v.draft });
        tm[i].push(performance.now() - t);
        same &&= got.ids.length === plain.length && got.ids.every((id, j) => id === plain[j]);
        last[i] = got.stats;
      });
    }
    allSame &&= same;
    variants.forEach((v, i) => {
      const st = last[i]!, sp = tp.map((x, r) => x / tm[i][r]);
      const e = summary.get(v.name) ?? { sp: [], tpr: [], acc: [] };
      e.sp.push(...sp); e.tpr.push(st.tokensPerRound); e.acc.push(st.acceptRate);
      summary.set(v.name, e);
      const s = stats(sp);
      rows.push([pi, v.name, String(same), st.acceptRate.map((a) => fmt(a, 2)).join(" / "), fmt(st.tokensPerRound, 2), st.calls, fmt(newTokens / (stats(tp).median / 1000)), fmt(newTokens / (stats(tm[i]).median / 1000)), `${fmt(s.median, 2)} (${fmt(s.min, 2)}-${fmt(s.max, 2)})`]);
      jsonLine({ bench: "mtp", dir, depth: meta.depth, variant: v.name, draft: v.draft, prompt: pi, identical: same, accept_rate: st.acceptRate, accepted: st.accepted, verified: st.verified, tokens_per_round: st.tokensPerRound, calls: st.calls, plain_ms: tp, mtp_ms: tm[i], speedup: s });
    });
  });
  printTable(["prompt", "draft modules", "identical", "accept rate per depth", "tok/verify", "main calls", "plain tok/s", "mtp tok/s", "speedup median (min-max over rounds)"], rows);
  for (const [name, e] of summary) {
    const s = stats(e.sp), acc = e.acc[0].map((_, k) => stats(e.acc.map((a) => a[k])).median);
    console.log(`${name}: speedup median ${fmt(s.median, 2)} (min ${fmt(s.min, 2)}, max ${fmt(s.max, 2)}) over ${e.sp.length} prompt-rounds; tokens per verify ${fmt(stats(e.tpr).median, 2)}; acceptance per depth ${acc.map((a) => fmt(a, 2)).join(" / ")}`);
  }
  console.log(`greedy output identical to generate() in every round: ${allSame}`);
  console.log(`load average ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}`);
}

export async function main(argv: string[]): Promise<void> {
  if (argv[0] === "train") return train(argv.slice(1));
  return argv[0] === "distill" ? distill(argv.slice(1)) : decode(argv);
}
