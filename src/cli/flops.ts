// `tsformer flops --config FILE [--seq N] [--json]`: forward FLOPs of a model config (models/flops.ts),
// per component and per token, and the sequence length T* from which attention scores dominate.

import { existsSync } from "node:fs";
import { modelFlops, parseModelConfig, readJsonFile, SCAN_LIMIT, type FlopsReport } from "../index.js";

export interface FlopsCliOptions { config: string; seq?: number; json?: boolean }

/** Longest --seq accepted (the sparse tile count is quadratic in the number of blocks). */
export const MAX_SEQ = 1 << 20;

export function loadFlopsReport(o: FlopsCliOptions): FlopsReport {
  if (!existsSync(o.config)) throw new Error(`--config ${o.config} does not exist`);
  let raw: unknown;
  try { raw = readJsonFile(o.config); } catch (e) { throw new Error(`--config: ${(e as Error).message}`); }
  const cfg = parseModelConfig(raw, o.config);
  const seq = o.seq ?? cfg.maxSeqLen;
  if (seq > MAX_SEQ) throw new Error(`--seq expects an integer <= ${MAX_SEQ}, got ${seq}`);
  return modelFlops(cfg, seq);
}

/** 1234567 -> "1.23 M". */
function human(n: number): string {
  const units: [number, string][] = [[1e15, "P"], [1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
  const [div, u] = units.find(([d]) => Math.abs(n) >= d) ?? [1, ""];
  return `${(n / div).toFixed(div === 1 ? 0 : 2)} ${u}`.trimEnd();
}

export function formatFlopsTable(r: FlopsReport, source: string): string {
  const rows: [string, number][] = [
    ["attention scores", r.scores], ["projections", r.projections], ["FFN", r.ffn], ["LM head", r.lmHead], ["total", r.total],
  ];
  const kinds = new Map<string, number>();
  for (const l of r.layers) kinds.set(l.kind, (kinds.get(l.kind) ?? 0) + 1);
  const lines = [
    `${source}: attention "${r.attention}", T = ${r.seq} (forward FLOPs, multiply-add = 2)`,
    `layers: ${[...kinds].map(([k, n]) => `${n} x ${k}`).join(", ")}`,
    `${"component".padEnd(18)}${"FLOPs".padStart(12)}${"per token".padStart(12)}${"share".padStart(8)}`,
    ...rows.map(([name, v]) => `${name.padEnd(18)}${human(v).padStart(12)}${human(v / r.seq).padStart(12)}${`${((100 * v) / r.total).toFixed(1)}%`.padStart(8)}`),
    r.crossover === null
      ? `attention scores never reach projections + FFN${r.layers.some((l) => l.kind.startsWith("sparse")) ? ` (searched up to T = ${SCAN_LIMIT})` : ""}`
      : `attention scores >= projections + FFN from T* = ${r.crossover}${r.crossover === 1 ? " (already at one token)" : ""}`,
  ];
  return lines.join("\n");
}

export function runFlops(o: FlopsCliOptions, write = (s: string) => console.log(s)): FlopsReport {
  const r = loadFlopsReport(o);
  write(o.json ? JSON.stringify(r) : formatFlopsTable(r, o.config));
  return r;
}
