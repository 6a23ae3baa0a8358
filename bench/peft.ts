// PEFT quality on stories260K: full fine-tuning, LoRA, DoRA, Houlsby adapters and prefix tuning each
// fine-tune the TinyStories model on a new style (Shakespeare), scored on held-out Shakespeare; then LoRA
// adapters of rank 4..32 extracted (extractLora) from the full fine-tune's delta.
//
// Protocol:
// - Corpus: the first ~120 KB of data/tinyshakespeare.txt, cut after the last line break before 120,000
//   characters. The held-out text is its last ~10 %: from the first line after 90 % of the characters
//   on. The part before is cut the same way at 90 %: the first part is the training split (the only
//   text any method trains on), the rest the validation split, used only to pick each method's learning
//   rate. Each split is tokenized with tok512 as one stream with one BOS in front (Llama2cTokenizer,
//   run.c's encode); training windows are random slices of the stream (nanoGPT's get_batch), as the
//   base was pretrained on.
// - Base: data/stories260K.bin (loadLlama2c), never trained on Shakespeare.
// - Methods: full fine-tuning; LoRA r 8, alpha 16 on wq, wk, wv, wo; the same on every Linear of the
//   blocks (+ w1, w2, w3); that and, as PEFT's modules_to_save, the embedding (tied to the head) and the
//   norm gains trained in full (what full fine-tuning changes besides the Linear layers); DoRA r 8,
//   alpha 16 on wq, wk, wv, wo; Houlsby adapters, bottleneck 16 (applyPeft); prefix tuning with 16
//   virtual tokens and PEFT's MLP reparameterization (addPrefixTuning, MLP hidden = the model's
//   key/value width, the base frozen). LoRA's A and the prefix parameters are drawn from seed 0.
//   --methods=lora-emb adds LoRA on wq, wk, wv, wo + the embedding and norms (not run by default).
// - Training, what `tsformer finetune` does (src/cli/finetune.ts with the trainer's step,
//   src/train/trainer.ts): the same batches for every run (sampler seed 1337), AdamW without weight
//   decay, betas (0.9, 0.999), global-norm clip 1, cosine schedule from lr to lr/10 after a linear
//   warmup of min(20, steps/10) steps. Learning rates: full {3e-4, 1e-3}, the others {1e-3, 3e-3, 1e-2};
//   each method keeps the one with the lowest validation loss after the last step.
// - All runs train interleaved, one step of each in turn, so that a change of machine load falls on all
//   alike; "seconds" is a run's own step time (forward, backward, clip, AdamW), evaluations excluded.
// - Loss: mean next-token NLL (nats) over a whole split, in non-overlapping windows of the training
//   block (scoreTokens' windows, 16 at a time; checked against scoreTokens on the base); every token
//   after the first is predicted once. "before" is the base's.
//   The held-out loss is also scored every steps/10 steps for the plot (bench/peft.svg).
// - extractLora: from the selected full fine-tune, on every Linear of the blocks (wq, wk, wv, wo, w1, w2,
//   w3), r = 4, 8, 16, 32: the relative reconstruction error ||delta - BA||_F / ||delta||_F over all
//   those layers together and the held-out loss of base + the adapter. The full fine-tune also changes
//   the embedding (tied to the head) and the norm gains, which no LoRA on the Linears can carry: the row
//   "Linear deltas, exact" (base + the tuned Linear weights, everything else the base's) is the limit the
//   extracted adapters approach as r grows.
// - Samples (bench/peft-samples.md): 200 new tokens after BOS + prompt, greedy and at temperature 0.8
//   (seed 1, no top-k), from the base and the LoRA fine-tunes on q,k,v,o and on all Linear layers.
// - One native thread by default: at d = 64 the thread pool's hand-offs cost more than the second core
//   gives when the machine is shared with other jobs (a step measured slower on 2 threads than on 1).
// Usage: npm run bench -- peft [--steps=N] [--batch=N] [--block=N] [--threads=N] [--methods=full,lora,...]
//   [--peft-lrs=LR,...] (defaults: 200 steps, batch 8, block 128, 1 thread, every method but lora-emb,
//   the grids above), sized for about a quarter of an hour on 2 cores shared with other jobs. With
//   --methods or --peft-lrs (an experiment) bench/peft.svg and bench/peft-samples.md are not written.

