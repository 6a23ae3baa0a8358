// Helpers of bench/peft.ts: the split loss, the in-memory best checkpoint, extractLora from the full
// fine-tune, and the samples file.

import { writeFileSync } from "node:fs";
import * as T from "../src/index.js";
import { fmt, jsonLine, printTable } from "./common.js";

export type LM = T.CausalLM & T.Module;

/**
 * Mean NLL over ids in scoreTokens' windows (non-overlapping, `win` inputs each, every token after the
 * first predicted once), the full windows run 16 at a time: the same figure, several times faster.
 */
export function windowLoss(model: LM, ids: number[], win: number): number {
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

/** A copy of the trainable parameters' values (the in-memory "best" checkpoint of early stopping). */
export function snapshot(params: T.Tensor[]): Float32Array[] {
  return params.map((p) => Float32Array.from(p.data as Float32Array));
}

export function restore(params: T.Tensor[], values: Float32Array[]): void {
  T.noGrad(() => params.forEach((p, i) => (p.data as Float32Array).set(values[i]!)));
}

/**
 * extractLora at each rank from the full fine-tune on `targets`, and the exact Linear deltas (base +
 * the tuned Linear weights, everything else the base's): the limit the extracted adapters approach.
 */
export async function extraction(
  load: () => Promise<T.TransformerLM>, tuned: T.TransformerLM, targets: string[], ranks: number[],
  heldOut: (m: LM) => number, fullLoss: number, baseLoss: number,
): Promise<void> {
  const rows: (string | number)[][] = [];
  for (const r of ranks) {
    const b = await load();
    const t0 = performance.now();
    const ex = T.extractLora(b, tuned, { r, targetModules: targets });
    const seconds = (performance.now() - t0) / 1000;
    const loss = heldOut(b), params = T.trainableParameters(b).trainable;
    rows.push([`r = ${r}`, params.toLocaleString("en-US"), fmt(ex.relError, 4), fmt(loss, 4), fmt(loss - fullLoss, 4), fmt(seconds, 2)]);
    jsonLine({ bench: "peft", kind: "extract", r, params, rel_error: ex.relError, held_out: loss, vs_full: loss - fullLoss, seconds });
  }
  const b = await load();
  const linear = new RegExp(`\\.(${targets.join("|")})\\.weight$`);
  b.loadStateDict(Object.fromEntries(Object.entries(tuned.stateDict()).filter(([n]) => linear.test(n))), { strict: false });
  const exact = heldOut(b);
  rows.push(["Linear deltas, exact", "-", fmt(0, 4), fmt(exact, 4), fmt(exact - fullLoss, 4), "-"]);
  rows.push(["full fine-tune", "-", "-", fmt(fullLoss, 4), fmt(0, 4), "-"]);
  rows.push(["base", "-", "-", fmt(baseLoss, 4), fmt(baseLoss - fullLoss, 4), "-"]);
  jsonLine({ bench: "peft", kind: "extract", r: "exact-linear", held_out: exact, vs_full: exact - fullLoss });
  console.log(`\nextractLora from the full fine-tune on ${targets.join(", ")} (held-out loss; vs full = minus the full fine-tune's):`);
  printTable(["adapter", "params", "rel. error", "held-out", "vs full", "seconds"], rows);
}

export interface SampleOptions { file: string; command: string; prompts: string[]; tokens: number; temperature: number }

/** Greedy and sampled continuations of each prompt from each model, as markdown. */
export function writeSamples(tok: T.Llama2cTokenizer, models: [string, LM][], o: SampleOptions): void {
  const out = [
    "# stories260K before and after fine-tuning on Shakespeare",
    "",
    `Written by \`${o.command}\` (bench/peft.ts has the protocol).`,
    `${o.tokens} new tokens after BOS + the prompt; greedy, and temperature ${o.temperature} (seed 1, no top-k).`,
  ];
  for (const prompt of o.prompts) {
    for (const [name, m] of models) {
      for (const temperature of [0, o.temperature]) {
        const promptIds = tok.encode(prompt, { bos: true });
        const ids = [...promptIds, ...T.generate(m, promptIds, { maxNewTokens: o.tokens, temperature, seed: 1 }).ids];
        out.push("", `## ${name}: "${prompt}", ${temperature ? `temperature ${temperature}` : "greedy"}`, "", "```text", showText(tok, ids).replace(/```/g, "'''"), "```");
      }
    }
  }
  writeFileSync(o.file, out.join("\n") + "\n");
  console.log(`wrote ${o.file}`);
}

/** The text of ids; a BOS after the first token (a new story, in TinyStories) is shown as its piece, "<s>" on its own line. */
function showText(tok: T.Llama2cTokenizer, ids: number[]): string {
  const parts: number[][] = [[]];
  ids.forEach((id, i) => (id === tok.bosId && i > 0 ? parts.push([id]) : parts[parts.length - 1]!.push(id)));
  return parts.map((p) => tok.decode(p)).join("\n<s>\n");
}
