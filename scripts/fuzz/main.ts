// tsformer's fuzz harness: `npm run fuzz -- --n N [--seed S] [--kinds a,b] [--jobs J] [--out DIR]`.
// Mutates every file kind tsformer reads (kinds.ts), runs the loaders and a short generate / eval /
// resume / chat / convert on each mutant in a child process (runner.ts) and classifies the outcome:
// success, clean-error, bad-error (one line, but an engine message or several lines), crash, hang, oom
// (> the RSS cap), and unsafe (a read-only command changed its input, a resume wrote non-finite
// weights, a convert wrote outside its output or wrote an output that does not load). Writes
// <out>/report.json and keeps each failing mutant in <out>/failures/<id>/ (cmd.txt reruns it).
// Exit 1 when any run crashed, hung or went over the memory cap.

import { cpus } from "node:os";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import cliProgress from "cli-progress";
import { KINDS, makeWorkspace, snapshot, type Kind, type Seeds, type Target } from "./kinds.js";
import { Rng, mutate, type Mutant } from "./mutators.js";
import { FATAL, runNode, type RunLimits, type RunResult } from "./runner.js";
import { ROOT, buildSources, hashTree, makeSeeds, sourceCommands } from "./seeds.js";

export const OUTCOMES = ["success", "clean-error", "bad-error", "unsafe", "crash", "hang", "oom"] as const;
export type Class = (typeof OUTCOMES)[number];

export interface FuzzOptions { n: number; seed: number; kinds: string[]; jobs: number; out: string; timeoutMs: number; rssMiB: number; quiet: boolean }

interface Failure { id: string; kind: string; target: string; mutant: string; outcome: Class; why: string; command: string; stderr: string }
export interface FuzzReport {
  options: FuzzOptions; cpu: string; seconds: number; mutants: number; runs: number;
  totals: Record<Class, number>;
  perKind: Record<string, { mutants: number; runs: number } & Record<Class, number>>;
  perTarget: Record<string, Record<Class, number>>;
  failures: Failure[];
  seedsUnchanged: boolean;
}

const zero = () => Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Class, number>;

/** Finite check of every F32 tensor of a safetensors file (own parser: the harness does not trust the reader it tests). */
function nonFinite(file: string): string | null {
  const b = readFileSync(file), n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString("utf8")) as Record<string, { dtype: string; data_offsets: [number, number] }>;
  for (const [name, t] of Object.entries(header)) {
    if (name === "__metadata__" || t.dtype !== "F32") continue;
    const [s, e] = t.data_offsets;
    const f = new Float32Array(b.buffer.slice(b.byteOffset + 8 + n + s, b.byteOffset + 8 + n + e));
    if (!f.every(Number.isFinite)) return name;
  }
  return null;
}

const changedPaths = (before: Map<string, string>, after: Map<string, string>) =>
  [...new Set([...before.keys(), ...after.keys()])].filter((p) => before.get(p) !== after.get(p));
const few = (ps: string[]) => `${ps.slice(0, 3).join(", ")}${ps.length > 3 ? ", ..." : ""}`;

/**
 * Safety checks beyond the exit status: read-only commands leave the workspace as it was, a command
 * with an output directory changes nothing else (and nothing at all when it fails), written
 * checkpoints stay finite.
 */
function unsafeWhy(target: Target, ws: string, before: Map<string, string>, t0: number, r: RunResult): string | null {
  if (target.readOnly) {
    const changed = changedPaths(before, snapshot(ws));
    if (changed.length) return `a read-only command changed ${few(changed)}`;
  }
  if (target.output) {
    const after = snapshot(ws), out = target.output;
    const outside = changedPaths(before, after).filter((p) => p !== out && !p.startsWith(`${out}/`));
    if (outside.length) return `${target.name} changed ${few(outside)}, outside its output ${out}/`;
    if (r.code !== 0 && after.has(out)) return `a failed ${target.name} left ${out}/ behind`;
  }
  if (target.writesCheckpoint) {
    for (const p of snapshot(ws).keys()) {
      if (!/(model|optimizer)\.safetensors$/.test(p) || statSync(join(ws, p)).mtimeMs < t0) continue;
      const bad = nonFinite(join(ws, p));
      if (bad) return `wrote ${p} with non-finite values in ${bad}`;
    }
  }
  return null;
}