import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as T from "../src/index.js";
import { addPrefixTuning } from "../src/peft/prefix.js";
import { linePlotSvg, writeSvg, type Series } from "../src/train/metrics.js";
import { fmt, jsonLine, printTable } from "./common.js";

const ROOT = new URL("..", import.meta.url).pathname;
const CORPUS = "data/tinyshakespeare.txt", CORPUS_CHARS = 120_000, HELD_OUT = 0.1, VALID = 0.1;
const SEED = 1337, CLIP = 1;
const ATTN = ["wq", "wk", "wv", "wo"], ALL_LINEAR = [...ATTN, "w1", "w2", "w3"];
const PEFT_LRS = [1e-3, 3e-3, 1e-2];
/** What full fine-tuning trains besides the Linear layers: the embedding (tied to the head) and the norm gains. */
const FULLY_TRAINED = ["tok_emb", "norm1", "norm2", "norm_f"];
const EXTRACT_RANKS = [4, 8, 16, 32];
const PROMPTS = ["ROMEO:", "Once upon a time"], SAMPLE_TOKENS = 200, SAMPLE_TEMP = 0.8, SAMPLED = ["lora", "lora-all"];
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];  // matplotlib's tab10
const GAP_GOAL = 0.1;  // the issue's: LoRA r 8 within 0.1 nats of full fine-tuning

type LM = T.CausalLM & T.Module;

interface Method {
  key: string;
  /** The plot's legend name. */
  short: string;
  /** Run only when named in --methods (the what-closes-the-gap experiments). */
  extra?: boolean;
  label: string;
  lrs: number[];
  /** The model that trains, built on a freshly loaded base (frozen unless "full"). */
  make(base: T.TransformerLM): LM;
}

const peft = (spec: T.PeftSpec) => (base: T.TransformerLM): LM => {
  T.manualSeed(0);  // LoRA's A is drawn from the default generator (PEFT: torch's global stream)
  return T.applyPeft(base, spec).model;
};

const METHODS: Method[] = [
  { key: "full", short: "full", label: "full fine-tuning", lrs: [3e-4, 1e-3], make: peft({ method: "full" }) },
  { key: "lora", short: "LoRA qkvo", label: "LoRA r=8 (q,k,v,o)", lrs: PEFT_LRS, make: peft({ method: "lora", r: 8, alpha: 16, targetModules: ATTN }) },
  { key: "lora-all", short: "LoRA all", label: "LoRA r=8 (q,k,v,o,w1,w2,w3)", lrs: PEFT_LRS, make: peft({ method: "lora", r: 8, alpha: 16, targetModules: ALL_LINEAR }) },
  { key: "lora-all-emb", short: "LoRA all+emb", label: "LoRA r=8 (all Linear) + emb, norms", lrs: PEFT_LRS, make: peft({ method: "lora", r: 8, alpha: 16, targetModules: ALL_LINEAR, modulesToSave: FULLY_TRAINED }) },
  { key: "dora", short: "DoRA qkvo", label: "DoRA r=8 (q,k,v,o)", lrs: PEFT_LRS, make: peft({ method: "dora", r: 8, alpha: 16, targetModules: ATTN }) },
  { key: "adapter", short: "adapter", label: "Houlsby adapter (m=16)", lrs: PEFT_LRS, make: peft({ method: "adapter", bottleneck: 16 }) },
  {
    key: "prefix", short: "prefix", label: "prefix tuning (16 tokens, MLP)", lrs: PEFT_LRS,
    make: (base) => {
      const m = addPrefixTuning(base, { numVirtualTokens: 16, generator: new T.RandomGenerator(0) });
      base.requiresGrad_(false);  // the wrapper's parameters are the only trainable ones
      return m;
    },
  },
  { key: "lora-emb", short: "LoRA qkvo+emb", extra: true, label: "LoRA r=8 (q,k,v,o) + emb, norms", lrs: PEFT_LRS, make: peft({ method: "lora", r: 8, alpha: 16, targetModules: ATTN, modulesToSave: FULLY_TRAINED }) },
];

