// The shape of the code: the import check passes (no import cycle, no import up a floor, cli/
// through the public API only), and the public API publishes none of the internal helpers.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import * as T from "../src/index.js";
import * as util from "../src/ops/util.js";
import * as raw from "../src/ops/raw.js";
import * as autograd from "../src/tensor/autograd.js";
import * as memory from "../src/tensor/memory.js";
import * as scope from "../src/tensor/scope.js";

const root = fileURLToPath(new URL("..", import.meta.url));

test("scripts/check-imports.mjs: no cycle, no import up a floor", () => {
  const r = spawnSync(process.execPath, ["scripts/check-imports.mjs"], { cwd: root, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /no cycle, no import up a floor/);
});

test("the import check finds a planted cycle and an upward import", async () => {
  const { mkdtempSync, mkdirSync, writeFileSync, rmSync } = await import("node:fs");
  const { join } = await import("node:path");
  const { tmpdir } = await import("node:os");
  const dir = mkdtempSync(join(tmpdir(), "tsf-imports-"));
  try {
    mkdirSync(join(dir, "tensor")); mkdirSync(join(dir, "ops"));
    writeFileSync(join(dir, "tensor", "a.ts"), 'export const glob = "src/**/*.ts";\nimport { b } from "./b.js";\nexport const path = "./not-an-import.js";\nexport const a = 1;\n');
    writeFileSync(join(dir, "tensor", "b.ts"), 'import { a } from "./a.js";\nimport { c } from "../ops/c.js";\nexport const b = 2;\n');
    writeFileSync(join(dir, "ops", "c.ts"), "export const c = 3;\n");
    const r = spawnSync(process.execPath, [join(root, "scripts/check-imports.mjs"), dir], { encoding: "utf8" });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /import cycle among 2 files: tensor\/a\.ts, tensor\/b\.ts/);
    assert.match(r.stderr, /tensor\/b\.ts \(tensor\) imports ops\/c\.ts \(ops\): up a floor/);
    assert.doesNotMatch(r.stderr, /not-an-import|does not exist/, "a string is not an import, and a \"/*\" inside one starts no comment");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the public API publishes no internal helper", () => {
  const internal = [util, raw, autograd, memory, scope].flatMap((m) => Object.keys(m));
  const publicNames = new Set(Object.keys(T));
  const allowed = new Set(["noGrad", "enableGrad", "isGradEnabled", "tidy", "keep", "keepReachable", "memoryStats", "resetPeakMemory", "trackLiveMemory"]);
  const leaked = internal.filter((n) => publicNames.has(n) && !allowed.has(n));
  assert.deepEqual(leaked, []);
});
