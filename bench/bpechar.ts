// A GPT with a trained byte-level BPE vocabulary (4096) vs the character-level GPT, each also with dropout
// 0.1, trained for the same wall-clock budget; each model's checkpoint is selected on a validation split
// and scored by bits per character on held-out TinyStories.
//
// Protocol:
// - Data: data/tinystories-valid-head.txt (stories separated by "<|endoftext|>" lines). It is cut at the
//   last "<|endoftext|>" before 90 % of its characters: the part from that separator on is the held-out
//   text (the last ~10 % of the stories). The part before is cut again the same way at 95 % of its
//   characters: before is the training split (the only text either tokenizer or model trains on), from the
//   separator on is the validation split (~5 %), used only to select each model's checkpoint. Both the
//   validation and the held-out text begin with an "<|endoftext|>" line.
// - Char model: CharTokenizer.fromText(training split). Validation and held-out characters absent from the
//   training split are mapped to one extra fallback id (the model's vocabulary is the training characters
//   + 1); the fallback never occurs in training, so the model pays whatever low probability it gives it,
//   as the BPE model pays for byte tokens it never saw. Their count is reported.
// - BPE model: trainBpe(training split, vocab 4096, special token "<|endoftext|>"), encoded with
//   HFTokenizer (the separator lines become the special token).
// - Models: npm start's architecture and optimizer (src/cli/train.ts: TRAIN_DEFAULTS and runTrain:
//   GPT-2 layout d 96, 3 layers, 4 heads, context 64, batch 16, AdamW lr 4e-3 wd 0.1 betas (0.9, 0.99),
//   warmup 100, cosine to lr/10, grad clip 1) with the vocabulary of their tokenizer, same init seed;
//   "+drop" is the same model with config dropout 0.1 (`tsformer train --dropout 0.1`).
// - Budget T (training seconds; evaluations are not counted). Default: measured here, the char model
//   (no dropout) runs npm start's 3200 steps and its training time is T. With a SECONDS argument, T is
//   that and every model trains for T. Each model's cosine schedule spans the steps it is expected to fit,
//   estimated from the speed of its steps 5..24 (in the measured mode the others' expectation is T
//   estimated as 3200 x the char model's early step time). A model stops at the first step that brings
//   its training time to T or beyond.
// - The models train interleaved in one process, a step at a time, always stepping the one with the
//   least training time so far: a change of machine load falls on all alike.
// - Metric: bits per character = sum over a text's tokens of -log2 p(token | context), divided by the
//   number of characters (code points) of the text. Both tokenizations score exactly the same text; the
//   first token is not predicted (it is "<" for the char model, "<|endoftext|>" for BPE). Sliding windows
//   of 64 tokens with stride 32: every token after the first window is predicted with at least 33 tokens
//   of context. 64 BPE tokens span several times more characters than 64 characters do.
// - Checkpoint selection, as `tsformer train` keeps its `best` link (src/train/trainer.ts): validation
//   and held-out bpc are both measured at step 0, at 1/32 .. 32/32 of a model's planned steps and at its
//   last step; the selected checkpoint is the evaluation with the lowest validation bpc (the earliest on
//   a tie), and its held-out bpc is the one reported (the weights are not copied: held-out was scored at
//   that very step). For one model, bpc and mean token loss on a fixed text differ by a constant factor,
//   so they select the same step. The table also gives the final weights' held-out figure and, for
//   reference only, the lowest held-out value seen ("oracle": picked on the test text, optimistic).
// Usage: npm run bench -- bpechar [SECONDS]. Writes bench/bpechar.svg (held-out bpc from the first
// evaluation after step 0, the selected checkpoints marked).

import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as T from "../src/index.js";
import { TRAIN_DEFAULTS } from "../src/cli/train.js";
import { linePlotSvg, writeSvg, type Series } from "../src/train/metrics.js";
import { fmt, jsonLine, printTable } from "./common.js";

