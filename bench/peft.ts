// PEFT quality on stories260K: full fine-tuning, LoRA, DoRA, Houlsby adapters, prefix and prompt tuning
// each fine-tune the TinyStories model on a new style (Shakespeare), every one trained to its best
// validation loss and scored once on held-out Shakespeare; then LoRA adapters of rank 4..32 extracted
// (extractLora) from the full fine-tune's delta.
//
// Protocol (fixed before any held-out figure was read; every choice is made on the validation split):
// - Corpus: the first ~120 KB of data/tinyshakespeare.txt, cut after the last line break before 120,000
//   characters. The held-out text is its last ~10 %: from the first line after 90 % of the characters
//   on. The part before is cut the same way at 90 %: the first part is the training split (the only
//   text any method trains on), the rest the validation split. Each split is tokenized with tok512 as
//   one stream with one BOS in front (Llama2cTokenizer, run.c's encode); training windows are random
//   slices of the stream (nanoGPT's get_batch), as the base was pretrained on.
// - Base: data/stories260K.bin (loadLlama2c), never trained on Shakespeare.
// - Methods: METHODS below; LoRA's A, the prefix MLP and the soft prompt are drawn from seed 0.
// - Training, what `tsformer finetune` does (src/cli/finetune.ts with the trainer's step,
//   src/train/trainer.ts): the same batches for every run (sampler seed 1337), AdamW without weight
//   decay, betas (0.9, 0.999), global-norm clip 1, cosine schedule from lr to lr/10 over --max-steps
//   after a linear warmup of min(20, max-steps/10) steps.
// - Early stopping (HF Trainer's EarlyStoppingCallback with load_best_model_at_end): the validation loss
//   is computed at step 0 and every --eval-every steps; the run keeps a copy of its trainable parameters
//   at its lowest validation loss and stops after --patience evaluations without a lower one, at
//   --max-steps, or at a non-finite training loss; it ends with that best copy restored.
// - Learning rate (--grid): each method runs every lr of its grid; the one with the lowest best
//   validation loss is kept. Only then is the kept run of each method (and the base) scored on the
//   held-out split, once.
// - "seconds" is a run's own step time (forward, backward, clip, AdamW) up to where it stopped,
//   evaluations excluded; runs go one after another.
// - Loss: mean next-token NLL (nats) over a whole split, in non-overlapping windows of the training
//   block (scoreTokens' windows, 16 at a time; checked against scoreTokens on the base); every token
//   after the first is predicted once.
// - extractLora: from the kept full fine-tune, on every Linear of the blocks (wq, wk, wv, wo, w1, w2, w3),
//   r = 4, 8, 16, 32: the relative reconstruction error ||delta - BA||_F / ||delta||_F over all those
//   layers together and the held-out loss of base + the adapter. The full fine-tune also changes the
//   embedding (tied to the head) and the norm gains, which no LoRA on the Linears can carry: "Linear
//   deltas, exact" is the limit the extracted adapters approach as r grows.
// - Plot (bench/peft.svg): the validation curve of each method's kept run. Samples
//   (bench/peft-samples.md): 200 new tokens after BOS + prompt, greedy and at temperature 0.8 (seed 1,
//   no top-k), from the base, the full fine-tune and the kept LoRA runs.
// - One native thread by default: at d = 64 the thread pool's hand-offs cost more than the second core
//   gives when the machine is shared with other jobs.
// Usage: npm run bench -- peft [--grid] [--extras] [--methods=full,lora,...] [--max-steps=N] [--eval-every=N]
//   [--patience=N] [--batch=N] [--block=N] [--threads=N] (defaults: up to 1000 steps, validation every
//   50, patience 4, batch 8, block 128, 1 thread, the methods not marked extra). Without --grid each
//   method runs only at the lr the last --grid run kept (recorded in METHODS; about a quarter of an hour
//   on 2 idle cores); --grid runs the whole search; --lrs=LR,... runs these for every method instead.
//   --extras adds the LoRA alpha / rsLoRA rows. With --methods or --lrs (an experiment) bench/peft.svg
//   and bench/peft-samples.md are not written.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as T from "../src/index.js";
import { linePlotSvg, writeSvg, type Series } from "../src/train/metrics.js";
import { fmt, jsonLine, printTable } from "./common.js";
import { extraction, restore, snapshot, windowLoss, writeSamples, type LM } from "./peft-report.js";