const quote = (a: string) => (/^[\w./=:+-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
const lastLine = (text: string) => text.trim().split("\n").pop() ?? "";

/** One target on a workspace: its run, the safety checks, and (after a success) its verify run. */
export async function runTarget(target: Target, seeds: Seeds, ws: string, limits: RunLimits): Promise<{ r: RunResult; outcome: Class; why: string }> {
  const before = snapshot(ws), start = Date.now();
  const r = await runNode(target.args(seeds), ws, limits, target.viaDriver, target.stdin);
  if (FATAL.includes(r.outcome)) return { r, outcome: r.outcome, why: r.why };
  const unsafe = unsafeWhy(target, ws, before, start, r);
  if (unsafe) return { r, outcome: "unsafe", why: unsafe };
  if (target.verify && r.outcome === "success") {
    const v = await runNode(target.verify.args(seeds), ws, limits, target.verify.viaDriver, target.verify.stdin);
    if (v.outcome !== "success") return { r, outcome: "unsafe", why: `${target.name} succeeded, but ${target.verify.name} of what it wrote gives ${v.outcome}: ${lastLine(v.stderr).slice(0, 300)}` };
  }
  return { r, outcome: r.outcome, why: r.why };
}

/** The shell command of a target in dir (stdin piped in), as cmd.txt keeps it. */
function commandLine(dir: string, target: Target, seeds: Seeds): string {
  const input = target.stdin === undefined ? "" : `printf %s ${quote(target.stdin)} | `;
  return `cd ${quote(dir)} && ${input}node ${target.args(sourceCommands(seeds)).map(quote).join(" ")}`;
}

/** Keep a failing mutant: a fresh workspace holding it, the command, its output and what was wrong. */
// cmd.txt runs the sources under tsx, without the harness's ulimit -v (tsx's WebAssembly needs more address space).
function keepFailure(dir: string, seeds: Seeds, kind: Kind, mutant: Mutant, target: Target, r: RunResult, outcome: Class, why: string): string {
  makeWorkspace(dir, seeds, kind.file(seeds), mutant);
  const command = commandLine(dir, target, seeds);
  writeFileSync(join(dir, "cmd.txt"), `${command}\n${target.verify ? `${commandLine(dir, target.verify, seeds)}\n` : ""}`);
  writeFileSync(join(dir, "stderr.txt"), r.stderr);
  writeFileSync(join(dir, "stdout.txt"), r.stdout);
  writeFileSync(join(dir, "meta.json"), JSON.stringify({ kind: kind.name, target: target.name, mutant: mutant.desc, outcome, why, exit: r.code, signal: r.signal, peakRssMiB: r.peakRss / 2 ** 20, ms: r.ms }, null, 2));
  return command;
}

/** Runs fn(0..n-1), `jobs` at a time. */
async function pool(n: number, jobs: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.max(1, jobs) }, async () => { while (next < n) await fn(next++); }));
}

/**
 * Every command must succeed on the unmutated seeds, or the fuzz run would measure nothing but that
 * failure. Unmutated workspaces are all alike, so a command several kinds share runs once.
 */
