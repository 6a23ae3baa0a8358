// `tsformer diffuse train | sample` as a user runs it: a tiny Glow on 32 MNIST images, progress on
// stderr, --resume continuing the run exactly (the same weights as one run of the same length), a PNG
// grid from `sample`, and one clear error for each bad flag or run directory.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, describe, it } from "node:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cliIn, failsWith, ok, root } from "./helpers/cli.js";
import { labelsArg, runDiffuseSample, runDiffuseTrain } from "../src/cli/diffuse.js";

const dir = mkdtempSync(join(tmpdir(), "tsformer-cli-diffuse-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const cli = cliIn(dir);

const TINY = ["--method", "glow", "--config", '{"levels":1,"depth":1,"hidden":8}', "--batch", "4", "--limit", "32", "--seed", "2"];
const metricSteps = (run: string) => readFileSync(join(run, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l).step);

describe("diffuse train", () => {
  it("trains with progress lines, resumes to the same weights as one run, samples a PNG grid", () => {
    const run = join(dir, "glow"), whole = join(dir, "whole");
    const r = cli("diffuse", "train", ...TINY, "--steps", "2", "--out", run);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /diffuse glow step 2\/2 \| loss \d+\.\d{4} \| [\d.]+ img\/s \| ETA \d+s/);
    assert.match(r.stdout, /glow: 562 parameters; steps 0 -> 2 in [\d.]+ s; last loss \d+\.\d{4}; checkpoint /);
    const j = JSON.parse(ok(cli("diffuse", "train", "--out", run, "--resume", "--steps", "4", "--json")));
    assert.deepEqual([j.method, j.startStep, j.step], ["glow", 2, 4]);
    ok(cli("diffuse", "train", ...TINY, "--steps", "4", "--out", whole));
    assert.deepEqual(readFileSync(join(run, "checkpoint", "model.safetensors")), readFileSync(join(whole, "checkpoint", "model.safetensors")), "2 + 2 resumed steps == 4 steps");
    assert.deepEqual(metricSteps(run), [1, 2, 3, 4]);

    assert.match(ok(cli("diffuse", "sample", "--run", run, "--n", "6", "--temperature", "0.7")), /glow: 6 samples -> .*samples\.png/);
    const png = readFileSync(join(run, "samples.png"));
    assert.equal(png.toString("latin1", 1, 4), "PNG");
    // 6 cells in one row of 6 (fewer images than the default 8 columns): 6 * (2 * 28 + 2) + 2 wide, 58 + 2 high
    assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [6 * 58 + 2, 60]);
  });

  it("Ctrl-C ends the step, saves a checkpoint and exits 0", async () => {
    const run = join(dir, "sigint");
    const child = spawn(process.execPath, ["--import", import.meta.resolve("tsx"), join(root, "src/cli/main.ts"), "diffuse", "train", ...TINY, "--steps", "1000000", "--out", run], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    child.stdout.on("data", (b) => { stdout += b; });
    const exited = new Promise<number | null>((res) => child.on("exit", (code) => res(code)));
    while (!existsSync(join(run, "metrics.jsonl"))) await new Promise((r) => setTimeout(r, 50));
    child.kill("SIGINT");
    assert.equal(await exited, 0, stdout);
    assert.match(stdout, /steps 0 -> \d+ \(stopped; --resume continues\)/);
    const step = JSON.parse(readFileSync(join(run, "checkpoint", "trainer_state.json"), "utf8")).step;
    assert.ok(step >= 1 && step < 1000000);
    assert.deepEqual(metricSteps(run), Array.from({ length: step }, (_, i) => i + 1), "a metrics line per saved step");
  });

  it("bad flags: one clear error from the parser, no stack trace", () => {
    failsWith(cli("diffuse", "train", "--method", "vae", "--out", join(dir, "x")), /--method.*unknown generative method "vae"; expected one of: .*realnvp, glow/);
    failsWith(cli("diffuse", "train", ...TINY, "--steps", "0"), /--steps expects an integer >= 1, got '0'/);
    failsWith(cli("diffuse", "sample", "--run", join(dir, "glow"), "--labels", "1,x"), /--labels expects comma-separated class labels .* got '1,x'/);
    failsWith(cli("diffuse", "sample", "--run", join(dir, "glow"), "--spacing", "cubic"), /--spacing expects uniform or quad, got 'cubic'/);
  });

  // the rest in-process (what the commands run after parsing): one clear error each
  it("bad configs and runs: one clear error each", async () => {
    const run = join(dir, "glow"), x = join(dir, "x");
    const train = { method: "glow", limit: 32, batch: 4, out: x };
    await assert.rejects(runDiffuseTrain({ out: x }), /--method is required for a new run \(one of: .*glow/);
    await assert.rejects(runDiffuseTrain({ ...train, config: "{levels: 3" }), /--config is not valid JSON/);
    await assert.rejects(runDiffuseTrain({ ...train, config: join(dir, "nofile.json") }), /--config .*nofile\.json is neither a JSON object nor an existing file/);
    await assert.rejects(runDiffuseTrain({ ...train, config: "[1]" }), /--config must hold a JSON object of the method's settings, got \[1\]/);
    writeFileSync(join(dir, "deep.json"), '{"levels": 3}');
    await assert.rejects(runDiffuseTrain({ ...train, config: join(dir, "deep.json") }), /glow: config\.levels is 3; expected at most 2 for 28x28 images/);
    assert.ok(!existsSync(join(x, "checkpoint")), "nothing saved");
    await assert.rejects(runDiffuseTrain({ method: "realnvp", out: run, resume: true }), /--method realnvp conflicts with the run in .* which trains "glow"/);
    await assert.rejects(runDiffuseTrain({ out: run, resume: true, batch: 8 }), /--batch 8 conflicts with the run's 4/);
    await assert.rejects(runDiffuseTrain({ ...train, out: run }), /already holds a run .*pass --resume/);
    await assert.rejects(runDiffuseTrain({ resume: true }), /--resume needs --out/);

    const sample = { run, n: 4, seed: 0 };
    await assert.rejects(runDiffuseSample({ ...sample, run: join(dir, "none") }), /holds no run: expected .*checkpoint/);
    await assert.rejects(runDiffuseSample({ ...sample, sampler: "ddim" }), /glow: sampler "ddim" is not available/);
    await assert.rejects(runDiffuseSample({ ...sample, labels: Int32Array.of(1, 2) }), /glow: labels are not available; the flow is unconditional/);
    assert.throws(() => labelsArg("1,-2"), /--labels expects comma-separated class labels/);
  });
});
