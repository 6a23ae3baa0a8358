// The command line on bad input: one clear line on stderr, exit code 1, nothing half-written.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, writeFileSync, copyFileSync, mkdirSync, existsSync } from "node:fs";
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
  it("a missing model file", () => failsWith(cli("generate", "--model", join(dir, "nope.bin")), /model .*nope\.bin is missing \(no such file or directory\)/));
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
    const r = cli("generate", "--model", join(dir, "m.bin"), "--prompt", "la ".repeat(600));
    failsWith(r, /longer than the context of 512/);
    assert.equal(r.stdout, "", "the refused prompt is not echoed first");
  });
  it("a missing data file", () => failsWith(cli("train", "--data", join(dir, "none.txt"), "--steps", "1"), /--data .*none\.txt does not exist/));
});

describe("CLI everyday flags", () => {
  it("--version prints the package's version", () => {
    const r = cli("--version");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version);
  });

  it("--threads N sets the native thread pool (before or after the command); a bad value is refused", () => {
    const threads = (...a: string[]) => JSON.parse(cli(...a).stdout).threads;
    assert.equal(threads("--threads", "1", "info", "--json"), 1);
    assert.equal(threads("info", "--json", "--threads", "2"), 2);
    failsWith(cli("info", "--threads", "0"), /--threads expects an integer >= 1, got '0'/);
  });

  it("info lists every TSFORMER_* variable the code reads, with its value; so does the README", () => {
    // Independent of info.ts's list: grep the sources (TS and C++) for the names.
    const names = new Set<string>();
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(d, e.name));
        else for (const m of readFileSync(join(d, e.name), "utf8").matchAll(/getenv\("(TSFORMER_\w+)"\)|process\.env\.(TSFORMER_\w+)|env\[["'](TSFORMER_\w+)/g)) names.add(m[1] ?? m[2] ?? m[3]);
      }
    };
    walk(join(root, "src"));
    walk(join(root, "native"));
    assert.ok(names.has("TSFORMER_THREADS") && names.has("TSFORMER_BACKEND"), [...names].join(" "));
    const r = spawnSync(process.execPath, ["--import", "tsx", join(root, "src/cli/main.ts"), "info", "--json"], { cwd: root, encoding: "utf8", env: { ...process.env, TSFORMER_GEMM_SMALL: "1" } });
    const env = JSON.parse(r.stdout).env as Record<string, string | null>;
    const readme = readFileSync(join(root, "README.md"), "utf8");
    for (const n of names) {
      assert.ok(n in env, `info lists ${n}`);
      assert.ok(readme.includes(`\`${n}\``), `README documents ${n}`);
    }
    assert.equal(env.TSFORMER_GEMM_SMALL, "1");
  });

  it("generate() given a string (plain JS, no types) is a clear error, not char codes", async () => {
    const { generate, TransformerLM, gpt2Config } = await import("../src/index.js");
    const model = new TransformerLM(gpt2Config({ vocabSize: 8, dModel: 8, nLayers: 1, nHeads: 2, maxSeqLen: 8 }));
    assert.throws(() => generate(model, "hello" as unknown as number[], { maxNewTokens: 1 }), /prompt must be an array of token ids, got a string; encode it first/);
  });

  it("npm run bench lists only benchmarks (files with main), not shared modules", () => {
    const r = spawnSync(process.execPath, ["--import", "tsx", join(root, "bench/run.ts")], { cwd: root, encoding: "utf8" });
    const listed = r.stderr.match(/available: (.*)/)?.[1].split(", ") ?? [];
    assert.ok(listed.includes("gemm") && listed.includes("train"), r.stderr);
    for (const f of listed) assert.match(readFileSync(join(root, "bench", `${f}.ts`), "utf8"), /^export (async )?function main\(/m);
    assert.ok(!listed.includes("models") && !listed.includes("common"));
  });
});
