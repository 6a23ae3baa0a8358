// The fuzz harness (scripts/fuzz, `npm run fuzz`) on a small N, as CI runs it: every file kind is
// mutated, and no run may crash, hang or go over the memory cap. Also checks that the harness's
// classifier tells those outcomes apart (a harness that called everything "clean" would pass vacuously).

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fuzz, OUTCOMES, runTarget } from "../scripts/fuzz/main.ts";
import { KINDS, type Seeds, type Target } from "../scripts/fuzz/kinds.ts";
import { classify, runNode, type RunLimits } from "../scripts/fuzz/runner.ts";
import { Rng, mutate, mutateJsonValue, mutateSafetensors } from "../scripts/fuzz/mutators.ts";
import { chatTemplateMutator, mutateShardIndex } from "../scripts/fuzz/mutators-hf.ts";

const limits: RunLimits = { timeoutMs: 20_000, rssBytes: 2 ** 31, vmemBytes: 2 ** 32 };
const base = { code: 1, signal: null, peakRss: 50e6, ms: 10, stdout: "" };

describe("fuzz harness", () => {
  it("classifies exits, stack traces, engine messages, hangs and memory", async () => {
    const c = (stderr: string, over: Partial<typeof base> = {}, driver = false) => classify({ ...base, stderr, ...over }, limits, false, false, driver).outcome;
    assert.equal(c("tsformer: model x.bin: header field dim is 0; expected a positive int32\n"), "clean-error");
    assert.equal(c("", { code: 0 }), "success");
    assert.equal(c("TypeError: x is undefined\n    at f (file.js:1:2)\n"), "crash");
    assert.equal(c("", { code: null, signal: "SIGSEGV" } as never), "crash");
    assert.equal(c("tsformer: Cannot read properties of undefined (reading 'shape')\n"), "bad-error");
    assert.equal(c("RangeError: offset out of bounds\n", {}, true), "bad-error");
    assert.equal(c("SafetensorsError: x: header is not JSON\n", {}, true), "clean-error");
    assert.equal(c("tsformer: Array buffer allocation failed\n"), "oom");
    assert.equal(classify({ ...base, stderr: "" }, limits, true, false, false).outcome, "hang");
    assert.equal(classify({ ...base, stderr: "", peakRss: 2 ** 31 + 1 }, limits, false, false, false).outcome, "oom");
    // A real child: the timeout and the RSS watch both kill it.
    const tmp = mkdtempSync(join(tmpdir(), "tsformer-fuzz-cls-"));
    const hang = await runNode(["-e", "setInterval(() => {}, 1000)"], tmp, { ...limits, timeoutMs: 500 }, false);
    assert.equal(hang.outcome, "hang");
    const big = await runNode(["-e", "const a = []; for (;;) a.push(new Uint8Array(64 << 20).fill(1))"], tmp, { ...limits, rssBytes: 300 * 2 ** 20, vmemBytes: 2 ** 33 }, false);
    assert.equal(big.outcome, "oom", big.why);
  });

  it("a command with an output directory may change only that, and what it wrote must pass its verify run", async () => {
    const ws = mkdtempSync(join(tmpdir(), "tsformer-fuzz-out-"));
    const seeds = {} as Seeds;
    const node = (name: string, code: string, extra: Partial<Target> = {}): Target => ({ name, viaDriver: false, readOnly: false, args: () => ["-e", code], ...extra });
    const writes = (file: string) => `require("fs").mkdirSync("out", { recursive: true }); require("fs").writeFileSync(${JSON.stringify(file)}, "x")`;
    const verifyOk = node("verify", "");
    assert.equal((await runTarget(node("w", writes("out/a"), { output: "out", verify: verifyOk }), seeds, ws, limits)).outcome, "success");
    const outside = await runTarget(node("w", `${writes("out/b")}; require("fs").writeFileSync("stray.txt", "x")`, { output: "out" }), seeds, ws, limits);
    assert.deepEqual([outside.outcome, outside.why], ["unsafe", "w changed stray.txt, outside its output out/"]);
    rmSync(join(ws, "out"), { recursive: true });
    const leftover = await runTarget(node("w", `${writes("out/c")}; console.error("tsformer: failed"); process.exit(1)`, { output: "out" }), seeds, ws, limits);
    assert.deepEqual([leftover.outcome, leftover.why], ["unsafe", "a failed w left out/ behind"]);
    rmSync(join(ws, "out"), { recursive: true });
    const unloadable = await runTarget(node("w", writes("out/d"), { output: "out", verify: node("load", `console.error("tsformer: out/d: bad"); process.exit(1)`) }), seeds, ws, limits);
    assert.deepEqual([unloadable.outcome, unloadable.why], ["unsafe", "w succeeded, but load of what it wrote gives clean-error: tsformer: out/d: bad"]);
    const piped = await runTarget(node("cat", `process.stdin.pipe(process.stdout)`, { readOnly: true, stdin: "hi\n" }), seeds, ws, limits);
    assert.equal(piped.r.stdout, "hi\n");
    rmSync(ws, { recursive: true, force: true });
  });

  it("mutators are reproducible from the seed and change the input", () => {
    const cfg = { vocabSize: 65, dModel: 16, nested: { a: [1, 2] } };
    assert.deepEqual(mutateJsonValue(cfg, new Rng(3)), mutateJsonValue(cfg, new Rng(3)));
    const header = new TextEncoder().encode(JSON.stringify({ w: { dtype: "F32", shape: [2], data_offsets: [0, 8] } }));
    const file = new Uint8Array(8 + header.length + 8);
    new DataView(file.buffer).setBigUint64(0, BigInt(header.length), true);
    file.set(header, 8);
    for (let s = 0; s < 20; s++) {
      const m = mutate(mutateSafetensors, file, new Rng(s));
      assert.ok("link" in m || m.bytes.length !== file.length || m.bytes.some((b, i) => b !== file[i]), `seed ${s} (${m.desc}) left the file as it was`);
    }
    // the HF mutators: a chat template's source edits and weight_map edits are drawn, reproducibly
    const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
    const tpl = chatTemplateMutator(["{% endif %}"]), config = enc({ bos_token: "<s>", chat_template: "{% for m in messages %}{{ m['content'] }}{% endfor %}" });
    const index = enc({ metadata: { total_size: 8 }, weight_map: { a: "model-00001-of-00002.safetensors", b: "model-00002-of-00002.safetensors" } });
    const draws = Array.from({ length: 40 }, (_, s) => [mutate(tpl, config, new Rng(s)).desc, mutate(mutateShardIndex, index, new Rng(s)).desc]);
    assert.deepEqual(draws, Array.from({ length: 40 }, (_, s) => [mutate(tpl, config, new Rng(s)).desc, mutate(mutateShardIndex, index, new Rng(s)).desc]));
    assert.ok(draws.some(([t]) => t!.startsWith("chat_template: ")) && draws.some(([, i]) => i!.startsWith("index: ")));
  });

  // One mutant per kind: with the HF kinds (15 in all) the run takes what two per kind took for the first nine.
  it("a small run over every file kind: no crash, hang or run over 2 GB", { timeout: 240_000 }, async () => {
    const out = mkdtempSync(join(tmpdir(), "tsformer-fuzz-"));
    const report = await fuzz({ n: KINDS.length, seed: 13, kinds: [], jobs: 2, out, timeoutMs: 20_000, rssMiB: 2048, quiet: true });
    assert.deepEqual(Object.keys(report.perKind), KINDS.map((k) => k.name));
    for (const [kind, c] of Object.entries(report.perKind)) assert.equal(c.mutants, 1, kind);
    assert.equal(report.runs, OUTCOMES.reduce((n, k) => n + report.totals[k], 0));
    const fatal = report.failures.filter((f) => ["crash", "hang", "oom"].includes(f.outcome));
    assert.deepEqual(fatal.map((f) => `${f.outcome}: ${f.id}: ${f.mutant}: ${f.why}`), []);
    assert.ok(report.seedsUnchanged, "the seed files changed");
    assert.ok(existsSync(join(out, "report.json")));
    assert.deepEqual(JSON.parse(readFileSync(join(out, "report.json"), "utf8")).totals, report.totals);
  });
});