const ROOT = new URL("..", import.meta.url).pathname;
const CORPUS = "data/tinyshakespeare.txt", CORPUS_CHARS = 120_000, HELD_OUT = 0.1, VALID = 0.1;
const SEED = 1337, CLIP = 1;
const ATTN = ["wq", "wk", "wv", "wo"], ALL_LINEAR = [...ATTN, "w1", "w2", "w3"];
/** What full fine-tuning trains besides the Linear layers: the embedding (tied to the head) and the norm gains. */
const FULLY_TRAINED = ["tok_emb", "norm1", "norm2", "norm_f"];
const QKVO_LRS = [3e-3, 1e-2, 3e-2], ALL_LRS = [3e-4, 1e-3, 3e-3, 1e-2, 3e-2];
const EXTRACT_RANKS = [4, 8, 16, 32];
const PROMPTS = ["ROMEO:", "Once upon a time"], SAMPLED = ["full", "lora", "lora-all"];
const GAP_GOAL = 0.1;  // the issue's: LoRA r 8 within 0.1 nats of full fine-tuning

interface Method {
  key: string;
  /** The plot's legend name. */
  short: string;
  label: string;
  /** The learning rates --grid tries. */
  grid: number[];
  /** The one a --grid run kept (bench/RESULTS.md), the only one run without --grid. */
  lr: number;
  /** Run only with --extras or when named in --methods. */
  extra?: boolean;
  spec: T.PeftSpec;
}

const lora = (targetModules: string[], more: Partial<T.PeftSpec> = {}): T.PeftSpec => ({ method: "lora", r: 8, alpha: 16, targetModules, ...more });

// LoRA's scale is alpha / r (Hu et al. 2021, §4.1: alpha set to the first r tried, i.e. scale 1; PEFT's
// LoraConfig default lora_alpha 8 with r 8); `tsformer finetune` defaults to alpha 2r (scale 2);
// rsLoRA (Kalajdzievski 2023) scales by alpha / sqrt(r). With Adam the scale mostly moves the best lr,
// so the alpha rows have their own grids. Each grid was widened by one step (on validation alone) where
// the kept lr sat at its edge, until it did not or the step budget bound (prompt tuning still improves
// at 1000 steps; the two extra rows were left at their edge).
const METHODS: Method[] = [
  { key: "full", short: "full", label: "full fine-tuning", grid: [1e-4, 3e-4, 1e-3, 3e-3], lr: 3e-4, spec: { method: "full" } },
  { key: "lora", short: "LoRA qkvo", label: "LoRA r=8 a=16 (q,k,v,o)", grid: QKVO_LRS, lr: 1e-2, spec: lora(ATTN) },
  { key: "lora-emb", short: "LoRA qkvo+emb", label: "LoRA r=8 a=16 (q,k,v,o) + emb, norms saved", grid: QKVO_LRS, lr: 1e-2, spec: lora(ATTN, { modulesToSave: FULLY_TRAINED }) },
  { key: "lora-all", short: "LoRA all", label: "LoRA r=8 a=16 (q,k,v,o,w1,w2,w3)", grid: ALL_LRS, lr: 1e-3, spec: lora(ALL_LINEAR) },
  { key: "lora-all-emb", short: "LoRA all+emb", label: "LoRA r=8 a=16 (all Linear) + emb, norms saved", grid: ALL_LRS, lr: 1e-3, spec: lora(ALL_LINEAR, { modulesToSave: FULLY_TRAINED }) },
  { key: "dora", short: "DoRA qkvo", label: "DoRA r=8 a=16 (q,k,v,o)", grid: QKVO_LRS, lr: 1e-2, spec: { ...lora(ATTN), method: "dora" } },
  { key: "adapter", short: "adapter", label: "Houlsby adapter (m=16)", grid: [3e-3, 1e-2, 3e-2], lr: 1e-2, spec: { method: "adapter", bottleneck: 16 } },
  { key: "prefix", short: "prefix", label: "prefix tuning (16 tokens, MLP)", grid: [1e-2, 3e-2, 1e-1], lr: 3e-2, spec: { method: "prefix", virtualTokens: 16 } },
  { key: "prompt", short: "prompt", label: "prompt tuning (16 tokens)", grid: [3e-2, 1e-1, 3e-1], lr: 3e-1, spec: { method: "prompt", virtualTokens: 16 } },
  { key: "lora-a8", short: "LoRA qkvo a=8", extra: true, label: "LoRA r=8 a=8 (q,k,v,o)", grid: [1e-2, 3e-2], lr: 3e-2, spec: lora(ATTN, { alpha: 8 }) },
  { key: "lora-rs", short: "rsLoRA qkvo", extra: true, label: "rsLoRA r=8 a=16 (q,k,v,o)", grid: [3e-3, 1e-2], lr: 1e-2, spec: lora(ATTN, { rslora: true }) },
];

