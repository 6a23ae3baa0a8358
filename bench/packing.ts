// Packing and rmpad (src/data/documents.ts) on real TinyStories stories (data/tinystories-valid-head.txt,
// tok512.bin, BOS per story as llama2.c): useful tokens/s (real next-token targets per second of a
// training step: forward + backward + AdamW) of the padded, packed and unpadded batchings of the SAME
// documents at config A's width (GPT-2 layout, d 384, 6 layers, 6 heads, flash; vocab 512 and a
// context that holds the longest story). Each round draws a batch of --docs stories and runs it in
// every mode back to back (the order alternating between rounds), and the ratio to padded is taken per
// round, so that a change of machine load falls on every mode alike. Wall-clock time is the goal's
// measure; the process's CPU time (every thread) is shown beside it, as it moves less when other
// processes share the cores. AdamW runs with lr 0 (the same work, unchanged weights), so the three
// modes' mean losses on a batch must agree: their largest relative difference is reported.
// Goal (issue 17): packed or unpadded >= 1.8x padded.
// Options: --rounds=N (default 6), --docs=N (stories per batch, default config A's B = 8),
// --pack-len=N (default: the longest story's input positions).

import { readFileSync } from "node:fs";
import * as T from "../src/index.js";
import { DocumentBatcher, DocumentDataset, packBatch, padBatch, unpadBatch, BATCHINGS } from "../src/data/documents.js";
import type { Batch } from "../src/data/batches.js";
import { TransformerLM } from "../src/models/transformer.js";
import { lmObjective } from "../src/train/objectives.js";
import { AdamW, defaultParamGroups } from "../src/train/optim.js";
import { fmt, jsonLine, printTable, stats, type Stats } from "./common.js";
import { CONFIG_A, toModelConfig } from "./models.js";

const GOAL = 1.8;
const range = (s: Stats, d: number) => `${fmt(s.median, d)} (${fmt(s.min, d)}-${fmt(s.max, d)})`;

export async function main(argv: string[] = []): Promise<void> {
  const opt = (k: string) => argv.find((a) => a.startsWith(`--${k}=`))?.split("=")[1];
  const int = (k: string, dflt: number) => {
    const v = Number(opt(k) ?? dflt);
    if (!(Number.isInteger(v) && v >= 1)) throw new RangeError(`--${k}: expected a positive integer, got ${opt(k)}`);
    return v;
  };
  const rounds = int("rounds", 6), docsPerBatch = int("docs", CONFIG_A.B);
  const tok = await T.Llama2cTokenizer.load("data/tok512.bin", 512);
  const data = DocumentDataset.fromText(readFileSync("data/tinystories-valid-head.txt", "utf8"), tok, { name: "tinystories-valid-head" });
  const len = data.lengthStats();
  const packLen = int("pack-len", len.max - 1);
  console.log(`${data.length} TinyStories stories, tok512 + BOS: length min ${len.min} / median ${len.median} / max ${len.max} tokens; ${docsPerBatch} stories per batch, packing length ${packLen}`);

  const cfg = { ...toModelConfig(CONFIG_A), vocabSize: 512, maxSeqLen: Math.max(len.max, packLen) };
  const model = new TransformerLM(cfg, { generator: new T.RandomGenerator(1) });
  const opt_ = new AdamW(defaultParamGroups(model, 0.1), { lr: 0 });
  const layout = { padded: padBatch, packed: (d: Int32Array[]) => packBatch(d, packLen), unpadded: unpadBatch };
  const step = (b: Batch) => T.tidy(() => {
    const loss = lmObjective(model, b).loss;
    loss.backward();
    opt_.step();
    opt_.zeroGrad();
    return loss.item();
  });
  const docs = new DocumentBatcher(data, { batching: "unpadded", docsPerBatch, seed: 1 });
  // a warm-up step per mode (first-touch allocations, the kernels' first calls)
  const warm = docs.nextDocs();
  for (const m of BATCHINGS) step(layout[m](warm));

  const clocks = { wall: () => performance.now() / 1000, cpu: () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; } };
  type Clock = keyof typeof clocks;
  const rate = { wall: BATCHINGS.map((): number[] => []), cpu: BATCHINGS.map((): number[] => []) };
  const ratio = { wall: BATCHINGS.map((): number[] => []), cpu: BATCHINGS.map((): number[] => []) };
  const positions = BATCHINGS.map(() => 0);
  let useful = 0, lossDiff = 0;
  for (let r = 0; r < rounds; r++) {
    const batchDocs = docs.nextDocs();
    const secs = { wall: [] as number[], cpu: [] as number[] }, losses: number[] = [];
    const order = BATCHINGS.map((_, i) => i);
    for (const i of r % 2 ? order.reverse() : order) {
      const b = layout[BATCHINGS[i]](batchDocs);
      const w0 = clocks.wall(), c0 = clocks.cpu();
      losses[i] = step(b);
      secs.cpu[i] = clocks.cpu() - c0;
      secs.wall[i] = clocks.wall() - w0;
      positions[i] += b.x.numel;
      if (i === 0) useful += b.tokens!;
    }
    const tokens = unpadBatch(batchDocs).tokens!;
    for (const k of Object.keys(clocks) as Clock[]) secs[k].forEach((t, i) => { rate[k][i].push(tokens / t); ratio[k][i].push(secs[k][0] / t); });
    for (const l of losses) lossDiff = Math.max(lossDiff, Math.abs(l - losses[0]) / losses[0]);
  }
  const rows = BATCHINGS.map((m, i) => {
    const s = stats(rate.wall[i]), q = stats(ratio.wall[i]), cs = stats(rate.cpu[i]), cq = stats(ratio.cpu[i]);
    jsonLine({ bench: "packing", mode: m, backend: T.backend().name, rounds, docs_per_batch: docsPerBatch, pack_len: packLen, doc_tokens: len,
      useful_tokens_per_s: s, vs_padded: q, useful_tokens_per_cpu_s: cs, cpu_vs_padded: cq, useful_fraction: useful / positions[i], max_rel_loss_diff: lossDiff, goal: GOAL });
    return [m, range(s, 0), i ? range(q, 2) : "-", range(cs, 0), i ? range(cq, 2) : "-", `${fmt((100 * useful) / positions[i], 1)}%`];
  });
  console.log(`\nconfig A width (d ${cfg.dModel}, L ${cfg.nLayers}, H ${cfg.nHeads}, V ${cfg.vocabSize}, flash), training step, ${rounds} rounds (one batch of ${docsPerBatch} stories in every mode), ${T.backend().name} backend`);
  printTable(["batching", "useful tokens/s", `x padded (goal >= ${GOAL})`, "useful tokens / CPU s", "x padded (CPU)", "real / computed positions"], rows);
  console.log(`mean loss of the same batch, largest relative difference between modes: ${lossDiff.toExponential(2)}`);
}
