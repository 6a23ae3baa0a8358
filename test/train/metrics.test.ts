// metrics.jsonl, the SVG loss plot and the progress output on a non-TTY stream.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import { appendMetrics, readMetrics, writeLossPlot } from "../../src/train/metrics.js";
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
    await fs.appendFile(path.join(dir, "metrics.jsonl"), '{"type": "tra');
    assert.equal((await readMetrics(dir)).length, 2);
    assert.deepEqual(await readMetrics(path.join(dir, "none")), []);
  });

  it("writes loss.svg with axes, ticks, labels, two coloured curves, a legend and a title, atomically", async () => {
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
    assert.equal(lines.length, 2);
    assert.notEqual(lines[0][1], lines[1][1]);
    assert.equal(lines[0][2].split(" ").length, 10);
    assert.equal(lines[1][2].split(" ").length, 9); // the missing val point is skipped
    assert.match(svg, />train<\/text>/);
    assert.match(svg, />val<\/text>/);
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
