// Speculative decoding (`npm run bench -- speculative [stories260K|A|C] [ROUNDS] [NEW_TOKENS]`). MODEL "stories260K"
// (default): no trained draft model exists for it, so two drafts that need none: (a) self-speculative layer
// skip, the target's own first L layers with its embedding, final norm and head (Zhang et al. 2023, "Draft &
// Verify", skip layers instead of training a draft); (b) a bigram table counted on
// data/tinystories-valid-head.txt (the target's domain; an n-gram draft as in prompt-lookup / REST). MODEL
// "A": config A trained on Shakespeare characters with npm start's model (trained at context 256) as a draft
// (bench/targets.ts trains both on the first run), beside layer skip and a bigram of the training text;
// "C": the same with target C (d 512, 8 layers, 2.4x A's parameters). Per
// (draft, gamma, temperature): alpha, tokens per target call measured vs Leviathan et al. 2023 eq. 1, and the
// wall-clock speedup over generate() (alternating rounds, median (min-max)) vs the prediction from the
// measured costs.

import { readFileSync } from "node:fs";
import * as T from "../src/index.js";
import { fmt, jsonLine, printTable, stats } from "./common.js";
import { CONFIG_A, toModelConfig } from "./models.js";
import { benchModel, SHAKESPEARE_TARGETS, trainedTarget } from "./targets.js";

const PROMPTS = ["Once upon a time", "One day, a little girl named Lily", "Tom had a big red ball.", "The sun was shining and the birds"];

/** A state that only counts positions (the bigram reads the ids it is given). */
class CountState implements T.DecodingState {
  length = 0;
  canTruncate(n: number): boolean { return Number.isInteger(n) && n >= 0 && n <= this.length; }
  truncate(n: number): void { this.length = n; }
}

/** log P(next | previous) from bigram counts (add-0.1 smoothing). */
class BigramLM extends T.Module implements T.CausalLM {
  readonly config: { vocabSize: number; maxSeqLen: number };
  private readonly table: Float32Array;

  constructor(ids: number[], V: number, maxSeqLen: number) {
    super();
    this.config = { vocabSize: V, maxSeqLen };
    const counts = new Float64Array(V * V).fill(0.1);
    for (let i = 1; i < ids.length; i++) counts[ids[i - 1] * V + ids[i]]++;
    this.table = new Float32Array(V * V);
    for (let a = 0; a < V; a++) {
      const row = counts.subarray(a * V, (a + 1) * V), s = row.reduce((x, y) => x + y, 0);
      row.forEach((c, b) => { this.table[a * V + b] = Math.log(c / s); });
    }
  }

  newState(): CountState { return new CountState(); }

  forward(ids: T.Tensor, ctx?: T.SeqContext): T.CausalLMOutput {
    const x = ids.toTypedArray(), V = this.config.vocabSize, out = new Float32Array(x.length * V);
    x.forEach((id, t) => out.set(this.table.subarray(Number(id) * V, (Number(id) + 1) * V), t * V));
    if (ctx?.state instanceof CountState) ctx.state.length += x.length;
    return { logits: T.tensor(out, { shape: [1, x.length, V] }) };
  }
}

/** The target's first `layers` blocks with its embedding, final norm and (tied) head. */
function layerSkip(target: T.TransformerLM, layers: number): T.TransformerLM {
  const m = new T.TransformerLM({ ...target.config, nLayers: layers });
  const keep = Object.entries(target.stateDict()).filter(([k]) => !k.startsWith("blocks.") || Number(k.split(".")[1]) < layers);
  m.loadStateDict(Object.fromEntries(keep));
  return m.eval();
}

/** One forward pass of `n` new tokens after a 32-token cache, rolled back after (a decoding pass as generate() runs it). */
function pass(m: T.CausalLM, n: number): () => void {
  const st = m.newState(m.config.maxSeqLen);
  const run = (len: number) => T.decodeStep(st, () => { m.forward(T.tensor(Int32Array.from({ length: len }, (_, i) => 10 + (i % 50)), { shape: [1, len] }), T.SeqContext.decode(st)); });
  run(32);
  return () => { run(n); st.truncate(32); };
}

/** Time of a over time of b, measured alternately (7 samples of 30 calls each; median). */
function costRatio(a: () => void, b: () => void): number {
  const time = (f: () => void) => { const t0 = performance.now(); for (let i = 0; i < 30; i++) f(); return performance.now() - t0; };
  time(a); time(b);
  return stats(Array.from({ length: 7 }, () => time(a) / time(b))).median;
}