const ROOT = new URL("..", import.meta.url).pathname;
const CORPUS = "data/tinystories-valid-head.txt", EOT = "<|endoftext|>", HELD_OUT = 0.1, VALID = 0.05, BPE_VOCAB = 4096, DROPOUT = 0.1;
const { dModel, nLayers, nHeads, block: BLOCK, batch: BATCH, lr: LR, warmup: WARMUP, steps: START_STEPS, seed: SEED } = TRAIN_DEFAULTS;
// runTrain's optimizer and schedule (src/cli/train.ts): minLr lr/10, AdamW wd 0.1, betas (0.9, 0.99); the trainer's clip 1.
const MIN_LR = LR / 10, WEIGHT_DECAY = 0.1, BETA2 = 0.99, CLIP = 1;
const STRIDE = BLOCK / 2, EVAL_BATCH = 32, EVALS = 32;
// Steps whose mean time predicts a run's step count: the first few are slower (allocation, JIT).
const TIMED_FROM = 5, TIMED_STEPS = 20;

interface Eval { step: number; seconds: number; valBpc: number; heldBpc: number }
/** A text to score: its token ids and its number of characters. */
interface Scored { ids: Int32Array; chars: number }

interface Arm {
  name: string;
  tokenizer: string;
  model: T.TransformerLM;
  opt: T.AdamW;
  sampler: T.BatchSampler;
  valid: Scored;
  held: Scored;
  /** Characters per token of the training split (1 for the char model). */
  trainCharsPerToken: number;
  /** Steps this arm may not exceed (npm start's 3200 for the char model when T is measured). */
  stepCap: number;
  steps: number;
  trainMs: number;
  stepMs: number[];
  /** Mean ms per step of steps TIMED_FROM.., once known; then the planned steps and their schedule. */
  msPerStep: number | null;
  planned: number | null;
  lrAt: T.Schedule;
  losses: number[];
  evals: Eval[];
}

const schedule = (decaySteps: number) =>
  T.makeSchedule({ kind: "cosine", lr: LR, minLr: MIN_LR, warmupSteps: WARMUP, decaySteps: Math.max(decaySteps, WARMUP + 1) });

interface ArmData { tokenizer: string; vocabSize: number; train: Int32Array; valid: Scored; held: Scored; trainChars: number }

function makeArm(name: string, d: ArmData, dropout: number, stepCap: number): Arm {
  const cfg = T.gpt2Config({ vocabSize: d.vocabSize, dModel, nLayers, nHeads, maxSeqLen: BLOCK, dropout });
  const model = new T.TransformerLM(cfg, { generator: new T.RandomGenerator(SEED), dropoutGenerator: new T.RandomGenerator(SEED + 1) });
  const opt = new T.AdamW(T.defaultParamGroups(model, WEIGHT_DECAY), { lr: LR, beta1: 0.9, beta2: BETA2 });
  return {
    name, tokenizer: d.tokenizer, model, opt, sampler: new T.BatchSampler(new T.TokenDataset(d.train, `${name} training split`), BATCH, BLOCK, SEED),
    valid: d.valid, held: d.held, trainCharsPerToken: d.trainChars / d.train.length, stepCap, steps: 0, trainMs: 0, stepMs: [], msPerStep: null, planned: null,
    // Until the plan, the schedule is its warmup (the plan comes before the warmup ends).
    lrAt: schedule(0), losses: [], evals: [],
  };
}

function trainStep(a: Arm): void {
  const t0 = performance.now();
  a.opt.setLr(a.lrAt(a.steps));
  const loss = T.tidy(() => {
    const { x, y } = a.sampler.next();
    const l = T.crossEntropy(a.model.forward(x).logits.reshape(-1, a.model.config.vocabSize), y.reshape(-1));
    const v = l.item();
    l.backward();
    T.clipGradNorm(a.model.parameters(), CLIP);
    a.opt.step();
    a.opt.zeroGrad();
    return v;
  });
  if (!Number.isFinite(loss)) throw new Error(`bpechar: ${a.name} loss is ${loss} at step ${a.steps + 1}`);
  const ms = performance.now() - t0;
  a.trainMs += ms;
  a.stepMs.push(ms);
  a.steps++;
  a.losses.push(loss);
  if (a.steps === TIMED_FROM + TIMED_STEPS) a.msPerStep = a.stepMs.slice(TIMED_FROM).reduce((p, q) => p + q, 0) / TIMED_STEPS;
}

