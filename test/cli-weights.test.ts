// --weights on `tsformer generate` and `tsformer eval`: int8 / bf16 inference weights of the real
// stories260K (data/), and one clear error for a bad value.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const cli = (...args: string[]) => spawnSync(process.execPath, ["--import", "tsx", join(root, "src/cli/main.ts"), ...args], { cwd: root, encoding: "utf8" });
const model = ["--model", "data/stories260K.bin", "--tokenizer", "data/tok512.bin"];

describe("tsformer --weights", () => {
  it("generate and eval run with int8 weights; eval's loss stays within 1% of fp32's", () => {
    const g = cli("generate", ...model, "--prompt", "Once upon a time", "--max-new-tokens", "12", "--temperature", "0", "--weights", "int8");
    assert.equal(g.status, 0, g.stderr);
    assert.ok(g.stdout.startsWith("Once upon a time") && g.stdout.length > 30, g.stdout);
    const text = join(mkdtempSync(join(tmpdir(), "tsf-weights-")), "stories.txt");
    writeFileSync(text, readFileSync(join(root, "data/tinystories-valid-head.txt"), "utf8").slice(0, 8000));
    const [fp32, int8] = ["fp32", "int8"].map((w) => {
      const r = cli("eval", ...model, "--text", text, "--weights", w);
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout) as { loss: number; tokens: number };
    });
    assert.equal(int8.tokens, fp32.tokens);
    assert.ok(Math.abs(int8.loss / fp32.loss - 1) < 0.01, `${int8.loss} vs ${fp32.loss}`);
  });

  it("a bad value: one error naming the flag and the formats", () => {
    const r = cli("generate", ...model, "--weights", "int4");
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^tsformer: --weights: unknown weight format "int4"; expected one of fp32, bf16, int8\n$/);
  });
});
