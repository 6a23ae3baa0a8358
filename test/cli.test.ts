// The command line on bad input: one clear line on stderr, exit code 1, nothing half-written.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync, copyFileSync, mkdirSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const cli = (...args: string[]) => spawnSync(process.execPath, ["--import", "tsx", join(root, "src/cli/main.ts"), ...args], { cwd: root, encoding: "utf8" });

function failsWith(r: ReturnType<typeof cli>, re: RegExp): void {
  assert.notEqual(r.status, 0, `expected failure, got stdout ${r.stdout}`);
  assert.match(r.stderr, re);
  assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
}

describe("CLI bad input", () => {
  const dir = mkdtempSync(join(tmpdir(), "tsformer-cli-"));
  it("a non-numeric flag", () => failsWith(cli("generate", "--model", "data/stories260K.bin", "--max-new-tokens", "ten"), /--max-new-tokens expects an integer >= 1, got 'ten'/));
  it("a missing model file", () => failsWith(cli("generate", "--model", join(dir, "nope.bin")), /nope\.bin does not exist/));
  it("a truncated llama2.c .bin", () => {
    const f = join(dir, "trunc.bin");
    writeFileSync(f, readFileSync(join(root, "data/stories260K.bin")).subarray(0, 5000));
    failsWith(cli("generate", "--model", f, "--tokenizer", "data/tok512.bin"), /trunc\.bin: .*truncated/);
  });
  it("a truncated checkpoint", () => {
    const ck = join(dir, "ck");
    mkdirSync(ck);
    for (const f of ["config.json", "trainer_state.json"]) writeFileSync(join(ck, f), "{}");
    writeFileSync(join(ck, "model.safetensors"), Buffer.alloc(3));
    writeFileSync(join(ck, "optimizer.safetensors"), Buffer.alloc(3));
    failsWith(cli("generate", "--model", ck), /checkpoint .*ck/);
  });
  it("an unknown config key", () => {
    const f = join(dir, "cfg.json");
    writeFileSync(f, JSON.stringify({ vocabSize: 65, dModel: 16, nLayers: 1, nHeads: 2, dFF: 32, maxSeqLen: 8, position: "learned", norm: "layernorm", ffn: "gelu", bias: true, heads: 3 }));
    const out = join(dir, "run-cfg");
    failsWith(cli("train", "--config", f, "--steps", "1", "--out", out), /cfg\.json: .*heads/);
    assert.equal(existsSync(out), false, "no run directory for a rejected config");
  });
  it("a prompt longer than the context", () => {
    copyFileSync(join(root, "data/stories260K.bin"), join(dir, "m.bin"));
    copyFileSync(join(root, "data/tok512.bin"), join(dir, "tok512.bin"));
    failsWith(cli("generate", "--model", join(dir, "m.bin"), "--prompt", "la ".repeat(600)), /longer than the context of 512/);
  });
  it("a missing data file", () => failsWith(cli("train", "--data", join(dir, "none.txt"), "--steps", "1"), /--data .*none\.txt does not exist/));
});
