// metrics.jsonl, the SVG loss plot and the progress output on a non-TTY stream.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import { appendMetrics, emaSmooth, lossPlotSvg, readMetrics, repairMetrics, writeLossPlot } from "../../src/train/metrics.js";
import { linkCheckpoint, pruneCheckpoints, resolveCheckpointDir } from "../../src/train/run-dir.js";
import { createProgress } from "../../src/train/progress.js";

const roots: string[] = [];
const tmpDir = async (name: string) => { const r = await fs.mkdtemp(path.join(os.tmpdir(), name)); roots.push(r); return r; };
after(() => Promise.all(roots.map((r) => fs.rm(r, { recursive: true, force: true }))));

describe("metrics", () => {
  it("appends JSON lines and reads them back (a torn last line is dropped)", async () => {
    const dir = await tmpDir("tsformer-metrics-");
    await appendMetrics(dir, { type: "train", step: 1, loss: 2.5 });
    await appendMetrics(dir, { type: "eval", step: 1, trainLoss: 2.4, valLoss: 2.6 });
    assert.deepEqual(await readMetrics(dir), [{ type: "train", step: 1, loss: 2.5 }, { type: "eval", step: 1, trainLoss: 2.4, valLoss: 2.6 }]);
    assert.deepEqual(await readMetrics(path.join(dir, "none")), []);
  });

  it("a record nested deeply (a fuzz mutant that overflowed the stack of its reader) is skipped like a torn line", async () => {
    const dir = await tmpDir("tsformer-deep-");
    await appendMetrics(dir, { type: "train", step: 1, loss: 2.5 });
    await fs.appendFile(path.join(dir, "metrics.jsonl"), `{"type":"eval","step":1,"valLoss":${"[".repeat(100000)}${"]".repeat(100000)}}\n`);
    const warnings: string[] = [];
    const onWarn = (w: Error) => warnings.push(w.message);
    process.on("warning", onWarn);
    try {
      assert.deepEqual((await readMetrics(dir)).map((r) => r.type), ["train"]);
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off("warning", onWarn);
    }
    assert.match(warnings.join("\n"), /skipping 1 line that is not a flat JSON object \(line 2/);
  });

  it("a torn last line (crash mid-append): the next record starts on a new line, reads skip the torn bytes, repair cuts them", async () => {
    const dir = await tmpDir("tsformer-torn-");
    const file = path.join(dir, "metrics.jsonl");
    await appendMetrics(dir, { type: "train", step: 1, loss: 2.5 });
    await fs.appendFile(file, '{"type": "tra');
    await appendMetrics(dir, { type: "train", step: 2, loss: 2.4 });
    assert.deepEqual((await fs.readFile(file, "utf8")).split("\n").slice(1), ['{"type": "tra', '{"type":"train","step":2,"loss":2.4}', ""]);
    const warnings: string[] = [];
    const onWarn = (w: Error) => warnings.push(w.message);
    process.on("warning", onWarn);
    try {
      assert.deepEqual((await readMetrics(dir)).map((r) => r.step), [1, 2]);
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off("warning", onWarn);
    }
    assert.match(warnings.join("\n"), /skipping 1 line that is not a flat JSON object \(line 2/);
    await fs.appendFile(file, '{"type": "ev');
    assert.equal(await repairMetrics(dir), '{"type": "ev'.length);
    assert.match(await fs.readFile(file, "utf8"), /"step":2,"loss":2.4\}\n$/);
    assert.equal(await repairMetrics(dir), 0);
  });

  it("the loss plot ends for any step values (2**52, where step + 1 === step + 1 + 1 no longer holds)", () => {
    for (const steps of [[2 ** 52], [2 ** 52, 2 ** 52 + 2], [2 ** 53, 2 ** 53], [1, Number.MAX_SAFE_INTEGER], [0, 1e300]]) {
      const svg = lossPlotSvg(steps.map((step, i) => ({ step, train: 2 - i * 0.1, val: 2.1 })));
      assert.match(svg, /<\/svg>\n$/);
      assert.doesNotMatch(svg, /NaN|Infinity/, `steps ${steps}`);
    }
  });

  it("EMA smoothing is bias-corrected: a constant series stays constant, a step moves by 1 - weight per point", () => {
    assert.deepEqual(emaSmooth([[1, 3], [2, 3], [3, 3]], 0.9).map((p) => Number(p[1].toFixed(12))), [3, 3, 3]);
    const [, b] = emaSmooth([[1, 0], [2, 1]], 0.5); // m = 0.5 * 0 + 0.5 * 1, corrected by 1 - 0.25
    assert.equal(b[1], 0.5 / 0.75);
  });

  it("pruning keeps the newest checkpoints and never the one `best` points at; links are relative symlinks", async () => {
    const run = await tmpDir("tsformer-prune-");
    for (const s of [2, 4, 6, 8, 10]) await fs.mkdir(path.join(run, `checkpoint-${s}`));
    await linkCheckpoint(run, "best", "checkpoint-4");
    // The limit counts every checkpoint, the kept best included (as transformers' save_total_limit).
    assert.deepEqual(await pruneCheckpoints(run, 2, [10, 4]), ["checkpoint-2", "checkpoint-6", "checkpoint-8"]);
    assert.deepEqual((await fs.readdir(run)).sort(), ["best", "checkpoint-10", "checkpoint-4"]);
    await fs.mkdir(path.join(run, "checkpoint-8"));
    assert.equal(await fs.readlink(path.join(run, "best")), "checkpoint-4");
    await linkCheckpoint(run, "best", "checkpoint-8"); // replaced in place
    assert.equal(await fs.readlink(path.join(run, "best")), "checkpoint-8");
    assert.deepEqual(await pruneCheckpoints(run, 0, []), [], "0 keeps all");
    // --resume RUN: the `last` link, else (a crash between saving and linking) the highest step.
    assert.equal(await resolveCheckpointDir(run), path.join(run, "checkpoint-10"));
    await linkCheckpoint(run, "last", "checkpoint-8");
    assert.equal(await resolveCheckpointDir(run), path.join(run, "last"));
  });

  it("writes loss.svg with axes, ticks, labels, the per-step training loss (raw and EMA), validation points, a legend and a title, atomically", async () => {
    const dir = await tmpDir("tsformer-plot-");
    const pts = Array.from({ length: 10 }, (_, i) => ({ step: 10 * (i + 1), train: 3 / (i + 1), val: i === 4 ? undefined : 3.2 / (i + 1) }));
    await writeLossPlot(dir, pts, "run <a&b>");
    assert.deepEqual(await fs.readdir(dir), ["loss.svg"]);
    const svg = await fs.readFile(path.join(dir, "loss.svg"), "utf8");
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(svg, /<\/svg>\n$/);
    assert.match(svg, />run &lt;a&amp;b&gt;<\/text>/);
    assert.match(svg, />step<\/text>/);
    assert.match(svg, />loss<\/text>/);
    const lines = [...svg.matchAll(/<polyline [^>]*stroke="(#[0-9a-f]+)"[^>]*points="([^"]*)"/g)];
    assert.equal(lines.length, 2); // raw and smoothed training loss; validation is drawn as points
    assert.notEqual(lines[0][1], lines[1][1]);
    assert.equal(lines[0][2].split(" ").length, 10);
    assert.equal(lines[1][2].split(" ").length, 10);
    assert.notEqual(lines[0][2], lines[1][2], "the EMA differs from the raw curve");
    const valColor = "#d62728";
    assert.equal([...svg.matchAll(new RegExp(`<circle [^>]*r="3.5" fill="${valColor}"`, "g"))].length, 9 + 1); // 9 points (one missing) + legend
    assert.match(svg, />train \(per step\)<\/text>/);
    assert.match(svg, />train \(EMA 0.9\)<\/text>/);
    assert.match(svg, />validation<\/text>/);
    for (const tick of ["20", "60", "100", "1", "3"]) assert.match(svg, new RegExp(`>${tick}</text>`), tick);
    await writeLossPlot(dir, [{ step: 1, train: 2 }]); // one point, no val: still a valid plot
    assert.match(await fs.readFile(path.join(dir, "loss.svg"), "utf8"), /<circle /);
  });

  it("progress on a non-TTY stream prints a plain line every N steps and at the end, no escape codes", () => {
    const stream = new PassThrough();
    let out = "";
    stream.on("data", (d) => { out += d; });
    const p = createProgress({ total: 25, start: 0, every: 10, stream });
    for (let s = 1; s <= 25; s++) p.update(s, { loss: 1 / s, tokensPerSec: 1000 });
    p.stop();
    const lines = out.trim().split("\n");
    assert.equal(lines.length, 3);
    assert.match(lines[0], /^train step 10\/25 \| loss 0\.1000 \| 1000 tok\/s \| ETA \d+s$/);
    assert.match(lines[2], /^train step 25\/25 /);
    assert.doesNotMatch(out, /\x1b/);
  });
});