interface Options { maxSteps: number; evalEvery: number; patience: number; batch: number; block: number; threads: number; methods: Method[]; grid: boolean; lrs: number[] | null; writes: boolean }

function parseArgs(argv: string[]): Options {
  const o: Options = { maxSteps: 1000, evalEvery: 50, patience: 4, batch: 8, block: 128, threads: 1, methods: METHODS.filter((x) => !x.extra), grid: false, lrs: null, writes: true };
  const ints = { "max-steps": "maxSteps", "eval-every": "evalEvery", patience: "patience", batch: "batch", block: "block", threads: "threads" } as const;
  for (const a of argv) {
    const m = /^--([a-z-]+)(?:=(.+))?$/.exec(a);
    if (m?.[1] === "extras" && m[2] === undefined) {
      o.methods = METHODS.filter((x) => o.methods.includes(x) || x.extra);
    } else if (m?.[1] === "lrs" && m[2]) {
      o.lrs = m[2].split(",").map(Number);
      if (!o.lrs.every((x) => x > 0 && Number.isFinite(x))) throw new Error(`peft bench: --lrs must be positive numbers separated by commas, got ${m[2]}`);
      o.writes = false;
    } else if (m?.[1] === "grid" && m[2] === undefined) {
      o.grid = true;
    } else if (m?.[1] === "methods" && m[2]) {
      const keys = m[2].split(",");
      const bad = keys.filter((k) => !METHODS.some((x) => x.key === k));
      if (bad.length) throw new Error(`peft bench: --methods: unknown ${bad.join(", ")}; expected some of ${METHODS.map((x) => x.key).join(", ")}`);
      o.methods = METHODS.filter((x) => keys.includes(x.key));
      o.writes = false;  // an experiment: the committed plot and samples stay
    } else if (m && m[1]! in ints && m[2]) {
      const v = Number(m[2]);
      if (!Number.isSafeInteger(v) || v < 1) throw new Error(`peft bench: --${m[1]} must be a positive integer, got ${m[2]}`);
      o[ints[m[1] as keyof typeof ints]] = v;
    } else {
      throw new Error(`peft bench: unknown argument ${JSON.stringify(a)}; expected --${Object.keys(ints).join("=N, --")}=N, --grid, --lrs=LR,LR,..., --extras or --methods=${METHODS.map((x) => x.key).join(",")}`);
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
  /** The freshly loaded base the method was applied to (a prefix / prompt wrapper holds it, not as a child). */
  base: T.TransformerLM;
  trainable: T.TrainableSummary;
  /** Validation loss at step 0 and every evalEvery steps. */
  curve: [number, number][];
  best: { step: number; val: number };
  steps: number;
  ms: number;
  stop: "patience" | "max-steps" | "diverged";
  heldOut?: number;
}

const loadBase = () => T.loadLlama2c(join(ROOT, "data/stories260K.bin"));

/** One run: train with the protocol's early stopping; returns with the best parameters restored. */
async function trainRun(method: Method, lr: number, train: T.TokenDataset, val: (m: LM) => number, o: Options): Promise<Run> {
  const base = await loadBase();
  T.manualSeed(0);  // LoRA's A is drawn from the default generator (PEFT: torch's global stream)
  const model = T.applyPeft(base, method.spec).model.train();
  const params = model.parameters().filter((p) => p.requiresGrad);
  const opt = new T.AdamW(T.defaultParamGroups(model, 0), { lr });
  const sampler = new T.BatchSampler(train, o.batch, o.block, SEED);
  const lrAt = T.makeSchedule({ kind: "cosine", lr, minLr: lr / 10, warmupSteps: Math.min(20, Math.floor(o.maxSteps / 10)), decaySteps: o.maxSteps });
  const v0 = val(model);
  const r: Run = { method, lr, model, base, trainable: T.trainableParameters(model, base), curve: [[0, v0]], best: { step: 0, val: v0 }, steps: 0, ms: 0, stop: "max-steps" };
  let kept = snapshot(params), since = 0;
  const log: string[] = [];
  for (let i = 0; i < o.maxSteps; i++) {
    const t0 = performance.now();
    const finite = T.tidy(() => {
      const loss = T.lmObjective(model, sampler.next()).loss;
      if (!Number.isFinite(loss.item())) return false;
      loss.backward();
      T.clipGradNorm(params, CLIP);
      opt.setLr(lrAt(i));
      opt.step();
      opt.zeroGrad();
      return true;
    });
    r.ms += performance.now() - t0;
    if (!finite) { r.stop = "diverged"; break; }
    r.steps = i + 1;
    if (r.steps % o.evalEvery !== 0) continue;
    const v = val(model);
    r.curve.push([r.steps, v]);
    log.push(`${r.steps}:${v.toFixed(3)}`);
    if (v < r.best.val) { r.best = { step: r.steps, val: v }; kept = snapshot(params); since = 0; } else if (++since >= o.patience) { r.stop = "patience"; break; }
  }
  restore(params, kept);
  console.error(`${method.key} lr ${lr.toExponential(0)}: best ${r.best.val.toFixed(4)} at ${r.best.step}, stopped at ${r.steps} (${r.stop}), ${(r.ms / 1000).toFixed(0)} s; val ${v0.toFixed(3)} ${log.join(" ")}`);
  jsonLine({ bench: "peft", kind: "run", method: method.key, lr, best_val: r.best.val, best_step: r.best.step, steps: r.steps, stop: r.stop, seconds: r.ms / 1000, trainable: r.trainable.trainable, curve: r.curve });
  return r;
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
  const val = (m: LM) => windowLoss(m, valIds, o.block);
  const lrsOf = (m: Method) => o.lrs ?? (o.grid ? m.grid : [m.lr]);
  const runsTotal = o.methods.reduce((n, m) => n + lrsOf(m).length, 0);
  console.log(`corpus: ${CORPUS} first ${corpus.length} chars; train ${trainText.length} chars / ${trainIds.length} tokens, validation ${valText.length} / ${valIds.length}, held-out ${heldText.length} / ${heldIds.length}`);
  console.log(`budget: up to ${o.maxSteps} steps x batch ${o.batch} x block ${o.block} per run, validation every ${o.evalEvery}, patience ${o.patience}; ${runsTotal} runs; ${o.threads} native thread(s)`);

  const base = await loadBase();
  const baseVal = val(base);
  jsonLine({ bench: "peft", kind: "base", val: baseVal });

  const train = new T.TokenDataset(trainIds, "shakespeare train split");
  const runs: Run[] = [], chosen: Run[] = [];
  for (const method of o.methods) {
    const mine: Run[] = [];
    for (const lr of lrsOf(method)) mine.push(await trainRun(method, lr, train, val, o));
    chosen.push(mine.reduce((a, b) => (b.best.val < a.best.val ? b : a)));
    runs.push(...mine);
    console.error(`(${runs.length}/${runsTotal} runs, ${((performance.now() - start) / 1000).toFixed(0)} s)`);
  }

  const lrs = [...new Set(runs.map((r) => r.lr))].sort((a, b) => a - b);
  console.log("\nlearning-rate grid (best validation loss @ its step; * = kept):");
  printTable(["method", ...lrs.map((lr) => lr.toExponential(0))], o.methods.map((m) => [m.label, ...lrs.map((lr) => {
    const r = runs.find((x) => x.method === m && x.lr === lr);
    return r ? `${fmt(r.best.val, 4)} @${r.best.step}${r.stop === "diverged" ? "!" : ""}${chosen.includes(r) ? "*" : " "}` : "-";
  })]));

  // The held-out split, read only now: the base and each method's kept run.
  const heldOut = (m: LM) => windowLoss(m, heldIds, o.block);
  const before = heldOut(base);
  const reference = T.scoreTokens(base, heldIds, { window: o.block }).loss;
  if (Math.abs(reference - before) > 1e-5) throw new Error(`peft bench: batched held-out loss ${before} differs from scoreTokens' ${reference}`);
  for (const r of chosen) r.heldOut = heldOut(r.model);
  console.log(`\nheld-out loss (nats/token, ${heldIds.length} tokens); before = the base: ${fmt(before, 4)}`);
  printTable(["method", "trainable", "%", "lr", "best step", "steps", "val", "before", "after", "cut", "seconds"], chosen.map((r) => [
    r.method.label, r.trainable.trainable.toLocaleString("en-US"), fmt(100 * r.trainable.fraction, 2), r.lr.toExponential(0), r.best.step, r.steps,
    fmt(r.best.val, 4), fmt(before, 4), fmt(r.heldOut!, 4), fmt(before - r.heldOut!, 4), fmt(r.ms / 1000, 1),
  ]));
  for (const r of chosen) jsonLine({ bench: "peft", kind: "chosen", method: r.method.key, lr: r.lr, trainable: r.trainable.trainable, fraction: r.trainable.fraction, best_step: r.best.step, steps: r.steps, val: r.best.val, before, after: r.heldOut, seconds: r.ms / 1000 });
  const full = chosen.find((r) => r.method.key === "full");
  for (const r of chosen.filter((x) => full && /^(lora|dora)/.test(x.method.key))) {
    const gap = r.heldOut! - full!.heldOut!;
    console.log(`${r.method.label} - full fine-tuning: ${gap >= 0 ? "+" : ""}${fmt(gap, 4)} nats (goal: within ${GAP_GOAL}: ${gap <= GAP_GOAL ? "met" : "not met"})`);
    jsonLine({ bench: "peft", kind: "gap", method: r.method.key, gap, goal: GAP_GOAL, met: gap <= GAP_GOAL });
  }

  if (full) await extraction(loadBase, full.model as T.TransformerLM, ALL_LINEAR, EXTRACT_RANKS, heldOut, full.heldOut!, before);
  if (o.writes) {
    const svg = join(ROOT, "bench/peft.svg");
    // from the first evaluation on: step 0 (the base, 4.9-5.5) would flatten the rest
    const series: Series[] = chosen.map((r) => ({ name: `${r.method.short}, lr ${r.lr.toExponential(0)}`, points: r.curve.slice(1) }));
    await writeSvg(svg, linePlotSvg(series, { title: "stories260K on Shakespeare: validation loss, kept lr", yLabel: "validation loss (nats/token)" }));
    console.log(`\nwrote ${svg}`);
    const models: [string, LM][] = [[`base (stories260K; held-out loss ${fmt(before, 3)})`, base], ...chosen.filter((r) => SAMPLED.includes(r.method.key)).map((r) =>
      [`${r.method.label}, lr ${r.lr.toExponential(0)}, step ${r.best.step} (held-out loss ${fmt(r.heldOut!, 3)})`, r.model] as [string, LM])];
    writeSamples(tok, models, { file: join(ROOT, "bench/peft-samples.md"), command: `npm run bench -- peft ${argv.join(" ")}`.trim(), prompts: PROMPTS, tokens: 200, temperature: 0.8 });
  } else {
    console.log("\n(--methods given: bench/peft.svg and bench/peft-samples.md are left as they are)");
  }
  console.log(`total: ${((performance.now() - start) / 1000).toFixed(0)} s`);
}