/** Bits per character of a text: -log2 p over ids[1..n) in sliding windows of BLOCK tokens, stride STRIDE
 * (each token scored once, by the first window that holds it at position >= BLOCK - STRIDE; the last
 * window is aligned to the end), over the text's characters. */
function bitsPerChar(model: T.CausalLM, { ids, chars }: Scored, what: string): number {
  const n = ids.length, V = model.config.vocabSize;
  if (n < BLOCK + 1) throw new RangeError(`bpechar: the ${what} text is ${n} tokens; expected at least ${BLOCK + 1}`);
  const starts: number[] = [];
  for (let s = 0; s + BLOCK < n; s += STRIDE) starts.push(s);
  if (starts[starts.length - 1] + BLOCK < n - 1) starts.push(n - 1 - BLOCK);
  let bits = 0, next = 1, scored = 0;
  const wasTraining = model.training;
  model.eval();
  T.noGrad(() => {
    for (let b = 0; b < starts.length; b += EVAL_BATCH) {
      const group = starts.slice(b, b + EVAL_BATCH);
      const x = new Int32Array(group.length * BLOCK);
      group.forEach((s, i) => x.set(ids.subarray(s, s + BLOCK), i * BLOCK));
      T.tidy(() => {
        const logp = T.logSoftmax(model.forward(T.tensor(x, { shape: [group.length, BLOCK] })).logits, -1).toTypedArray();
        group.forEach((s, i) => {
          for (let t = Math.max(0, next - s - 1); t < BLOCK; t++) {
            bits -= logp[(i * BLOCK + t) * V + ids[s + t + 1]] / Math.LN2;
            scored++;
          }
          next = s + BLOCK + 1;
        });
      });
    }
  });
  model.train(wasTraining);
  if (scored !== n - 1) throw new Error(`bpechar: scored ${scored} ${what} tokens; expected ${n - 1}`);
  return bits / chars;
}

function evaluate(a: Arm): void {
  const e = { step: a.steps, seconds: a.trainMs / 1000, valBpc: bitsPerChar(a.model, a.valid, "validation"), heldBpc: bitsPerChar(a.model, a.held, "held-out") };
  a.evals.push(e);
  jsonLine({ bench: "bpechar", kind: "eval", model: a.name, ...e, lr: a.lrAt(Math.max(a.steps - 1, 0)) });
}

/** The checkpoint `tsformer train` links as `best`: the lowest validation figure, the earliest on a tie. */
const selected = (a: Arm) => a.evals.reduce((p, q) => (q.valBpc < p.valBpc ? q : p));

/** [before, from]: text cut at the last separator before `1 - tail` of its characters. */
function cutStories(text: string, tail: number, what: string): [string, string] {
  const cut = text.lastIndexOf(EOT, Math.floor(text.length * (1 - tail)));
  if (cut <= 0) throw new Error(`bpechar: ${what} has no "${EOT}" separator before ${100 - tail * 100} % of its text; expected stories separated by it`);
  return [text.slice(0, cut), text.slice(cut)];
}

const argSeconds = (s: string | undefined): number | null => {
  if (s === undefined) return null;
  const v = Number(s);
  if (!(Number.isFinite(v) && v > 0)) throw new RangeError(`bpechar: SECONDS must be a positive number of training seconds, got ${JSON.stringify(s)}`);
  return v;
};

