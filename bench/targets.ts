// Trained decode targets for the decoding benches (issue 19: the speedup goals ask for a target of at
// least config A's size that is trained, not random): config A (gpt2-small-char: d 384, 6 layers, 6
// heads, context 256), a larger target "C" (A's recipe at d 512, 8 layers, 8 heads: 2.4x A's parameters)
// and npm start's model (gpt2-tiny-char) trained at the targets' context 256 as a draft, all trained on
// Shakespeare characters by `tsformer train` the first time a bench asks for them, then reused from
// runs/bench-targets/. Not a bench itself (no main).

import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as T from "../src/index.js";

const ROOT = new URL("..", import.meta.url).pathname;

/** name -> `tsformer train` flags. A first run takes about 25 min (A), 60 min (C) and 5 min (draft) on one idle core. */
const RECIPES = {
  "A-shakespeare": ["--preset", "gpt2-small-char", "--dropout", "0", "--steps", "1500", "--batch", "8", "--lr", "1e-3", "--warmup", "100"],
  "C-shakespeare": ["--preset", "gpt2-small-char", "--d-model", "512", "--n-layers", "8", "--n-heads", "8", "--dropout", "0", "--steps", "1500", "--batch", "8", "--lr", "1e-3", "--warmup", "100"],
  // 256 learned positions (the targets' context, not npm start's 64), so that a decoding window never has to slide
  "draft256-shakespeare": ["--preset", "gpt2-tiny-char", "--block", "256", "--steps", "3200", "--batch", "8"],
} as const;
export type TargetName = keyof typeof RECIPES;

/** The models the decoding benches take: stories260K (data/) or a Shakespeare target by its config name. */
export const BENCH_MODELS = ["stories260K", "A", "C"] as const;
export const SHAKESPEARE_TARGETS = { A: "A-shakespeare", C: "C-shakespeare" } as const;

/** MODEL, checked against BENCH_MODELS (one error naming the bench). */
export function benchModel(bench: string, which: string): (typeof BENCH_MODELS)[number] {
  if (!(BENCH_MODELS as readonly string[]).includes(which)) throw new RangeError(`${bench}: MODEL must be ${BENCH_MODELS.join(", ")}, got ${which}`);
  return which as (typeof BENCH_MODELS)[number];
}

export interface Target { model: T.TransformerLM; tok: T.Tokenizer; text: string; dir: string }

/** The trained model `name` (training it first when runs/bench-targets/<name>/last is missing). */
export async function trainedTarget(name: TargetName): Promise<Target> {
  const dir = join(ROOT, "runs", "bench-targets", name), last = join(dir, "last");
  if (!existsSync(join(last, "model.safetensors"))) {
    console.log(`training the ${name} target once (runs/bench-targets/${name}; later runs reuse it)`);
    execFileSync(process.execPath, ["--import", "tsx", join(ROOT, "src", "cli", "main.ts"), "train", ...RECIPES[name],
      "--eval-interval", "200", "--eval-iters", "20", "--ckpt-interval", "0", "--sample-tokens", "0", "--overwrite", "--out", dir], { stdio: "inherit", cwd: ROOT });
  }
  const l = await T.loadForInference(last);
  if (!(l.model instanceof T.TransformerLM) || !l.tokenizer) throw new Error(`${last}: expected a TransformerLM with its tokenizer`);
  return { model: l.model.eval(), tok: l.tokenizer, text: readFileSync(join(ROOT, "data", "tinyshakespeare.txt"), "utf8"), dir };
}
