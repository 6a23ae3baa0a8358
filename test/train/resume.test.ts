// THE exact-resume test: a run killed with SIGKILL after a checkpoint and resumed from it produces the
// same losses, step for step and bit for bit, as an uninterrupted run; plus the trainer's outputs.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { train } from "../../src/train/trainer.js";
import { readMetrics } from "../../src/train/metrics.js";
import { TokenDataset } from "../../src/data/batches.js";
import { gpt2Config } from "../../src/models/config.js";
import { TransformerLM } from "../../src/models/transformer.js";
import { CHECKPOINT_EVERY, resumeOptions } from "./resume-setup.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function runUninterrupted(runDir: string) {
  const opts = resumeOptions(runDir);
  const losses: number[] = [];
  const summary = await train({ ...opts, onStep: ({ loss }) => { losses.push(loss); } });
  return { losses, summary, model: opts.model };
}

describe("trainer", () => {
  it("resumes EXACTLY after SIGKILL: the losses after resume equal an uninterrupted run's bitwise", { timeout: 30_000 }, async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), "tsformer-resume-"));
    const ref = await runUninterrupted(path.join(root, "ref"));
    assert.equal(ref.losses.length, 12);

    const runDir = path.join(root, "killed");
    const child = spawn(process.execPath, ["--import", "tsx", path.join(here, "resume-child.ts"), runDir], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    child.stdout.on("data", (d) => { stdout += d; });
    child.stderr.on("data", (d) => { stderr += d; });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)));
    const stateFile = path.join(runDir, `checkpoint-${CHECKPOINT_EVERY}`, "trainer_state.json");
    const deadline = Date.now() + 20_000;
    while (!(await fs.stat(stateFile).then(() => true, () => false))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill("SIGKILL");
        assert.fail(`the child wrote no checkpoint (exit ${child.exitCode}): ${stderr}`);
      }
      await sleep(10);
    }
    child.kill("SIGKILL");
    assert.equal(await exited, "SIGKILL");
    const ckptStep = JSON.parse(await fs.readFile(stateFile, "utf8")).step;
    assert.equal(ckptStep, CHECKPOINT_EVERY);
    // What the child printed before dying agrees with the reference too.
    const childLosses = stdout.trim().split("\n").map((l) => JSON.parse(l).loss as number);
    assert.ok(childLosses.length >= CHECKPOINT_EVERY);
    assert.deepEqual(childLosses, ref.losses.slice(0, childLosses.length));

    const resumed = resumeOptions(runDir);
    const losses: number[] = [];
    const summary = await train({ ...resumed, resume: runDir, onStep: ({ loss }) => { losses.push(loss); } });
    assert.deepEqual(losses, ref.losses.slice(ckptStep)); // Object.is on every number: bitwise
    for (const [name, t] of Object.entries(ref.model.stateDict())) assert.deepEqual(resumed.model.stateDict()[name].data, t.data, name);
    assert.equal(summary.steps, 12 - ckptStep);
    assert.equal(summary.finalStep, 12);
    assert.equal(summary.trainLoss, ref.summary.trainLoss);
    assert.equal(summary.valLoss, ref.summary.valLoss);

    const records = await readMetrics(runDir);
    assert.ok(records.some((r) => r.type === "resume" && r.step === ckptStep));
    assert.ok(records.filter((r) => r.type === "eval").map((r) => r.step).includes(12));
    assert.match(await fs.readFile(path.join(runDir, "loss.svg"), "utf8"), /<polyline/);
    const finalState = JSON.parse(await fs.readFile(path.join(runDir, "last", "trainer_state.json"), "utf8"));
    assert.equal(finalState.step, 12);
    assert.ok(finalState.dropoutRng.counter > 0); // dropout drew masks and its state is saved
    assert.deepEqual(JSON.parse(await fs.readFile(path.join(runDir, "last", "tokenizer.json"), "utf8")), { kind: "synthetic", vocabSize: 17 });
    await fs.rm(root, { recursive: true, force: true });
  });

  it("learns a periodic sequence; summary and metrics are filled in; bad options are rejected", async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), "tsformer-train-"));
    const opts = resumeOptions(path.join(root, "a"));
    const { train: tr, val } = new TokenDataset(Int32Array.from({ length: 400 }, (_, i) => (i * 5) % 17)).split(0.2);
    const losses: number[] = [];
    const s = await train({ ...opts, train: tr, val, maxSteps: 30, ckptInterval: 0, evalInterval: 10, schedule: { kind: "constant", lr: 3e-2 }, onStep: ({ loss }) => { losses.push(loss); } });
    assert.ok(losses[29] < losses[0] - 1, `loss ${losses[0]} -> ${losses[29]}`);
    assert.equal(s.steps, 30);
    assert.ok(s.tokensPerSec > 0 && s.seconds > 0 && Number.isFinite(s.trainLoss) && Number.isFinite(s.valLoss));
    const evals = (await readMetrics(opts.runDir)).filter((r) => r.type === "eval").map((r) => r.step);
    assert.deepEqual(evals, [10, 20, 30]);
    await assert.rejects(train({ ...resumeOptions(root), batchSize: 0 }), /batchSize must be a positive integer/);
    await assert.rejects(train({ ...resumeOptions(root), resume: path.join(root, "nope") }), /nope: cannot open the checkpoint directory/);
    const other = new TransformerLM(gpt2Config({ vocabSize: 17, dModel: 8, nLayers: 1, nHeads: 2, maxSeqLen: 8 }));
    await assert.rejects(train({ ...resumeOptions(root), model: other, resume: path.join(opts.runDir, "last") }),
      /resume from checkpoint .*last: loadStateDict: tok_emb\.weight has shape \[17, 16\], the model expects \[17, 8\]/);
    await fs.rm(root, { recursive: true, force: true });
  });
});
