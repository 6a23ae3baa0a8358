// `tsformer train --batching padded|packed|unpadded --pack-len N` on real TinyStories stories
// (data/tinystories-valid-head.txt, character tokenizer): a run and its resume keep the batching, and
// bad input (a packing length below the longest story, an unknown mode, a file with no documents, a
// story longer than the context) is one clear error each.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cliIn, failsWith, ok, root } from "./helpers/cli.js";

const dir = mkdtempSync(join(tmpdir(), "tsformer-cli-packing-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const cli = cliIn(dir);

// The first 10 stories (each ends with a "<|endoftext|>" line); the longest has fewer than 1200 characters.
const stories = readFileSync(join(root, "data/tinystories-valid-head.txt"), "utf8").split("<|endoftext|>\n").slice(0, 10);
const longest = Math.max(...stories.map((s) => s.trim().length));
const data = join(dir, "stories.txt");
writeFileSync(data, stories.map((s) => `${s}<|endoftext|>\n`).join(""));
const TINY = ["--data", data, "--d-model", "16", "--n-layers", "1", "--n-heads", "2", "--block", "1200", "--batch", "3", "--eval-iters", "1", "--sample-tokens", "5"];

describe("train --batching", () => {
  it("trains on packed stories and resumes with the same batching", () => {
    assert.ok(longest < 1200, `longest story ${longest}`);
    const run = join(dir, "packed");
    const out = ok(cli("train", ...TINY, "--batching", "packed", "--steps", "2", "--ckpt-interval", "1", "--out", run));
    assert.match(out, /data: .*: 9 train \/ 1 val documents \(\d+ \/ [\d.]+ \/ \d+ tokens min \/ median \/ max\), packed batches of length 1200/);
    const args = JSON.parse(readFileSync(join(run, "checkpoint-2", "training_args.json"), "utf8"));
    assert.equal(args.batching, "packed");
    const r = ok(cli("train", "--resume", join(run, "checkpoint-1"), "--steps", "2"));
    assert.match(r, /packed batches/);
  });

  it("refuses a packing length below the longest story, an unknown mode, a file without documents and a story beyond the context", () => {
    failsWith(cli("train", ...TINY, "--batching", "packed", "--pack-len", "100", "--steps", "1", "--out", join(dir, "short")),
      /--pack-len 100 is below the longest document of --data .*stories\.txt: \d+ tokens, \d+ input positions/);
    failsWith(cli("train", ...TINY, "--batching", "rows", "--out", join(dir, "x")), /--batching expects padded, packed, unpadded, got 'rows'/);
    const empty = join(dir, "empty.txt");
    writeFileSync(empty, "<|endoftext|>\n  \n<|endoftext|>\n");
    failsWith(cli("train", ...TINY, "--data", empty, "--batching", "unpadded", "--out", join(dir, "e")), /empty\.txt: no documents with at least 2 tokens/);
    failsWith(cli("train", ...TINY, "--batching", "padded", "--block", "64", "--out", join(dir, "b")), /the longest document has \d+ tokens \(\d+ input positions\), above the context --block 64/);
    failsWith(cli("train", ...TINY, "--pack-len", "64", "--out", join(dir, "p")), /--pack-len needs --batching packed/);
  });
});