interface Options { steps: number; batch: number; block: number; threads: number; methods: Method[]; peftLrs: number[] | null; writes: boolean }

function parseArgs(argv: string[]): Options {
  const o: Options = { steps: 200, batch: 8, block: 128, threads: 1, methods: METHODS.filter((x) => !x.extra), peftLrs: null, writes: true };
  for (const a of argv) {
    const m = /^--(steps|batch|block|threads|methods|peft-lrs)=(.+)$/.exec(a);
    if (!m) throw new Error(`peft bench: unknown argument ${JSON.stringify(a)}; expected --steps=N, --batch=N, --block=N, --threads=N, --peft-lrs=LR,LR,... or --methods=${METHODS.map((x) => x.key).join(",")}`);
    if (m[1] === "peft-lrs" || m[1] === "methods") o.writes = false;  // an experiment: the committed plot and samples stay
    if (m[1] === "peft-lrs") {
      o.peftLrs = m[2]!.split(",").map(Number);
      if (!o.peftLrs.every((x) => x > 0 && Number.isFinite(x))) throw new Error(`peft bench: --peft-lrs must be positive numbers separated by commas, got ${m[2]}`);
    } else if (m[1] === "methods") {
      const keys = m[2]!.split(",");
      const bad = keys.filter((k) => !METHODS.some((x) => x.key === k));
      if (bad.length) throw new Error(`peft bench: --methods: unknown ${bad.join(", ")}; expected some of ${METHODS.map((x) => x.key).join(", ")}`);
      o.methods = METHODS.filter((x) => keys.includes(x.key));
    } else {
      const v = Number(m[2]);
      if (!Number.isSafeInteger(v) || v < 1) throw new Error(`peft bench: --${m[1]} must be a positive integer, got ${m[2]}`);
      o[m[1] as "steps" | "batch" | "block" | "threads"] = v;
    }
  }
  return o;
}

/** text[0, i) and text[i, end) with i the start of the first line after `fraction` of the characters. */
function cutAtLine(text: string, fraction: number): [string, string] {
  const i = text.indexOf("\n", Math.floor(text.length * fraction)) + 1;
  if (i <= 0) throw new Error(`${CORPUS}: no line break after ${fraction * 100} % of the text`);
  return [text.slice(0, i), text.slice(i)];
}

interface Run {
  method: Method;
  lr: number;
  model: LM;
  opt: T.AdamW;
  params: T.Tensor[];
  sampler: T.BatchSampler;
  lrAt: T.Schedule;
  trainable: T.TrainableSummary;
  ms: number;
  curve: [number, number][];
  val?: number;
  heldOut?: number;
}

/** Trainable and total parameters over the base and what the method added (a tied tensor once). */
function countParams(model: LM, base: T.TransformerLM): T.TrainableSummary {
  const seen = new Set<T.Tensor>();
  let trainable = 0, total = 0;
  for (const m of [base, model]) {
    for (const [, p] of m.namedParameters()) {
      if (seen.has(p)) continue;
      seen.add(p);
      total += p.numel;
      if (p.requiresGrad) trainable += p.numel;
    }
  }
  return { trainable, total, fraction: trainable / total };
}

/** One step of src/train/trainer.ts (no accumulation): loss, backward, clip, AdamW at the scheduled lr. */
function step(r: Run, i: number): void {
  const t0 = performance.now();
  T.tidy(() => {
    const loss = T.lmObjective(r.model, r.sampler.next()).loss;
    if (!Number.isFinite(loss.item())) throw new Error(`${r.method.key} lr ${r.lr}: loss is not finite at step ${i + 1}`);
    loss.backward();
    T.clipGradNorm(r.params, CLIP);
    r.opt.setLr(r.lrAt(i));
    r.opt.step();
    r.opt.zeroGrad();
  });
  r.ms += performance.now() - t0;
}

const loadBase = () => T.loadLlama2c(join(ROOT, "data/stories260K.bin"));

