// Runs one command in a child process under a timeout, a virtual-memory limit (ulimit -v, so that a
// runaway native allocation fails instead of taking the machine) and a peak-RSS watch, and classifies
// what happened.

import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export type Outcome = "success" | "clean-error" | "bad-error" | "crash" | "hang" | "oom";
/** Outcomes that fail a fuzz run (bad-error is reported, not fatal: a one-line message, but a poor one). */
export const FATAL: readonly Outcome[] = ["crash", "hang", "oom"];

export interface RunLimits { timeoutMs: number; rssBytes: number; vmemBytes: number }
export interface RunResult { outcome: Outcome; why: string; code: number | null; signal: string | null; peakRss: number; ms: number; stdout: string; stderr: string }

const RSS_PRELOAD = fileURLToPath(new URL("./rss.mjs", import.meta.url));
const KEEP = 64 * 1024; // keep at most this much of stdout / stderr

// Messages of JS engine errors: tsformer let a TypeError / RangeError from deep inside reach the user.
const INTERNAL = /Cannot read propert|is not a function|is not iterable|is not defined|Cannot convert|Invalid typed array length|Invalid array length|Maximum call stack|Invalid string length|outside the bounds|Start offset|The value of "|The "\w+" argument|\[NaN\]/;
// Allocation failures: the run tried to allocate past the memory cap before checking sizes.
const ALLOC = /Array buffer allocation failed|heap out of memory|Reached heap limit|Cannot create a string longer|ENOMEM|std::bad_alloc/;
const STACK = /^\s+at |Uncaught|FATAL ERROR|Segmentation fault|Aborted|core dumped/m;
// Names the driver prints for errors tsformer throws on purpose (plain Error included).
const TSFORMER_ERROR = /^(Error|NotJSON|\w+Error(?<!TypeError|RangeError|ReferenceError|SyntaxError|EvalError|URIError)): /;

function readPeak(pid: number): number {
  try { return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) * 1024; } catch { return 0; }
}

export function classify(r: Omit<RunResult, "outcome" | "why">, limits: RunLimits, timedOut: boolean, rssKilled: boolean, viaDriver: boolean): { outcome: Outcome; why: string } {
  if (timedOut) return { outcome: "hang", why: `no exit after ${limits.timeoutMs} ms` };
  if (rssKilled || r.peakRss > limits.rssBytes) return { outcome: "oom", why: `peak RSS ${(r.peakRss / 2 ** 20).toFixed(0)} MiB` };
  const alloc = ALLOC.exec(r.stderr);
  if (alloc) return { outcome: "oom", why: `allocation past the ${(limits.vmemBytes / 2 ** 30).toFixed(1)} GiB cap: ${alloc[0]}` };
  if (r.signal) return { outcome: "crash", why: `signal ${r.signal}` };
  if (r.code !== 0 && r.code !== 1) return { outcome: "crash", why: `exit code ${r.code}` };
  const stack = STACK.exec(r.stderr);
  if (stack) return { outcome: "crash", why: `stack trace / fatal output: ${stack[0].trim()}` };
  if (r.code === 0) return { outcome: "success", why: "" };
  // Progress lines and warnings may come before the error line; nothing may follow it (a message
  // spanning lines quotes raw file content).
  const lines = r.stderr.split("\n").filter((l) => l.trim() !== "");
  const at = lines.map((l) => (viaDriver ? /^\w+: / : /^tsformer: /).test(l)).lastIndexOf(true);
  if (at < 0) return { outcome: "bad-error", why: "exit 1 without an error line on stderr" };
  if (at < lines.length - 1) return { outcome: "bad-error", why: `the error message spans ${lines.length - at} lines` };
  const line = lines[at]!;
  if (viaDriver && !TSFORMER_ERROR.test(line)) return { outcome: "bad-error", why: `JS engine error: ${line.slice(0, 120)}` };
  const internal = INTERNAL.exec(line);
  if (internal) return { outcome: "bad-error", why: `engine-like message (${internal[0]})` };
  return { outcome: "clean-error", why: "" };
}

/** Runs `node <args>` with cwd, `stdin` written to its input (else closed); the preload reports the peak RSS of a normal exit. */
export function runNode(args: string[], cwd: string, limits: RunLimits, viaDriver: boolean, stdin?: string): Promise<RunResult> {
  const t0 = Date.now();
  const vmemKb = Math.floor(limits.vmemBytes / 1024);
  const heapMb = Math.floor(limits.rssBytes / 2 ** 20);
  const child = spawn("bash", ["-c", `ulimit -v ${vmemKb}; exec "$0" "$@"`, process.execPath, `--max-old-space-size=${heapMb}`, "--import", RSS_PRELOAD, ...args], {
    cwd, detached: true, stdio: [stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    env: { ...process.env, TSFORMER_THREADS: "1", NO_COLOR: "1" },
  });
  // A child that exits before reading all of it closes the pipe: EPIPE is its business, not the harness's.
  child.stdin?.on("error", () => {});
  child.stdin?.end(stdin);
  let stdout = "", stderr = "", timedOut = false, rssKilled = false, peak = 0;
  child.stdout!.on("data", (d: Buffer) => { if (stdout.length < KEEP) stdout += d.toString("utf8"); });
  child.stderr!.on("data", (d: Buffer) => { if (stderr.length < KEEP) stderr += d.toString("utf8"); });
  const kill = () => { try { process.kill(-child.pid!, "SIGKILL"); } catch { /* already gone */ } };
  const watch = setInterval(() => {
    peak = Math.max(peak, readPeak(child.pid!));
    if (peak > limits.rssBytes) { rssKilled = true; kill(); }
  }, 50);
  const timer = setTimeout(() => { timedOut = true; kill(); }, limits.timeoutMs);
  return new Promise((resolve) => {
    child.on("close", (code, signal) => {
      clearInterval(watch);
      clearTimeout(timer);
      const reported = /\n?fuzz-max-rss=(\d+)\n?/.exec(stderr);
      if (reported) { peak = Math.max(peak, Number(reported[1]) * 1024); stderr = stderr.replace(reported[0], reported[0].startsWith("\n") ? "\n" : ""); }
      const base = { code, signal, peakRss: peak, ms: Date.now() - t0, stdout, stderr };
      resolve({ ...base, ...classify(base, limits, timedOut, rssKilled, viaDriver) });
    });
  });
}
