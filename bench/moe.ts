// Mixture-of-experts speed (src/nn/moe/): a Llama-layout model whose every FFN is 8 SwiGLU experts with
// top-2 routing (dropless, as Mixtral) against the dense model with the same active parameters (one
// SwiGLU FFN of twice the expert width), in one invocation:
// - training tokens/s: steps of forward + backward + AdamW on random batches (one tidy scope per step);
// - decoding tokens/s: batch 1, a prompt then one token at a time with the KV cache (no sampling).
// The two models alternate call by call; each round times REPS training steps and DECODE_REPS decodes
// of each, and the MoE / dense ratio of the medians is taken per round. Goal (issue 18): ratio >= 0.8.
// Options: --rounds=N (default 5), --d=N (default 256), --layers=N (default 4), --batch=N (default 8:
// each expert then gets B * T * 2 / 8 = 256 rows on average).

import * as T from "../src/index.js";
import { TransformerLM } from "../src/models/transformer.js";
import { llamaConfig, type ModelConfig } from "../src/models/config.js";
import { AdamW, defaultParamGroups } from "../src/train/optim.js";
import { fmt, jsonLine, printTable, stats, type Stats } from "./common.js";

const REPS = 3, DECODE_REPS = 9, GOAL = 0.8, V = 512, SEQ = 128, PROMPT = 16, NEW_TOKENS = 48;

const range = (s: Stats, d: number) => `${fmt(s.median, d)} (${fmt(s.min, d)}–${fmt(s.max, d)})`;

interface Runner { name: string; model: TransformerLM; trainStep: () => void; decode: () => void }

function runner(name: string, cfg: ModelConfig, B: number): Runner {
  const model = new TransformerLM(cfg, { generator: new T.RandomGenerator(1) });
  const opt = new AdamW(defaultParamGroups(model, 0.1), { lr: 1e-4 });
  const g = new T.RandomGenerator(2);
  const x = T.randint(V, [B, SEQ], { generator: g }), y = T.randint(V, [B, SEQ], { generator: g });
  const prompt = T.randint(V, [1, PROMPT], { generator: g });
  const next = T.randint(V, [1, NEW_TOKENS], { generator: g });
  return {
    name, model,
    trainStep: () => T.tidy(() => {
      model.train();
      const loss = T.crossEntropy(model.forward(x).logits.reshape(-1, V), y.reshape(-1));
      loss.backward();
      opt.step();
      opt.zeroGrad();
    }),
    decode: () => T.tidy(() => T.noGrad(() => {
      model.eval();
      const state = model.newState(PROMPT + NEW_TOKENS);
      model.forward(prompt, T.SeqContext.decode(state));
      for (let t = 0; t < NEW_TOKENS; t++) model.forward(T.narrow(next, 1, t, 1), T.SeqContext.decode(state));
    })),
  };
}

/** Seconds per call of a and of b: medians of `reps` calls each, a and b alternating call by call
 * (the order flipped every other call), so that a change of machine load falls on both. */
function medians(a: () => void, b: () => void, reps: number): [number, number] {
  const s: [number[], number[]] = [[], []];
  const time = (fn: () => void, into: number[]) => { const t0 = performance.now(); fn(); into.push((performance.now() - t0) / 1000); };
  for (let i = 0; i < reps; i++) {
    if (i % 2) { time(b, s[1]); time(a, s[0]); } else { time(a, s[0]); time(b, s[1]); }
  }
  return [stats(s[0]).median, stats(s[1]).median];
}

export async function main(argv: string[] = []): Promise<void> {
  const opt = (k: string) => argv.find((a) => a.startsWith(`--${k}=`))?.split("=")[1];
  const rounds = Number(opt("rounds") ?? 5), d = Number(opt("d") ?? 256), L = Number(opt("layers") ?? 4), B = Number(opt("batch") ?? 8);
  if (![rounds, d, L, B].every((n) => Number.isInteger(n) && n >= 1)) throw new RangeError("--rounds, --d, --layers, --batch: expected positive integers");
  const base = { vocabSize: V, dModel: d, nLayers: L, nHeads: d / 64, maxSeqLen: SEQ, attention: "flash" };
  const expertDFF = d;
  const dense = runner("dense", llamaConfig({ ...base, dFF: 2 * expertDFF }), B);
  const moe = runner("moe 8x top-2", llamaConfig({ ...base, dFF: expertDFF, moe: { experts: 8, topK: 2 } }), B);
  for (const r of [dense, moe]) { r.trainStep(); r.decode(); }  // warm-up
  const train: Record<string, number[]> = { dense: [], moe: [] }, dec: Record<string, number[]> = { dense: [], moe: [] };
  const trainRatio: number[] = [], decRatio: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const tr = medians(dense.trainStep, moe.trainStep, REPS).map((t) => (B * SEQ) / t);
    const de = medians(dense.decode, moe.decode, DECODE_REPS).map((t) => NEW_TOKENS / t);
    train.dense.push(tr[0]); train.moe.push(tr[1]);
    dec.dense.push(de[0]); dec.moe.push(de[1]);
    trainRatio.push(tr[1] / tr[0]);
    decRatio.push(de[1] / de[0]);
  }
  const params = (r: Runner) => r.model.numParameters();
  console.log(`\nLlama layout d=${d} L=${L} heads=${d / 64} V=${V}, train B=${B} T=${SEQ}, decode ${PROMPT} + ${NEW_TOKENS} tokens, ${T.backend().name}, ${rounds} rounds x ${REPS} train / ${DECODE_REPS} decode reps`);
  console.log(`dense dFF ${2 * expertDFF} (${params(dense)} parameters); MoE 8 experts of dFF ${expertDFF}, top-2, dropless (${params(moe)} parameters, same active FFN width)`);
  printTable(["", "train tok/s", "decode tok/s"], [
    ["dense", range(stats(train.dense), 0), range(stats(dec.dense), 1)],
    ["moe", range(stats(train.moe), 0), range(stats(dec.moe), 1)],
    ["moe / dense", range(stats(trainRatio), 3), range(stats(decRatio), 3)],
  ]);
  jsonLine({ bench: "moe", d, layers: L, batch: B, seq: SEQ, rounds, reps: REPS, backend: T.backend().name, train_dense: stats(train.dense), train_moe: stats(train.moe), train_ratio: stats(trainRatio), decode_dense: stats(dec.dense), decode_moe: stats(dec.moe), decode_ratio: stats(decRatio), goal: GOAL });
}