export async function main(argv: string[]): Promise<void> {
  const given = argSeconds(argv[0]);
  const [trainValid, heldText] = cutStories(readFileSync(join(ROOT, CORPUS), "utf8"), HELD_OUT, CORPUS);
  const [trainText, validText] = cutStories(trainValid, VALID, `the training part of ${CORPUS}`);
  const nChars = (s: string) => [...s].length;
  const stories = (s: string) => s.split(EOT).filter((p) => p.trim()).length;

  const chars = T.CharTokenizer.fromText(trainText);
  const charId = new Map(chars.vocab.map((c, i) => [c, i]));
  const fallback = chars.vocabSize;
  const charScored = (s: string): Scored => ({ ids: Int32Array.from([...s], (c) => charId.get(c) ?? fallback), chars: nChars(s) });
  const unseen = (s: string) => [...s].filter((c) => !charId.has(c));

  const tBpe = performance.now();
  const bpe = T.HFTokenizer.fromJSON(T.trainBpe(trainText, { vocabSize: BPE_VOCAB, specialTokens: [EOT] }).tokenizerJson);
  const bpeSeconds = (performance.now() - tBpe) / 1000;
  const bpeScored = (s: string, what: string): Scored => {
    const ids = Int32Array.from(bpe.encode(s));
    if (bpe.decode([...ids]) !== s) throw new Error(`bpechar: the BPE tokenizer does not round-trip the ${what} text`);
    return { ids, chars: nChars(s) };
  };
  const charData: ArmData = {
    tokenizer: `CharTokenizer (${chars.vocabSize} + 1 fallback)`, vocabSize: chars.vocabSize + 1, train: Int32Array.from(chars.encode(trainText)),
    valid: charScored(validText), held: charScored(heldText), trainChars: trainText.length,
  };
  const bpeData: ArmData = {
    tokenizer: `byte-level BPE ${bpe.vocabSize}`, vocabSize: bpe.vocabSize, train: Int32Array.from(bpe.encode(trainText)),
    valid: bpeScored(validText, "validation"), held: bpeScored(heldText, "held-out"), trainChars: trainText.length,
  };

  jsonLine({
    bench: "bpechar", kind: "data", corpus: CORPUS, trainChars: trainText.length, validChars: charData.valid.chars, heldChars: charData.held.chars,
    trainStories: stories(trainText), validStories: stories(validText), heldStories: stories(heldText), charVocab: chars.vocabSize,
    validUnseenChars: unseen(validText).length, heldUnseenChars: unseen(heldText).length, unseen: [...new Set([...unseen(validText), ...unseen(heldText)])].join(""),
    bpeVocab: bpe.vocabSize, bpeTrainSeconds: bpeSeconds, bpeTrainTokens: bpeData.train.length, bpeValidTokens: bpeData.valid.ids.length, bpeHeldTokens: bpeData.held.ids.length,
  });
  console.error(`data: ${trainText.length} training / ${charData.valid.chars} validation / ${charData.held.chars} held-out characters; ${unseen(validText).length} validation and ${unseen(heldText).length} held-out characters not in the training split -> the char model's fallback id`);

  const measured = given === null;
  const arms = [
    makeArm("char", charData, 0, measured ? START_STEPS : Infinity),
    makeArm("bpe", bpeData, 0, Infinity),
    makeArm("char+drop", charData, DROPOUT, Infinity),
    makeArm("bpe+drop", bpeData, DROPOUT, Infinity),
  ];
  const [char] = arms;
  let budgetMs = given === null ? null : given * 1000;
  const done = (a: Arm) => a.steps >= a.stepCap || (budgetMs !== null && a.trainMs >= budgetMs);
  const plan = (a: Arm) => {
    if (a.msPerStep === null) return;
    if (a.stepCap !== Infinity) a.planned = a.stepCap;
    else if (budgetMs !== null) a.planned = Math.max(1, Math.floor(budgetMs / a.msPerStep));
    else if (char.msPerStep !== null) a.planned = Math.max(1, Math.floor((START_STEPS * char.msPerStep) / a.msPerStep));
    else return;
    a.lrAt = schedule(a.planned);
    console.error(`${a.name}: ${a.msPerStep.toFixed(1)} ms/step over steps ${TIMED_FROM + 1}..${TIMED_FROM + TIMED_STEPS}: cosine schedule over ${a.planned} steps`);
  };
  const report = (a: Arm) => {
    if (a.evals[a.evals.length - 1].step !== a.steps) evaluate(a);
    const e = a.evals[a.evals.length - 1];
    console.error(`${a.name}: step ${a.steps}${a.planned === null ? "" : `/${a.planned}`}, ${e.seconds.toFixed(1)} s, validation ${e.valBpc.toFixed(4)}, held-out ${e.heldBpc.toFixed(4)} bpc`);
  };
  const due = (a: Arm) => a.planned !== null && Array.from({ length: EVALS }, (_, k) => Math.round((a.planned! * (k + 1)) / EVALS)).includes(a.steps);

  for (const a of arms) evaluate(a);
  const wall0 = performance.now();
  for (;;) {
    const live = arms.filter((a) => !done(a));
    if (live.length === 0) break;
    const a = live.reduce((p, q) => (q.trainMs < p.trainMs ? q : p));
    trainStep(a);
    if (a.planned === null) plan(a);
    if (measured && a === char && done(a)) {
      budgetMs = a.trainMs;
      console.error(`budget T = ${(budgetMs / 1000).toFixed(1)} s: the char model's training time for npm start's ${START_STEPS} steps`);
    }
    if (due(a)) report(a);
  }
  // The final weights of every model; in the measured mode an arm may have passed T before T was known.
  for (const a of arms) report(a);
  const wallSeconds = (performance.now() - wall0) / 1000;

  const rows: (string | number)[][] = [];
  for (const a of arms) {
    const final = a.evals[a.evals.length - 1], sel = selected(a);
    const oracle = a.evals.reduce((p, q) => (q.heldBpc < p.heldBpc ? q : p));
    const seconds = a.trainMs / 1000, tokensPerSec = (a.steps * BATCH * BLOCK) / seconds;
    const heldCharsPerToken = a.held.chars / a.held.ids.length;
    const last = a.losses.slice(-100), trainBpc = (last.reduce((p, q) => p + q, 0) / last.length / Math.LN2) / a.trainCharsPerToken;
    jsonLine({
      bench: "bpechar", kind: "summary", model: a.name, tokenizer: a.tokenizer, vocab: a.model.config.vocabSize, dropout: a.model.config.dropout, params: a.model.numParameters(),
      steps: a.steps, planned: a.planned, seconds, msPerStepEstimate: a.msPerStep, msPerStep: a.trainMs / a.steps, budgetSeconds: (budgetMs ?? 0) / 1000, budget: measured ? "measured" : "given", tokensPerSec,
      trainCharsPerSec: tokensPerSec * a.trainCharsPerToken, heldCharsPerToken, contextChars: BLOCK * heldCharsPerToken, trainBpcLast100: trainBpc,
      final, selected: sel, oracle,
    });
    rows.push([
      a.name, a.model.config.vocabSize, `${a.steps} (plan ${a.planned})`, fmt(seconds, 1), fmt(tokensPerSec * a.trainCharsPerToken, 0), fmt(BLOCK * heldCharsPerToken, 0),
      fmt(trainBpc, 3), fmt(final.valBpc, 4), fmt(final.heldBpc, 4), `${sel.step} / ${fmt(sel.seconds, 1)} s`, fmt(sel.valBpc, 4), fmt(sel.heldBpc, 4), `${fmt(oracle.heldBpc, 4)} @${oracle.step}`,
    ]);
  }
  console.log(`budget T = ${fmt((budgetMs ?? 0) / 1000, 1)} training seconds (${measured ? `measured: the char model's ${START_STEPS} steps` : "given"}); wall clock ${fmt(wallSeconds, 0)} s with evaluations`);
  printTable(["model", "vocab", "steps", "train s", "chars/s", "context chars", "train bpc (last 100)", "final: valid", "final: held-out",
    "selected: step / s", "selected: valid", "selected: held-out", "oracle held-out"], rows);

  const colors = ["#1f77b4", "#d62728", "#17becf", "#ff7f0e"];
  const series: Series[] = arms.map((a, i): Series => ({ name: `${a.name}, held-out`, points: a.evals.filter((e) => e.step > 0).map((e) => [e.seconds, e.heldBpc] as const), color: colors[i] }));
  series.push({ name: "selected checkpoint", points: arms.map((a) => [selected(a).seconds, selected(a).heldBpc] as const), style: "points", color: "black" });
  await writeSvg(join(ROOT, "bench/bpechar.svg"), linePlotSvg(series, {
    title: `TinyStories: char vs BPE ${BPE_VOCAB} GPT (± dropout ${DROPOUT}), same training time`,
    xLabel: "training seconds", yLabel: "held-out bits per character",
  }));
}
