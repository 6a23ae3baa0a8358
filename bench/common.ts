// Shared benchmark helpers: statistics, JSON-line and table output, and the PyTorch peer runner
// (Debian's python3-torch with OpenBLAS/OpenMP, 2 threads) whose figures go in the same run.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createInterface } from "node:readline";
import { existsSync } from "node:fs";

export interface Stats { median: number; min: number; max: number; n: number }

export function stats(xs: number[]): Stats {
  if (xs.length === 0) return { median: NaN, min: NaN, max: NaN, n: 0 };
  const s = [...xs].sort((a, b) => a - b), h = s.length >> 1;
  return { median: s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2, min: s[0], max: s[s.length - 1], n: s.length };
}

/** Runs fn `warmup` times, then `reps` timed samples of `inner` calls each; returns seconds per call. */
export function timeIt(fn: () => void, reps = 7, warmup = 2, inner = 1): number[] {
  for (let i = 0; i < warmup; i++) fn();
  const out: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < inner; i++) fn();
    out.push(Number(process.hrtime.bigint() - t0) / 1e9 / inner);
  }
  return out;
}

export function jsonLine(obj: Record<string, unknown>): void {
  console.log(JSON.stringify(obj));
}

export function printTable(headers: string[], rows: (string | number)[][]): void {
  const cells = rows.map((r) => r.map((c) => String(c)));
  const w = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join("  ");
  console.log(line(headers));
  console.log(w.map((x) => "-".repeat(x)).join("  "));
  for (const r of cells) console.log(line(r));
}

export const fmt = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "-");

const PYTHON = "/usr/bin/python3";
const OPENBLAS = "/usr/lib/x86_64-linux-gnu/openblas-openmp";

/**
 * A PyTorch peer process (bench/torch/NAME.py) kept alive for the whole benchmark so that its runs
 * interleave with ours (the machine may be shared: interleaving keeps the ratio fair). Protocol: one
 * JSON request per stdin line, one JSON reply per stdout line; the first line is a hello.
 * Run with /usr/bin/python3, OpenBLAS (OpenMP) and OMP_NUM_THREADS=2; the script sets torch's threads.
 */
export class TorchPeer {
  private constructor(private proc: ChildProcessWithoutNullStreams, private lines: AsyncIterator<string>, readonly hello: Record<string, unknown>) {}

  /** Starts the peer, or returns the reason it cannot run (PyTorch missing, script failing). */
  static async start(script: string): Promise<TorchPeer | string> {
    if (!existsSync(PYTHON)) return `${PYTHON} not found`;
    const env = { ...process.env, LD_LIBRARY_PATH: OPENBLAS, OMP_NUM_THREADS: "2" };
    const probe = spawnSync(PYTHON, ["-c", "import torch"], { env, encoding: "utf8" });
    if (probe.status !== 0) return "PyTorch is not installed (apt-get install -y python3-torch libopenblas0-openmp)";
    const proc = spawn(PYTHON, [script], { env, stdio: ["pipe", "pipe", "pipe"] });
    let err = "";
    proc.stderr.on("data", (d) => { err = (err + String(d)).slice(-2000); });
    const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
    const first = await lines.next();
    if (first.done) return `${script} exited: ${err.trim().slice(-400)}`;
    return new TorchPeer(proc, lines, JSON.parse(first.value));
  }

  async ask(req: unknown): Promise<Record<string, unknown>> {
    this.proc.stdin.write(JSON.stringify(req) + "\n");
    for (;;) {
      const r = await this.lines.next();
      if (r.done) throw new Error("PyTorch peer exited early");
      if (r.value.trim().startsWith("{")) {
        // libgomp's worker threads keep spinning for a while after a parallel region (OMP_WAIT_POLICY
        // unset); let them settle so that they do not share the cores with our next timed round
        await new Promise((done) => setTimeout(done, 100));
        return JSON.parse(r.value);
      }
    }
  }

  close(): void {
    this.proc.stdin.end();
  }
}

export interface PeerResult { ok: boolean; reason: string; lines: Record<string, unknown>[] }

/**
 * Runs a PyTorch peer script once with `input` as JSON on stdin and parses the JSON lines it prints
 * (same interpreter and environment as TorchPeer). ok = false with a reason when it cannot run.
 */
export function runTorchPeer(script: string, input: unknown, timeoutMs = 600_000): PeerResult {
  if (!existsSync(PYTHON)) return { ok: false, reason: `${PYTHON} not found`, lines: [] };
  const env = { ...process.env, LD_LIBRARY_PATH: OPENBLAS, OMP_NUM_THREADS: "2" };
  const probe = spawnSync(PYTHON, ["-c", "import torch"], { env, encoding: "utf8" });
  if (probe.status !== 0) return { ok: false, reason: "PyTorch is not installed (apt-get install -y python3-torch libopenblas0-openmp)", lines: [] };
  const r = spawnSync(PYTHON, [script], { env, input: JSON.stringify(input), encoding: "utf8", timeout: timeoutMs, maxBuffer: 1 << 26 });
  if (r.status !== 0) return { ok: false, reason: `${script} failed: ${(r.stderr || r.error?.message || "").trim().slice(-400)}`, lines: [] };
  const lines: Record<string, unknown>[] = [];
  for (const l of r.stdout.split("\n")) {
    const t = l.trim();
    if (t.startsWith("{")) { try { lines.push(JSON.parse(t)); } catch { /* ignore non-JSON */ } }
  }
  return { ok: true, reason: "", lines };
}