async function checkBaseline(kinds: Kind[], seeds: Seeds, out: string, limits: RunLimits, jobs: number): Promise<void> {
  const runs = new Map<string, readonly [Kind, Target]>();
  for (const k of kinds) for (const t of k.targets) runs.set(JSON.stringify([t.args(seeds), t.stdin ?? null, t.verify?.args(seeds) ?? null]), [k, t]);
  const list = [...runs.values()];
  await pool(list.length, jobs, async (i) => {
    const [kind, target] = list[i]!;
    const ws = join(out, "work", `baseline-${i}`);
    makeWorkspace(ws, seeds, kind.file(seeds), { desc: "unmutated", bytes: readFileSync(join(seeds.dir, kind.file(seeds))) });
    const { r, outcome, why } = await runTarget(target, seeds, ws, limits);
    if (outcome !== "success") throw new Error(`fuzz: ${target.name} fails on the unmutated ${kind.name} seed (${outcome}: ${why}):\n${r.stderr.trim()}`);
    rmSync(ws, { recursive: true, force: true });
  });
}

export async function fuzz(o: FuzzOptions): Promise<FuzzReport> {
  const t0 = Date.now();
  const kinds = o.kinds.length ? KINDS.filter((k) => o.kinds.includes(k.name)) : KINDS;
  const unknown = o.kinds.filter((k) => !KINDS.some((x) => x.name === k));
  if (unknown.length) throw new Error(`fuzz: --kinds: unknown ${unknown.join(", ")}; expected some of ${KINDS.map((k) => k.name).join(", ")}`);
  const out = resolve(o.out);
  rmSync(join(out, "failures"), { recursive: true, force: true });
  rmSync(join(out, "work"), { recursive: true, force: true });
  rmSync(join(out, "seeds"), { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  // The build lives inside the package (the native addon is found from there), one per fuzz process.
  const build = join(ROOT, "runs", `.fuzz-build-${process.pid}`);
  const limits: RunLimits = { timeoutMs: o.timeoutMs, rssBytes: o.rssMiB * 2 ** 20, vmemBytes: (o.rssMiB + 2048) * 2 ** 20 };
  try {
    buildSources(build);
    const seeds = makeSeeds(join(out, "seeds"), build);
    const seedHash = hashTree(seeds.dir);
    await checkBaseline(kinds, seeds, out, limits, o.jobs);
    const perKind = Object.fromEntries(kinds.map((k) => [k.name, { mutants: 0, runs: 0, ...zero() }]));
    const perTarget: Record<string, Record<Class, number>> = {};
    const totals = zero(), failures: Failure[] = [];
    const runsTotal = Array.from({ length: o.n }, (_, i) => kinds[i % kinds.length]!.targets.length).reduce((a, b) => a + b, 0);
    const bar = o.quiet ? null : new cliProgress.SingleBar({
      format: "fuzz {bar} {value}/{total} runs | {eta_formatted} left | crash {crash} hang {hang} oom {oom} unsafe {unsafe} bad-error {bad}",
      hideCursor: true, noTTYOutput: true, notTTYSchedule: 15_000, // a line every 15 s in CI logs
    }, cliProgress.Presets.shades_classic);
    bar?.start(runsTotal, 0, { crash: 0, hang: 0, oom: 0, unsafe: 0, bad: 0 });

    const one = async (i: number) => {
      const kind = kinds[i % kinds.length]!;
      const rng = new Rng(Math.imul(o.seed + 1, 0x9e3779b1) ^ Math.imul(i + 1, 0x85ebca6b));
      const mutant = mutate(kind.mutate, new Uint8Array(readFileSync(join(seeds.dir, kind.file(seeds)))), rng);
      const ws = join(out, "work", String(i));
      perKind[kind.name]!.mutants++;
      makeWorkspace(ws, seeds, kind.file(seeds), mutant);
      for (const target of kind.targets) {
        const { r, outcome, why } = await runTarget(target, seeds, ws, limits);
        totals[outcome]++;
        perKind[kind.name]![outcome]++;
        perKind[kind.name]!.runs++;
        (perTarget[`${kind.name}/${target.name}`] ??= zero())[outcome]++;
        if (outcome !== "success" && outcome !== "clean-error") {
          const id = `${kind.name}-${i}-${target.name}`;
          const command = keepFailure(join(out, "failures", id), seeds, kind, mutant, target, r, outcome, why);
          failures.push({ id, kind: kind.name, target: target.name, mutant: mutant.desc, outcome, why, command, stderr: r.stderr.slice(0, 600) });
        }
        bar?.increment({ crash: totals.crash, hang: totals.hang, oom: totals.oom, unsafe: totals.unsafe, bad: totals["bad-error"] });
      }
      rmSync(ws, { recursive: true, force: true });
    };
    await pool(o.n, o.jobs, one);
    bar?.stop();
    const report: FuzzReport = {
      options: o, cpu: cpus()[0]?.model ?? "unknown", seconds: (Date.now() - t0) / 1000, mutants: o.n,
      runs: Object.values(totals).reduce((a, b) => a + b, 0), totals, perKind, perTarget, failures,
      seedsUnchanged: hashTree(seeds.dir) === seedHash,
    };
    writeFileSync(join(out, "report.json"), JSON.stringify(report, null, 2));
    rmSync(join(out, "work"), { recursive: true, force: true });
    return report;
  } finally {
    rmSync(build, { recursive: true, force: true });
  }
}

/** The per-kind table (markdown, ready for bench/RESULTS.md). */
export function formatTable(r: FuzzReport): string {
  const row = (name: string, c: { mutants?: number; runs?: number } & Record<Class, number>) =>
    `| ${name} | ${c.mutants ?? ""} | ${c.runs ?? ""} | ${OUTCOMES.map((k) => c[k]).join(" | ")} |`;
  return [
    `| file kind | mutants | runs | ${OUTCOMES.join(" | ")} |`,
    `| --- | ${["mutants", "runs", ...OUTCOMES].map(() => "---:").join(" | ")} |`,
    ...Object.entries(r.perKind).map(([k, c]) => row(k, c)),
    row("**total**", { mutants: r.mutants, runs: r.runs, ...r.totals }),
  ].join("\n");
}

function parseCli(argv: string[]): FuzzOptions {
  const { values } = parseArgs({
    args: argv, strict: true, options: {
      n: { type: "string", default: "300" }, seed: { type: "string", default: "1" }, kinds: { type: "string", default: "" },
      jobs: { type: "string", default: String(Math.max(1, cpus().length)) }, out: { type: "string", default: join(ROOT, "runs/fuzz") },
      timeout: { type: "string", default: "20" }, "rss-mib": { type: "string", default: "2048" }, quiet: { type: "boolean", default: false },
    },
  });
  const int = (flag: string, v: string, min: number) => {
    const x = Number(v);
    if (!Number.isInteger(x) || x < min) throw new Error(`fuzz: --${flag} expects an integer >= ${min}, got '${v}'`);
    return x;
  };
  return {
    n: int("n", values.n, 1), seed: int("seed", values.seed, 0), jobs: int("jobs", values.jobs, 1), out: values.out,
    kinds: values.kinds.split(",").filter(Boolean), timeoutMs: int("timeout", values.timeout, 1) * 1000, rssMiB: int("rss-mib", values["rss-mib"], 64), quiet: values.quiet,
  };
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) {
  try {
    const report = await fuzz(parseCli(process.argv.slice(2)));
    console.log(`\n${formatTable(report)}\n`);
    console.log(`${report.runs} runs on ${report.mutants} mutants in ${report.seconds.toFixed(0)} s (${report.cpu}); report: ${join(report.options.out, "report.json")}`);
    if (!report.seedsUnchanged) console.log("the seed files changed during the run: a command wrote outside its workspace");
    for (const f of report.failures.slice(0, 20)) console.log(`${f.outcome}: ${f.id}: ${f.mutant}: ${f.why}`);
    const fatal = FATAL.reduce((n, k) => n + report.totals[k], 0);
    process.exitCode = fatal > 0 || !report.seedsUnchanged ? 1 : 0;
  } catch (e) {
    console.error((e as Error).message);
    process.exitCode = 1;
  }
}
