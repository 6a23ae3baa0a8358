// The fuzz harness (scripts/fuzz, `npm run fuzz`) on a small N, as CI runs it: every file kind is
// mutated, and no run may crash, hang or go over the memory cap. Also checks that the harness's
// classifier tells those outcomes apart (a harness that called everything "clean" would pass vacuously).

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fuzz, OUTCOMES } from "../scripts/fuzz/main.ts";
import { KINDS } from "../scripts/fuzz/kinds.ts";
import { classify, runNode, type RunLimits } from "../scripts/fuzz/runner.ts";
import { Rng, mutate, mutateJsonValue, mutateSafetensors } from "../scripts/fuzz/mutators.ts";

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
  });

  it("a small run over every file kind: no crash, hang or run over 2 GB", { timeout: 240_000 }, async () => {
    const out = mkdtempSync(join(tmpdir(), "tsformer-fuzz-"));
    const report = await fuzz({ n: 2 * KINDS.length, seed: 13, kinds: [], jobs: 2, out, timeoutMs: 20_000, rssMiB: 2048, quiet: true });
    assert.deepEqual(Object.keys(report.perKind), KINDS.map((k) => k.name));
    for (const [kind, c] of Object.entries(report.perKind)) assert.equal(c.mutants, 2, kind);
    assert.equal(report.runs, OUTCOMES.reduce((n, k) => n + report.totals[k], 0));
    const fatal = report.failures.filter((f) => ["crash", "hang", "oom"].includes(f.outcome));
    assert.deepEqual(fatal.map((f) => `${f.outcome}: ${f.id}: ${f.mutant}: ${f.why}`), []);
    assert.ok(report.seedsUnchanged, "the seed files changed");
    assert.ok(existsSync(join(out, "report.json")));
    assert.deepEqual(JSON.parse(readFileSync(join(out, "report.json"), "utf8")).totals, report.totals);
  });
});