export async function main(argv: string[]): Promise<void> {
  const which = benchModel("speculative", argv[0] !== undefined && Number.isNaN(Number(argv[0])) ? argv.shift()! : "stories260K");
  const rounds = Number(argv[0] ?? 5), newTokens = Number(argv[1] ?? 128);
  let target: T.TransformerLM, drafts: [string, T.CausalLM][], prompts: number[][], eosId: number | undefined, context: number | undefined;
  if (which !== "stories260K") {
    const t = await trainedTarget(SHAKESPEARE_TARGETS[which]), d = await trainedTarget("draft256-shakespeare");
    const ids = t.tok.encode(t.text), split = Math.floor(ids.length * 0.9), L = t.model.config.nLayers, skip = Math.round(L / 3);
    target = t.model;
    drafts = [["npm start's recipe at context 256 (d 96, 3 layers)", d.model], [`layer skip ${skip}/${L}`, layerSkip(target, skip)], ["bigram", new BigramLM(ids.slice(0, split), target.config.vocabSize, target.config.maxSeqLen)]];
    // the draft has the target's 256 learned positions: the window never slides for a 32-token prompt + NEW_TOKENS <= 224
    context = d.model.config.maxSeqLen;
    prompts = [0, 1, 2, 3].map((i) => ids.slice(split + 5000 * i, split + 5000 * i + 32));
  } else {
    target = await T.loadLlama2c(new URL("../data/stories260K.bin", import.meta.url).pathname);
    const tok = await T.loadTokenizer(new URL("../data/tok512.bin", import.meta.url).pathname, 512);
    const text = readFileSync(new URL("../data/tinystories-valid-head.txt", import.meta.url), "utf8");
    const corpus = text.split("<|endoftext|>").flatMap((s) => tok.encode(s.trim(), { bos: true }));
    drafts = [["layer skip 1/5", layerSkip(target, 1)], ["layer skip 2/5", layerSkip(target, 2)], ["bigram", new BigramLM(corpus, 512, target.config.maxSeqLen)]];
    prompts = PROMPTS.map((p) => tok.encode(p, { bos: true }));
    eosId = tok.eosId;
  }
  const base = { maxNewTokens: newTokens, eosId, context };
  console.log(`${which}, ${newTokens} new tokens x ${prompts.length} prompts, ${rounds} rounds, backend ${T.backend().name}, ${T.getNativeThreads()} threads`);
  // the verify pass's cost relative to one token, here and on a config A-sized model (random weights: cost only)
  const configA = new T.TransformerLM(toModelConfig(CONFIG_A)).eval();
  const verifyRows = [[which, target], [`config A (d 384, 6 layers)`, configA]].map(([name, m]) =>
    [name as string, ...[3, 5, 7].map((n) => fmt(costRatio(pass(m as T.CausalLM, n), pass(m as T.CausalLM, 1)), 2))]);
  printTable(["cost of a pass of n tokens / 1 token (cached prefix of 32)", "n = 3", "n = 5", "n = 7"], verifyRows);
  const one = pass(target, 1);
  const rows: (string | number)[][] = [];
  let mismatches = 0;
  for (const [name, draft] of drafts) {
    const c = costRatio(pass(draft, 1), one);
    for (const temperature of [0, 0.8]) for (const gamma of [2, 4, 6]) {
      const v = costRatio(pass(target, gamma + 1), one);
      const speedups: number[] = [];
      let beta = 0, verified = 0, tokens = 0, calls = 0;
      for (let r = 0; r < rounds; r++) {
        let plain = 0, spec = 0;
        prompts.forEach((p, i) => {
          const o = { ...base, temperature, seed: r * 100 + i };
          let t0 = performance.now();
          const want = T.generate(target, p, o);
          plain += performance.now() - t0;
          t0 = performance.now();
          const got = T.speculativeGenerate(target, draft, p, { ...o, gamma });
          spec += performance.now() - t0;
          if (temperature === 0 && got.ids.join() !== want.ids.join()) mismatches++;
          const s = got.stats;
          beta += s.alpha * s.verified; verified += s.verified; tokens += s.tokens; calls += s.targetCalls;
        });
        speedups.push(plain / spec);
      }
      const alpha = beta / verified, perCall = tokens / calls, predicted = T.expectedTokensPerCall(alpha, gamma);
      // Leviathan Thm 3.8: E[tokens] / (gamma c + 1); with the verify pass's measured cost v instead of 1
      const paper = predicted / (gamma * c + 1), costed = predicted / (gamma * c + v), sp = stats(speedups);
      jsonLine({ bench: "speculative", draft: name, temperature, gamma, alpha, tokens_per_call: perCall, predicted_tokens_per_call: predicted, c, verify_cost: v, speedup: sp, predicted_speedup: paper, predicted_speedup_costed: costed });
      rows.push([`${name}, T ${temperature}, gamma ${gamma}`, fmt(alpha, 3), `${fmt(perCall, 2)} / ${fmt(predicted, 2)}`, `${fmt(c, 2)} / ${fmt(v, 2)}`,
        `${fmt(sp.median, 2)} (${fmt(sp.min, 2)}-${fmt(sp.max, 2)})`, `${fmt(paper, 2)} / ${fmt(costed, 2)}`]);
    }
  }
  console.log(`greedy runs whose output differs from generate's: ${mismatches}`);
  printTable(["draft, temperature, gamma", "alpha", "tokens/call (meas / eq. 1)", "c / verify cost", "speedup", "predicted (paper / costed)"], rows);
}