/**
 * Mean NLL over ids in scoreTokens' windows (non-overlapping, `win` inputs each, every token after the
 * first predicted once), the full windows run 16 at a time: the same figure, several times faster.
 */
function windowLoss(model: LM, ids: number[], win: number): number {
  const starts: number[] = [];
  for (let s = 0; s + 1 < ids.length; s += win) starts.push(s);
  let total = 0, count = 0;
  const run = (group: number[], len: number) => T.tidy(() => {
    const x = new Int32Array(group.length * len), y = new Int32Array(group.length * len);
    group.forEach((s, b) => { x.set(ids.slice(s, s + len), b * len); y.set(ids.slice(s + 1, s + len + 1), b * len); });
    const logits = model.forward(T.tensor(x, { shape: [group.length, len] })).logits;
    total += T.crossEntropy(logits.reshape(-1, logits.shape[2]!), T.tensor(y, { shape: [x.length] })).item() * x.length;
    count += x.length;
  });
  const wasTraining = model.training;
  model.eval();
  T.noGrad(() => {
    const full = starts.filter((s) => s + win < ids.length);
    for (let i = 0; i < full.length; i += 16) run(full.slice(i, i + 16), win);
    for (const s of starts.slice(full.length)) run([s], ids.length - 1 - s);
  });
  model.train(wasTraining);
  return total / count;
}

