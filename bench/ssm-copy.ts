// The selective copying task of the Mamba paper (Gu & Dao 2023, §4.1.1 and Figure 2), at small scale,
// for bench/ssm.ts. A sequence is `context` positions holding `copy` data tokens at random positions
// (in order of position) among noise tokens, then `copy` marker tokens; at the j-th marker the model
// must output the j-th data token. Only those outputs are scored (loss and accuracy); vocabulary:
// 0 = noise, 1 = marker, 2 .. 2 + SYMBOLS - 1 = data. Solving it needs content-aware selection: which
// positions to remember depends on the tokens, not on fixed offsets, which is what a linear
// time-invariant model (S4D: one kernel for every input) cannot do and Mamba's input-dependent
// delta, B, C can.

import * as T from "../src/index.js";

export interface CopyTask { context: number; copy: number }
const SYMBOLS = 10, VOCAB = 2 + SYMBOLS, NOISE = 0, MARKER = 1;

/** n sequences: ids [n, context + copy] and targets (-100 except at the markers). */
export function copyBatch(n: number, g: T.RandomGenerator, task: CopyTask): { x: T.Tensor; y: T.Tensor } {
  const TASK = { ...task, symbols: SYMBOLS }, SEQ = task.context + task.copy;
  const x = new Int32Array(n * SEQ).fill(NOISE), y = new Int32Array(n * SEQ).fill(-100);
  const u = new Float64Array(TASK.context + TASK.copy);
  for (let i = 0; i < n; i++) {
    g.uniform(u);
    // COPY distinct positions: the first COPY of a random permutation (argsort of uniforms), in order
    const pos = Array.from({ length: TASK.context }, (_, p) => p).sort((a, b) => u[a] - u[b]).slice(0, TASK.copy).sort((a, b) => a - b);
    pos.forEach((p, j) => {
      const tok = 2 + Math.min(TASK.symbols - 1, Math.floor(u[TASK.context + j] * TASK.symbols));
      x[i * SEQ + p] = tok;
      x[i * SEQ + TASK.context + j] = MARKER;
      y[i * SEQ + TASK.context + j] = tok;
    });
  }
  return { x: T.tensor(x, { shape: [n, SEQ] }), y: T.tensor(y, { shape: [n, SEQ] }) };
}

export function copyConfig(mixer: "mamba" | "s4d", dModel: number, task: CopyTask): T.ModelConfig {
  return T.parseModelConfig({
    vocabSize: VOCAB, dModel, nLayers: 2, nHeads: 1, dFF: 1, maxSeqLen: task.context + task.copy, position: "none", norm: "rmsnorm", ffn: "swiglu",
    bias: false, mixer, ssm: { dState: 16, ffn: false },
  });
}

/** Token accuracy over the scored outputs. */
function accuracy(model: T.TransformerLM, ev: { x: T.Tensor; y: T.Tensor }): number {
  const logits = T.noGrad(() => model.forward(ev.x).logits).toTypedArray();
  const y = ev.y.toTypedArray();
  let right = 0, total = 0;
  for (let r = 0; r < y.length; r++) {
    if (y[r] < 0) continue;
    let best = 0;
    for (let v = 1; v < VOCAB; v++) if (logits[r * VOCAB + v] > logits[r * VOCAB + best]) best = v;
    right += best === y[r] ? 1 : 0;
    total++;
  }
  return right / total;
}

export const COPY_SCHEDULES = ["cosine", "constant", "wsd"] as const;
export type CopySchedule = (typeof COPY_SCHEDULES)[number];

/** 100 warmup steps, then cosine to 10%, a constant lr (as the Mamba paper's synthetic runs), or held until 80% of
 * the steps and then a linear cooldown to 0 (warmup-stable-decay). */
function copyLr(kind: CopySchedule, lr: number, steps: number): T.Schedule {
  const warmupSteps = 100, decaySteps = steps - 1;
  if (kind === "wsd") return T.makeSchedule({ kind, lr, minLr: 0, warmupSteps, decayStart: Math.max(warmupSteps, Math.floor(0.8 * steps)), decaySteps });
  if (kind === "constant") return T.makeSchedule({ kind, lr, warmupSteps });
  return T.makeSchedule({ kind, lr, minLr: lr / 10, warmupSteps, decaySteps });
}

export interface CopyRun { name: string; params: number; steps: number[]; acc: number[]; loss: number[]; seconds: number }

/** Trains one model; evaluates on a fixed set of 512 sequences every `every` steps. */
export function trainCopy(name: string, cfg: T.ModelConfig, task: CopyTask, o: { steps: number; every: number; batch: number; lr: number; schedule: CopySchedule }): CopyRun {
  const model = new T.TransformerLM(cfg, { generator: new T.RandomGenerator(1) });
  const params = model.parameters().reduce((a, p) => a + p.numel, 0);
  // no weight decay: A_log and the S4D parameters are exempt in the references (mamba_ssm _no_weight_decay, s4d.py)
  const opt = new T.AdamW(T.defaultParamGroups(model, 0), { lr: o.lr });
  const data = new T.RandomGenerator(7), ev = copyBatch(512, new T.RandomGenerator(99), task);
  const run: CopyRun = { name, params, steps: [], acc: [], loss: [], seconds: 0 };
  const lr = copyLr(o.schedule, o.lr, o.steps);
  const t0 = Date.now();
  let recent = 0;
  for (let s = 1; s <= o.steps; s++) {
    opt.lr = lr(s - 1);
    const { x, y } = copyBatch(o.batch, data, task);
    const loss = T.crossEntropy(T.reshape(model.forward(x).logits, [-1, VOCAB]), T.reshape(y, [-1]));
    recent += loss.item();
    loss.backward();
    opt.step();
    opt.zeroGrad();
    if (s % o.every === 0 || s === o.steps) {
      model.eval();
      const acc = accuracy(model, ev);
      model.train();
      run.steps.push(s);
      run.acc.push(acc);
      run.loss.push(recent / (s % o.every || o.every));
      recent = 0;
      console.log(JSON.stringify({ bench: "ssm-copy", model: name, params, ...task, step: s, acc: Number(acc.toFixed(4)), loss: Number(run.loss.at(-1)!.toFixed(4)), seconds: (Date.now() - t0) / 1000 }));
    }
  }
  run.seconds = (Date.now() - t0) / 1000;
  return run;
}
