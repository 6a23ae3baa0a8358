// `tsformer finetune` / `merge` / `--adapter` end to end on the real stories260K: a LoRA fine-tune's
// checkpoint is an adapter (PEFT files + trainable weights) that generate / eval take with --adapter,
// resume continues exactly, merge writes a model that decodes as base + adapter; bad input.

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { cliIn, failsWith, ok, root } from "./helpers/cli.js";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { decodeSafetensors } from "../src/io/safetensors.js";

const cli = cliIn();
const dir = mkdtempSync(join(tmpdir(), "tsformer-finetune-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const corpus = join(dir, "corpus.txt");
writeFileSync(corpus, readFileSync(join(root, "data/tinyshakespeare.txt"), "utf8").slice(0, 40_000));
const common = ["--model", "data/stories260K.bin", "--data", corpus, "--batch", "4", "--block", "64", "--eval-interval", "3", "--eval-iters", "2", "--sample-tokens", "5"];
const greedy = (...extra: string[]) => ok(cli("generate", "--prompt", "Once upon a time", "--temperature", "0", "--max-new-tokens", "30", ...extra));

describe("tsformer finetune", () => {
  const run = join(dir, "lora");
  test("LoRA: trainable-parameter line, adapter checkpoints, --adapter, exact resume, merge", () => {
    const out = ok(cli("finetune", ...common, "--method", "lora", "--r", "4", "--target", "wq,wv", "--lr", "3e-2", "--steps", "6", "--ckpt-interval", "3", "--out", run));
    // 5 layers x (wq: A 4x64 + B 64x4, wv: A 4x64 + B 32x4) over stories260K's 260,032 weights
    assert.match(out, /trainable params: 4,480 \|\| all params: 264,512 \|\| trainable%: 1\.6937/);
    const ck = join(run, "last");
    for (const f of ["adapter_config.json", "adapter_model.safetensors", "model.safetensors", "optimizer.safetensors"]) assert.ok(existsSync(join(ck, f)), f);
    const weights = decodeSafetensors(readFileSync(join(ck, "model.safetensors"))).tensors;
    assert.ok(Object.keys(weights).every((k) => k.includes(".lora_")), "the checkpoint holds the adapter only");
    const cfg = JSON.parse(readFileSync(join(ck, "adapter_config.json"), "utf8")) as Record<string, unknown>;
    assert.deepEqual([cfg.peft_type, cfg.r, cfg.target_modules], ["LORA", 4, ["wq", "wv"]]);
    const base = greedy("--model", "data/stories260K.bin");
    const tuned = greedy("--model", "data/stories260K.bin", "--adapter", ck);
    assert.notEqual(tuned, base);
    failsWith(cli("generate", "--model", ck, "--prompt", "x"), /is a fine-tuning checkpoint that holds an adapter.*--adapter/);
    // resuming from the step-3 checkpoint replays steps 4..6 exactly
    ok(cli("finetune", "--resume", join(run, "checkpoint-3")));
    const a = decodeSafetensors(readFileSync(join(run, "last", "model.safetensors"))).tensors;
    for (const [k, t] of Object.entries(weights)) assert.deepEqual([...(a[k]!.data as Float32Array)], [...(t.data as Float32Array)], k);
    // merge: a llama2.c base gives a llama2.c .bin that decodes as base + adapter
    const merged = join(dir, "merged");
    ok(cli("merge", "--model", "data/stories260K.bin", "--adapter", ck, "--out", merged));
    assert.equal(greedy("--model", join(merged, "model.bin")), tuned);
  });
  test("Houlsby adapters train and load with --adapter; merging them is refused", () => {
    const h = join(dir, "houlsby");
    ok(cli("finetune", ...common, "--method", "adapter", "--bottleneck", "8", "--steps", "3", "--out", h));
    const cfg = JSON.parse(readFileSync(join(h, "last", "adapter_config.json"), "utf8")) as Record<string, unknown>;
    assert.deepEqual([cfg.peft_type, cfg.bottleneck], ["HOULSBY_ADAPTER", 8]);
    ok(cli("eval", "--model", "data/stories260K.bin", "--adapter", join(h, "last"), "--text", corpus));
    failsWith(cli("merge", "--model", "data/stories260K.bin", "--adapter", join(h, "last"), "--out", join(dir, "m2")), /adapter adapters, which add layers: they cannot be merged/);
  });
  test("prefix and prompt tuning: PEFT prompt-learning files, generate and eval with --adapter", () => {
    const loss = (...extra: string[]) => (JSON.parse(ok(cli("eval", "--model", "data/stories260K.bin", "--text", corpus, ...extra))) as { loss: number }).loss;
    const base = loss();
    for (const [method, type, width] of [["prefix", "PREFIX_TUNING", 5 * 2 * 32], ["prompt", "PROMPT_TUNING", 64]] as const) {
      const d = join(dir, method);
      ok(cli("finetune", ...common, "--method", method, "--virtual-tokens", "4", "--lr", "3e-2", "--steps", "3", "--out", d));
      const cfg = JSON.parse(readFileSync(join(d, "last", "adapter_config.json"), "utf8")) as Record<string, unknown>;
      assert.deepEqual([cfg.peft_type, cfg.num_virtual_tokens, cfg.token_dim], [type, 4, 64]);
      const t = decodeSafetensors(readFileSync(join(d, "last", "adapter_model.safetensors"))).tensors;
      assert.deepEqual(t.prompt_embeddings!.shape, [4, width]);
      assert.ok(greedy("--model", "data/stories260K.bin", "--adapter", join(d, "last")).startsWith("Once upon a time"));
      assert.notEqual(loss("--adapter", join(d, "last")), base, "the virtual tokens change the model's predictions");
    }
  });
  test("bad input: an unknown method, r 0, a target matching nothing", () => {
    failsWith(cli("finetune", ...common, "--method", "ia3", "--out", join(dir, "b1")), /--method "ia3": expected one of lora, dora, adapter, prefix, prompt, full/);
    failsWith(cli("finetune", ...common, "--r", "0", "--out", join(dir, "b2")), /--r expects an integer >= 1/);
    failsWith(cli("finetune", ...common, "--target", "query", "--out", join(dir, "b3")), /targetModules \["query"\] match no Linear layer/);
  });
});
