// The README's example, run as a user would: the package is packed (npm pack builds dist/), installed
// into a fresh project outside the repo, and the TypeScript blocks under "## A short example" run there
// against `import * as T from "tsformer"`. The native addon is the one `npm ci` built here (installing
// with scripts would compile it a second time); without it the example runs on the TS backend.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

/** The ```ts blocks of one README section, in order. */
function readmeBlocks(section: string): string[] {
  const text = readFileSync(join(root, "README.md"), "utf8");
  const start = text.indexOf(`\n## ${section}\n`);
  assert.ok(start >= 0, `README has no section '${section}'`);
  const end = text.indexOf("\n## ", start + 4);
  const body = text.slice(start, end < 0 ? undefined : end);
  return [...body.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
}

function run(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", env: { ...process.env, npm_config_audit: "false", npm_config_fund: "false" } });
  assert.equal(r.status, 0, `${cmd} ${args.join(" ")} failed in ${cwd}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

test("the README example runs in a user project that installs the packed package", { timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "tsf-user-"));
  try {
    const packed = JSON.parse(run("npm", ["pack", "--json", "--pack-destination", dir], root)) as { filename: string; files: { path: string }[] }[];
    const files = packed[0].files.map((f) => f.path);
    for (const need of ["dist/index.js", "dist/index.d.ts", "binding.gyp", "data/stories260K.bin", "data/tok512.bin"]) assert.ok(files.includes(need), `the package lacks ${need}`);
    assert.ok(!files.some((f) => f.startsWith("test/") || f.startsWith("src/")), "tests and sources stay out of the package");
    const project = join(dir, "project");
    mkdirSync(project);
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "tsf-user", version: "1.0.0", type: "module", private: true }));
    run("npm", ["install", "--ignore-scripts", "--prefer-offline", join(dir, packed[0].filename)], project);
    const addon = join(root, "build", "Release", "tsformer_native.node");
    if (existsSync(addon)) {
      mkdirSync(join(project, "node_modules", "tsformer", "build", "Release"), { recursive: true });
      copyFileSync(addon, join(project, "node_modules", "tsformer", "build", "Release", "tsformer_native.node"));
    }
    const blocks = readmeBlocks("A short example");
    assert.ok(blocks.length >= 2, "the example section has its blocks");
    writeFileSync(join(project, "example.ts"), blocks.join("\n"));
    const tsx = import.meta.resolve("tsx");
    const out = run(process.execPath, ["--import", tsx, "example.ts"], project);
    assert.match(out, /Once upon a time/, "the bundled stories260K tells its story");
    assert.match(out, /training loss \d/, "the training loop ran");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
