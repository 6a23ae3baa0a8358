// Running the command line as a user does, for the CLI tests: `tsformer ARGS` in a child process
// (through tsx, resolved from the repo), and the two outcomes a test checks.

import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { join } from "node:path";

export const root = new URL("../..", import.meta.url).pathname;
const tsx = import.meta.resolve("tsx");

export type CliResult = SpawnSyncReturns<string>;

/** A runner of `tsformer ...` in `cwd` (default: the repo), optionally fed `input` on stdin. */
export function cliIn(cwd = root, input?: string): (...args: string[]) => CliResult {
  return (...args) => spawnSync(process.execPath, ["--import", tsx, join(root, "src/cli/main.ts"), ...args], { cwd, encoding: "utf8", input });
}

/** Exit 0: returns stdout. */
export function ok(r: CliResult): string {
  assert.equal(r.status, 0, `exit ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

/** One clear line on stderr matching re, a non-zero exit, no stack trace. */
export function failsWith(r: CliResult, re: RegExp): void {
  assert.notEqual(r.status, 0, `expected failure, got stdout ${r.stdout}`);
  assert.match(r.stderr, re);
  assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
}