export async function main(argv: string[]): Promise<void> {
  const o = parseArgs(argv);
  T.setNativeThreads(o.threads);
  const start = performance.now();
  const tok = await T.Llama2cTokenizer.load(join(ROOT, "data/tok512.bin"));
  const raw = readFileSync(join(ROOT, CORPUS), "utf8");
  const corpus = raw.slice(0, raw.lastIndexOf("\n", CORPUS_CHARS) + 1);
  const [trainPart, heldText] = cutAtLine(corpus, 1 - HELD_OUT);
  const [trainText, valText] = cutAtLine(trainPart, 1 - VALID);
  const enc = (s: string) => tok.encode(s, { bos: true });
  const trainIds = Int32Array.from(enc(trainText)), valIds = enc(valText), heldIds = enc(heldText);
  const score = (m: LM, ids: number[]) => windowLoss(m, ids, o.block);
  const warmup = Math.min(20, Math.floor(o.steps / 10)), evalEvery = Math.max(1, Math.round(o.steps / 10));
  console.log(`corpus: ${CORPUS} first ${corpus.length} chars; train ${trainText.length} chars / ${trainIds.length} tokens, validation ${valText.length} / ${valIds.length}, held-out ${heldText.length} / ${heldIds.length}`);
  console.log(`budget: ${o.steps} steps x batch ${o.batch} x block ${o.block} per run, warmup ${warmup}, cosine to lr/10; held-out scored every ${evalEvery} steps; ${o.threads} native thread(s)`);

  const base = await loadBase();
  const before = { val: score(base, valIds), heldOut: score(base, heldIds) };
  const reference = T.scoreTokens(base, heldIds, { window: o.block }).loss;
  if (Math.abs(reference - before.heldOut) > 1e-5) throw new Error(`peft bench: batched held-out loss ${before.heldOut} differs from scoreTokens' ${reference}`);
  jsonLine({ bench: "peft", kind: "base", ...before });

  const train = new T.TokenDataset(trainIds, "shakespeare train split");
  const runs: Run[] = [];
  for (const method of o.methods) {
    for (const lr of method.key === "full" ? method.lrs : o.peftLrs ?? method.lrs) {
      const b = await loadBase();
      const model = method.make(b).train();
      const params = model.parameters().filter((p) => p.requiresGrad);
      runs.push({
        method, lr, model, params, ms: 0, curve: [[0, before.heldOut]], trainable: countParams(model, b),
        opt: new T.AdamW(T.defaultParamGroups(model, 0), { lr }),
        sampler: new T.BatchSampler(train, o.batch, o.block, SEED),
        lrAt: T.makeSchedule({ kind: "cosine", lr, minLr: lr / 10, warmupSteps: warmup, decaySteps: o.steps }),
      });
    }
  }
  const t0 = performance.now();
  for (let i = 0; i < o.steps; i++) {
    for (const r of runs) {
      step(r, i);
      if ((i + 1) % evalEvery === 0 || i + 1 === o.steps) r.curve.push([i + 1, score(r.model, heldIds)]);
    }
    if ((i + 1) % evalEvery === 0) console.error(`step ${i + 1}/${o.steps} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  }
  for (const r of runs) {
    r.val = score(r.model, valIds);
    r.heldOut = r.curve[r.curve.length - 1]![1];
    jsonLine({ bench: "peft", kind: "run", method: r.method.key, lr: r.lr, val: r.val, held_out: r.heldOut, seconds: r.ms / 1000, trainable: r.trainable.trainable, curve: r.curve });
  }
  const chosen = o.methods.map((m) => runs.filter((r) => r.method === m).reduce((a, b) => (b.val! < a.val! ? b : a)));

  console.log("\nlearning-rate grid (validation loss; * = kept):");
  printTable(["method", ...new Set(runs.map((r) => r.lr.toExponential(0)))], o.methods.map((m) => [m.label, ...[...new Set(runs.map((r) => r.lr))].map((lr) => {
    const r = runs.find((x) => x.method === m && x.lr === lr);
    return r ? `${fmt(r.val!, 4)}${chosen.includes(r) ? "*" : " "}` : "-";
  })]));
  console.log(`\nheld-out loss (nats/token, ${heldIds.length} tokens); before = the base: ${fmt(before.heldOut, 4)}`);
  printTable(["method", "trainable", "%", "lr", "before", "after", "cut", "seconds", "steps"], chosen.map((r) => [
    r.method.label, r.trainable.trainable.toLocaleString("en-US"), fmt(100 * r.trainable.fraction, 2), r.lr.toExponential(0),
    fmt(before.heldOut, 4), fmt(r.heldOut!, 4), fmt(before.heldOut - r.heldOut!, 4), fmt(r.ms / 1000, 1), o.steps,
  ]));
  const full = chosen.find((r) => r.method.key === "full");
  for (const r of chosen.filter((x) => x.method.key.startsWith("lora") && full)) {
    const gap = r.heldOut! - full!.heldOut!;
    console.log(`${r.method.label} - full fine-tuning: ${gap >= 0 ? "+" : ""}${fmt(gap, 4)} nats (goal: within ${GAP_GOAL}: ${Math.abs(gap) <= GAP_GOAL ? "met" : "not met"})`);
    jsonLine({ bench: "peft", kind: "gap", method: r.method.key, gap, goal: GAP_GOAL, met: Math.abs(gap) <= GAP_GOAL });
  }
  for (const r of chosen) jsonLine({ bench: "peft", kind: "chosen", method: r.method.key, lr: r.lr, trainable: r.trainable.trainable, fraction: r.trainable.fraction, before: before.heldOut, after: r.heldOut, seconds: r.ms / 1000, steps: o.steps });

  if (full) await extraction(full.model as T.TransformerLM, (m) => score(m, heldIds), full.heldOut!, before.heldOut);
  if (o.writes) {
    const svg = join(ROOT, "bench/peft.svg");
    const series: Series[] = chosen.map((r, i) => ({ name: `${r.method.short}, lr ${r.lr.toExponential(0)}`, points: r.curve, color: COLORS[i % COLORS.length] }));
    await writeSvg(svg, linePlotSvg(series, { title: `stories260K on Shakespeare: held-out loss (${o.steps} steps, batch ${o.batch} x ${o.block})`, yLabel: "held-out loss (nats/token)" }));
    console.log(`\nwrote ${svg}`);
    writeSamples(tok, base, before.heldOut, chosen.filter((r) => SAMPLED.includes(r.method.key)), o);
  } else {
    console.log("\n(--methods or --peft-lrs given: bench/peft.svg and bench/peft-samples.md are left as they are)");
  }
  console.log(`total: ${((performance.now() - start) / 1000).toFixed(0)} s`);
}

/** extractLora at each rank from the full fine-tune, and the exact Linear deltas as the limit. */
async function extraction(tuned: T.TransformerLM, heldOut: (m: LM) => number, fullLoss: number, baseLoss: number): Promise<void> {
  const rows: (string | number)[][] = [];
  for (const r of EXTRACT_RANKS) {
    const b = await loadBase();
    const t0 = performance.now();
    const ex = T.extractLora(b, tuned, { r, targetModules: ALL_LINEAR });
    const seconds = (performance.now() - t0) / 1000;
    const loss = heldOut(b), params = T.trainableParameters(b).trainable;
    rows.push([`r = ${r}`, params.toLocaleString("en-US"), fmt(ex.relError, 4), fmt(loss, 4), fmt(loss - fullLoss, 4), fmt(seconds, 2)]);
    jsonLine({ bench: "peft", kind: "extract", r, params, rel_error: ex.relError, held_out: loss, vs_full: loss - fullLoss, seconds });
  }
  // base + the tuned Linear weights: what extraction at full rank gives
  const b = await loadBase();
  const tunedSd = tuned.stateDict();
  const linears = Object.fromEntries(Object.entries(tunedSd).filter(([n]) => new RegExp(`\\.(${ALL_LINEAR.join("|")})\\.weight$`).test(n)));
  b.loadStateDict(linears, { strict: false });
  const exact = heldOut(b);
  rows.push(["Linear deltas, exact", "-", fmt(0, 4), fmt(exact, 4), fmt(exact - fullLoss, 4), "-"]);
  rows.push(["full fine-tune", "-", "-", fmt(fullLoss, 4), fmt(0, 4), "-"]);
  rows.push(["base", "-", "-", fmt(baseLoss, 4), fmt(baseLoss - fullLoss, 4), "-"]);
  jsonLine({ bench: "peft", kind: "extract", r: "exact-linear", held_out: exact, vs_full: exact - fullLoss });
  console.log(`\nextractLora from the full fine-tune on ${ALL_LINEAR.join(", ")} (held-out loss; vs full = minus the full fine-tune's):`);
  printTable(["adapter", "params", "rel. error", "held-out", "vs full", "seconds"], rows);
}

function writeSamples(tok: T.Llama2cTokenizer, base: T.TransformerLM, baseLoss: number, loras: Run[], o: Options): void {
  const models: [string, LM][] = [
    [`base (stories260K; held-out loss ${fmt(baseLoss, 3)})`, base],
    ...loras.map((r) => [`${r.method.label}, lr ${r.lr.toExponential(0)} (held-out loss ${fmt(r.heldOut!, 3)})`, r.model] as [string, LM]),
  ];
  const out = [
    "# stories260K before and after LoRA fine-tuning on Shakespeare",
    "",
    `Written by \`npm run bench -- peft --steps=${o.steps} --batch=${o.batch} --block=${o.block}\` (bench/peft.ts has the protocol).`,
    `${SAMPLE_TOKENS} new tokens after BOS + the prompt; greedy, and temperature ${SAMPLE_TEMP} (seed 1, no top-k).`,
  ];
  for (const prompt of PROMPTS) {
    for (const [name, m] of models) {
      for (const temperature of [0, SAMPLE_TEMP]) {
        const promptIds = tok.encode(prompt, { bos: true });
        const ids = [...promptIds, ...T.generate(m, promptIds, { maxNewTokens: SAMPLE_TOKENS, temperature, seed: 1 }).ids];
        out.push("", `## ${name}: "${prompt}", ${temperature ? `temperature ${temperature}` : "greedy"}`, "", "```text", showText(tok, ids).replace(/```/g, "'''"), "```");
      }
    }
  }
  const file = join(ROOT, "bench/peft-samples.md");
  writeFileSync(file, out.join("\n") + "\n");
  console.log(`wrote ${file}`);
}

/** The text of ids; a BOS after the first token (a new story, in TinyStories) is shown as its piece, "<s>" on its own line. */
function showText(tok: T.Llama2cTokenizer, ids: number[]): string {
  const parts: number[][] = [[]];
  ids.forEach((id, i) => (id === tok.bosId && i > 0 ? parts.push([id]) : parts[parts.length - 1]!.push(id)));
  return parts.map((p) => tok.decode(p)).join("\n<s>\n");
}
