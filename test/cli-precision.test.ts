// `tsformer train --precision` and `finetune --precision`: a mixed-precision run saves its precision and
// the fp16 loss scale in the checkpoint and resumes with them; a bad value is one clear error.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cliIn, failsWith, ok, root } from "./helpers/cli.js";

const dir = mkdtempSync(join(tmpdir(), "tsformer-cli-precision-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const cli = cliIn(dir);
const data = join(dir, "corpus.txt");
writeFileSync(data, readFileSync(join(root, "data/tinyshakespeare.txt"), "utf8").slice(0, 4000));
const TINY = ["--data", data, "--d-model", "16", "--n-layers", "1", "--n-heads", "2", "--block", "16", "--batch", "4", "--eval-iters", "1", "--sample-tokens", "5"];
const json = (f: string) => JSON.parse(readFileSync(f, "utf8"));

describe("train --precision", () => {
  it("bf16 and fp16 runs train; fp16 saves its loss scale and a resume continues with it", () => {
    ok(cli("train", ...TINY, "--steps", "2", "--precision", "bf16", "--out", "bf16"));
    assert.equal(json(join(dir, "bf16/last/trainer_state.json")).trainConfig.precision, "bf16");
    ok(cli("train", ...TINY, "--steps", "2", "--precision", "fp16", "--out", "fp16"));
    const st = json(join(dir, "fp16/last/trainer_state.json"));
    assert.deepEqual(st.gradScaler, { scale: 65536, growthTracker: 2 });
    ok(cli("train", "--resume", join(dir, "fp16"), "--steps", "3", "--sample-tokens", "5"));
    assert.deepEqual(json(join(dir, "fp16/last/trainer_state.json")).gradScaler, { scale: 65536, growthTracker: 3 });
  });

  it("an unknown precision is one clear error on train and finetune", () => {
    failsWith(cli("train", ...TINY, "--precision", "fp8"), /--precision: unknown precision "fp8"; expected one of fp32, bf16, fp16/);
    failsWith(cli("finetune", "--model", "x", "--precision", "int8"), /--precision: unknown precision "int8"; expected one of fp32, bf16, fp16/);
  });
});
