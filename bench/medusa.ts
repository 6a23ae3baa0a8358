// Medusa decoding (`npm run bench -- medusa [MODEL] [STEPS] [NEW_TOKENS] [HEADS] [LR]`). MODEL "stories260K"
// (default): Medusa-1 heads trained for STEPS AdamW steps on data/tinystories-valid-head.txt (the
// base's domain). MODEL "A" (or "C", the larger target): config A trained on Shakespeare characters
// (bench/targets.ts, trained on the first run), its heads trained on the training 90% of the text,
// prompts from the validation 10%. Then greedy decoding of NEW_TOKENS per prompt with generate() and with medusaGenerate() (the default sparse
// tree, and the top-1 chain of K nodes) alternately: identical output checked, tokens per tree round (the
// kept candidates + 1), base calls, and the wall-clock speedup (median over prompts and repeats).

import { readFileSync } from "node:fs";
import * as T from "../src/index.js";
import { MedusaLM, medusaObjective } from "../src/peft/medusa.js";
import { medusaGenerate } from "../src/generate/medusa.js";
import { fmt, jsonLine, printTable, stats } from "./common.js";
import { benchModel, SHAKESPEARE_TARGETS, trainedTarget } from "./targets.js";

const PROMPTS = ["Once upon a time", "One day, a little girl named Lily", "Tom had a big red ball.", "The sun was shining and the birds"];

/** Medusa-1: AdamW on the heads alone; returns each head's cross-entropy before and after. */
function trainHeads(lm: MedusaLM, sampler: T.Sampler, steps: number, lr: number): { before: number[]; after: number[] } {
  const opt = new T.AdamW(T.defaultParamGroups(lm, 0), { lr });
  const perHead = (aux: Record<string, T.Tensor | number>) => Object.values(aux).map((v) => (typeof v === "number" ? v : v.item()));
  lm.train();
  let before: number[] = [], after: number[] = [];
  for (let s = 0; s < steps; s++) {
    opt.zeroGrad();
    const { loss, aux } = medusaObjective(lm, sampler.next());
    if (s === 0) before = perHead(aux!);
    if (s >= steps - 10) after = perHead(aux!).map((v, k) => (after[k] ?? 0) + v / 10);
    loss.backward();
    opt.step();
  }
  lm.eval();
  return { before, after };
}

export async function main(argv: string[]): Promise<void> {
  const which = benchModel("medusa", argv[0] ?? "stories260K"), steps = Number(argv[1] ?? 300), newTokens = Number(argv[2] ?? 128), K = Number(argv[3] ?? 4), lr = Number(argv[4] ?? 1e-3);
  let base: T.TransformerLM, prompts: number[][], data: Int32Array;
  if (which !== "stories260K") {
    const t = await trainedTarget(SHAKESPEARE_TARGETS[which]), ids = t.tok.encode(t.text), split = Math.floor(ids.length * 0.9);
    base = t.model;
    data = Int32Array.from(ids.slice(0, split));
    prompts = [0, 1, 2, 3].map((i) => ids.slice(split + 5000 * i, split + 5000 * i + 64));
  } else {
    base = await T.loadLlama2c(new URL("../data/stories260K.bin", import.meta.url).pathname);
    const tok = await T.loadTokenizer(new URL("../data/tok512.bin", import.meta.url).pathname, 512);
    const text = readFileSync(new URL("../data/tinystories-valid-head.txt", import.meta.url), "utf8");
    data = Int32Array.from(text.split("<|endoftext|>").flatMap((s) => tok.encode(s.trim(), { bos: true })));
    prompts = PROMPTS.map((p) => tok.encode(p, { bos: true }));
  }
  base.requiresGrad_(false);
  const lm = new MedusaLM(base, { heads: K });
  const t0 = performance.now();
  const loss = trainHeads(lm, new T.BatchSampler(new T.TokenDataset(data), 8, 64, 3), steps, lr);
  console.log(`${which}: ${K} heads, ${steps} steps (lr ${lr}) in ${fmt((performance.now() - t0) / 1000)} s; head CE ${loss.before.map((v) => fmt(v, 2)).join(" ")} -> ${loss.after.map((v) => fmt(v, 2)).join(" ")}`);
  const heads = lm.medusa;
  const o = { maxNewTokens: newTokens, temperature: 0 };
  const trees: [string, number[][] | undefined][] = [["default", undefined], ["chain", Array.from({ length: K }, (_, d) => new Array<number>(d + 1).fill(0))]];
  const speedups = new Map<string, number[]>(), perRound = new Map<string, number[]>(), rows: (string | number)[][] = [];
  for (const p of prompts) {
    const plain = T.generate(base, p, o).ids;
    const runs = trees.map(([, tree]) => medusaGenerate(base, p, { ...o, heads, tree }));
    const tp: number[] = [], tm = trees.map((): number[] => []);
    for (let rep = 0; rep < 3; rep++) {
      let t = performance.now(); T.generate(base, p, o); tp.push(performance.now() - t);
      trees.forEach(([, tree], i) => { t = performance.now(); medusaGenerate(base, p, { ...o, heads, tree }); tm[i].push(performance.now() - t); });
    }
    trees.forEach(([name], i) => {
      const med = runs[i], same = plain.length === med.ids.length && plain.every((id, j) => id === med.ids[j]);
      const sp = stats(tp).median / stats(tm[i]).median;
      speedups.set(name, [...(speedups.get(name) ?? []), sp]);
      perRound.set(name, [...(perRound.get(name) ?? []), med.stats.tokensPerRound]);
      rows.push([p.length, name, String(same), fmt(med.stats.tokensPerRound, 2), med.stats.calls, fmt(newTokens / (stats(tp).median / 1000)), fmt(newTokens / (stats(tm[i]).median / 1000)), fmt(sp, 2)]);
      jsonLine({ bench: "medusa", model: which, heads: K, steps, tree: name, tree_nodes: med.stats.treeSize, prompt_tokens: p.length, identical: same, tokens_per_round: med.stats.tokensPerRound, calls: med.stats.calls, speedup: sp });
    });
  }
  printTable(["prompt", "tree", "identical", "tok/round", "calls", "plain tok/s", "medusa tok/s", "speedup"], rows);
  for (const [name] of trees) {
    const sp = stats(speedups.get(name)!);
    console.log(`${name} tree: median speedup ${fmt(sp.median, 2)} (min ${fmt(sp.min, 2)}, max ${fmt(sp.max, 2)}); tokens per round ${fmt(stats(perRound.get(name)!).median, 2)}`);
  }
  console.log(`load average ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}`);
}
