// `tsformer train` as a user runs it: runs never lose work (no silent overwrite, checkpoint-<step> with
// a limit, `last` / `best` links), --resume takes everything from the checkpoint, --init-from starts a
// new run from trained weights, partial configs and presets, text inputs checked.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { cliIn, failsWith, ok, root } from "./helpers/cli.js";
import { join } from "node:path";

const dir = mkdtempSync(join(tmpdir(), "tsformer-cli-train-"));
after(() => rmSync(dir, { recursive: true, force: true }));
// Run from `dir` (relative --out paths as a user types them).
const cli = cliIn(dir);


// A small corpus and a tiny model: each run takes a fraction of a second.
const data = join(dir, "corpus.txt");
writeFileSync(data, readFileSync(join(root, "data/tinyshakespeare.txt"), "utf8").slice(0, 4000));
const TINY = ["--data", data, "--d-model", "16", "--n-layers", "1", "--n-heads", "2", "--block", "16", "--batch", "4", "--eval-iters", "1", "--sample-tokens", "5"];
const ckpts = (run: string) => readdirSync(run).filter((n) => n.startsWith("checkpoint-")).sort();
const state = (ck: string) => JSON.parse(readFileSync(join(ck, "trainer_state.json"), "utf8"));

describe("train: run directories", () => {
  it("keeps checkpoint-<step> directories up to --save-total-limit, with last and best links; prints losses and a summary", () => {
    const run = join(dir, "limit");
    const out = ok(cli("train", ...TINY, "--steps", "6", "--eval-interval", "2", "--ckpt-interval", "2", "--save-total-limit", "2", "--out", run));
    assert.deepEqual(ckpts(run), ["checkpoint-4", "checkpoint-6"]);
    assert.equal(readlinkSync(join(run, "last")), "checkpoint-6");
    const best = readlinkSync(join(run, "best"));
    assert.ok(ckpts(run).includes(best), `best -> ${best} was kept`);
    const evals = readFileSync(join(run, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((r) => r.type === "eval");
    const lowest = evals.reduce((m, r) => (r.valLoss < m.valLoss ? r : m));
    assert.equal(best, `checkpoint-${lowest.step}`, "best is the checkpoint with the lowest validation loss in metrics.jsonl");
    assert.equal(state(join(run, "last")).step, 6);
    for (const label of ["steps", "time", "tokens/s", "validation loss", "best checkpoint", "metrics", "loss plot"]) assert.match(out, new RegExp(`^${label} `, "m"));
    const r = cli("train", ...TINY, "--steps", "2", "--out", join(dir, "evals"), "--eval-interval", "1");
    assert.match(r.stderr, /step 1: train loss \d\.\d{4} \| validation loss \d\.\d{4}/);
    assert.match(r.stderr, /step 2: train loss \d\.\d{4} \| validation loss \d\.\d{4}/);
  });

  it("refuses --out holding another run (nothing changed); --overwrite replaces it", () => {
    const run = join(dir, "taken");
    ok(cli("train", ...TINY, "--steps", "4", "--ckpt-interval", "2", "--out", run));
    const before = readFileSync(join(run, "last", "model.safetensors"));
    const metricsBefore = readFileSync(join(run, "metrics.jsonl"), "utf8");
    writeFileSync(join(run, "notes.txt"), "mine");
    failsWith(cli("train", ...TINY, "--steps", "1", "--out", run), /holds another run .*--overwrite/);
    assert.deepEqual(readFileSync(join(run, "last", "model.safetensors")), before);
    assert.equal(readFileSync(join(run, "metrics.jsonl"), "utf8"), metricsBefore);
    ok(cli("train", ...TINY, "--steps", "1", "--out", run, "--overwrite"));
    assert.deepEqual(ckpts(run), ["checkpoint-1"]);
    const steps = readFileSync(join(run, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((r) => r.type === "train").map((r) => r.step);
    assert.deepEqual(steps, [1], "metrics.jsonl holds only the new run");
    assert.equal(readFileSync(join(run, "notes.txt"), "utf8"), "mine", "files that are not the run's are left alone");
  });
});

describe("train --resume and --init-from", () => {
  const run = join(dir, "resumed");
  it("--resume DIR takes model, tokenizer, data and run directory from the checkpoint; a model flag that differs is refused", () => {
    ok(cli("train", ...TINY, "--steps", "3", "--out", run));
    failsWith(cli("train", "--resume", run, "--d-model", "32", "--steps", "5"), /--d-model 32 conflicts with .*dModel 16/);
    assert.equal(state(join(run, "last")).step, 3, "the refused resume wrote nothing");
    failsWith(cli("train", "--resume", run, "--out", join(dir, "elsewhere")), /--out .*elsewhere conflicts with --resume/);
    // No --data, --out or size flags: all from the checkpoint (the data path is absolute in it).
    const r = cliIn(root)("train", "--resume", join(run, "last"), "--steps", "5");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /--steps 5 overrides the checkpoint's 3/);
    assert.match(r.stdout, /model: 1 layers, d=16, 2 heads, context 16/);
    assert.ok(r.stdout.includes(`data: ${data}`), r.stdout);
    assert.equal(state(join(run, "last")).step, 5);
    assert.deepEqual(ckpts(run), ["checkpoint-3", "checkpoint-5"]);
  });

  it("a torn last line of metrics.jsonl is repaired on resume, with a warning", () => {
    appendFileSync(join(run, "metrics.jsonl"), '{"type":"train","st');
    const r = cli("train", "--resume", run, "--steps", "6");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /removed a torn last line/);
    const lines = readFileSync(join(run, "metrics.jsonl"), "utf8").trim().split("\n");
    for (const l of lines) JSON.parse(l); // every line is a record again
    assert.ok(lines.some((l) => JSON.parse(l).type === "resume" && JSON.parse(l).step === 5));
  });

  it("--init-from starts a new run (step 1, fresh optimizer) from the model's weights", () => {
    const fresh = join(dir, "fine");
    // lr 1e-30: AdamW's step is below every weight's ulp, so the new run's weights are byte for byte the source's.
    ok(cli("train", "--init-from", join(run, "last"), "--data", data, "--out", fresh, "--steps", "1", "--lr", "1e-30", "--min-lr", "1e-30", "--batch", "2", "--eval-iters", "1", "--sample-tokens", "1"));
    assert.equal(state(join(fresh, "last")).step, 1);
    assert.deepEqual(readFileSync(join(fresh, "last", "model.safetensors")), readFileSync(join(run, "last", "model.safetensors")));
    failsWith(cli("train", "--init-from", join(run, "last"), "--n-layers", "2", "--out", join(dir, "x")), /--n-layers 2 conflicts with/);
  });

  it("data with characters the checkpoint's tokenizer lacks is refused, naming them", () => {
    const other = join(dir, "other.txt");
    writeFileSync(other, "plain words but also @ and ~ ".repeat(20));
    failsWith(cli("train", "--init-from", join(run, "last"), "--data", other, "--out", join(dir, "y")), /2 characters not in .*tokenizer \("@" "~"\).*different character set/);
    assert.equal(existsSync(join(dir, "y")), false);
  });
});

describe("train: configs and text inputs", () => {
  it("a partial --config takes the rest from its preset and vocabSize from the tokenizer", () => {
    const cfg = join(dir, "partial.json");
    writeFileSync(cfg, JSON.stringify({ preset: "gpt2-tiny-char", dModel: 16, nLayers: 1, nHeads: 2, maxSeqLen: 16 }));
    const out = ok(cli("train", "--config", cfg, "--data", data, "--steps", "1", "--batch", "2", "--eval-iters", "1", "--sample-tokens", "1", "--out", join(dir, "partial")));
    assert.match(out, /dFF, position, norm, ffn, bias from preset gpt2-tiny-char; vocabSize \d+ from the tokenizer/);
    const saved = JSON.parse(readFileSync(join(dir, "partial", "last", "config.json"), "utf8"));
    const chars = new Set(readFileSync(data, "utf8")).size;
    assert.equal(saved.vocabSize, chars);
    assert.equal(saved.dFF, 64); // the GPT-2 layout's 4 x dModel
    failsWith(cli("train", "--preset", "nope", "--data", data), /unknown preset "nope"; expected one of gpt2-tiny-char/);
  });

  it("the README's examples/my-model.json trains", () => {
    ok(cli("train", "--config", join(root, "examples/my-model.json"), "--data", data, "--steps", "1", "--batch", "1", "--block", "32", "--eval-iters", "1", "--sample-tokens", "1", "--out", join(dir, "example")));
    assert.equal(JSON.parse(readFileSync(join(dir, "example", "last", "config.json"), "utf8")).nKvHeads, 2);
  });

  it("--lr-schedule wsd holds the peak, then cools down linearly over --cooldown steps; saved in training_args.json", () => {
    const run = join(dir, "wsd");
    ok(cli("train", ...TINY, "--steps", "8", "--warmup", "2", "--lr", "0.01", "--min-lr", "0.001", "--lr-schedule", "wsd", "--cooldown", "4", "--ckpt-interval", "4", "--eval-interval", "4", "--out", run));
    const lrs = readFileSync(join(run, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((r) => r.type === "train").map((r) => r.lr);
    // warmup lr (s + 1) / (w + 1) for steps 0, 1; the peak for 2, 3, 4; at step s >= 4, minLr + (1 - (s - 4) / 4) (lr - minLr)
    const want = [0.01 / 3, 0.02 / 3, 0.01, 0.01, 0.01, 0.001 + 0.75 * 0.009, 0.001 + 0.5 * 0.009, 0.001 + 0.25 * 0.009];
    assert.equal(lrs.length, 8);
    lrs.forEach((lr: number, i: number) => assert.ok(Math.abs(lr - want[i]) < 1e-12, `step ${i}: lr ${lr}, expected ${want[i]}`));
    assert.equal(JSON.parse(readFileSync(join(run, "last", "training_args.json"), "utf8")).lrSchedule, "wsd");
    failsWith(cli("train", ...TINY, "--steps", "4", "--lr-schedule", "linear", "--out", join(dir, "bad")), /--lr-schedule expects cosine, wsd, constant, got 'linear'/);
    failsWith(cli("train", ...TINY, "--steps", "4", "--cooldown", "2", "--out", join(dir, "bad")), /--cooldown applies to --lr-schedule wsd, not cosine/);
    failsWith(cli("train", ...TINY, "--steps", "4", "--warmup", "2", "--lr-schedule", "wsd", "--cooldown", "3", "--out", join(dir, "bad")), /--cooldown 3 exceeds the 2 steps after warmup/);
    assert.equal(existsSync(join(dir, "bad")), false);
  });

  it("model flags too large for the limits are refused before anything is allocated", () => {
    failsWith(cli("train", "--d-model", "1e9", "--steps", "1", "--out", "huge"), /the model \(preset gpt2-tiny-char with --d-model .*\): dModel: Too big: expected number to be <=65536/);
    failsWith(cli("train", "--d-model", "4096", "--n-layers", "4000", "--steps", "1", "--out", "huge"), /2\.2 TiB as float32 .* the limit is TSFORMER_MAX_MODEL_BYTES = 4 GiB/);
  });

  it("binary --data and --text are refused", () => {
    const bin = join(root, "data/stories260K.bin");
    failsWith(cli("train", "--data", bin, "--out", join(dir, "bin")), /--data .*stories260K\.bin:? (is not|has a NUL byte).*expected (a )?UTF-8 text/);
    assert.equal(existsSync(join(dir, "bin")), false);
    failsWith(cli("eval", "--model", bin, "--text", bin), /--text .*stories260K\.bin:? (is not|has a NUL byte).*expected (a )?UTF-8 text/);
  });
});
