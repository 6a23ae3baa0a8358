// Run metrics: one JSON object per line in <runDir>/metrics.jsonl, and a hand-written SVG loss plot
// (<runDir>/loss.svg): the training loss of every step (raw, faint, and smoothed by an EMA) with the
// validation estimates as points, replaced atomically (temp file + rename).

import { promises as fs } from "node:fs";
import * as path from "node:path";
import { writeFileAtomic } from "../io/atomic.js";
import { readFileBounded, shallow } from "../io/read.js";

/** metrics.jsonl is read whole on resume: refuse a runaway file (or a device) instead of filling memory. */
const MAX_METRICS_BYTES = 1024 ** 3;

export type MetricsRecord = Record<string, unknown>;

/** The last byte of `file`, or null when the file is empty or absent. */
async function lastByte(file: string): Promise<number | null> {
  const fh = await fs.open(file, "r").catch((e: NodeJS.ErrnoException) => { if (e.code === "ENOENT") return null; throw e; });
  if (!fh) return null;
  try {
    const { size } = await fh.stat();
    if (size === 0) return null;
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, size - 1);
    return b[0];
  } finally {
    await fh.close();
  }
}

/** Appends one record. It always starts on a new line: after a torn last line (a crash mid-append) the
 * torn bytes stay alone on their line, which readMetrics skips, instead of corrupting this record. */
export async function appendMetrics(runDir: string, record: MetricsRecord): Promise<void> {
  await fs.mkdir(runDir, { recursive: true });
  const file = path.join(runDir, "metrics.jsonl");
  const last = await lastByte(file);
  await fs.appendFile(file, `${last !== null && last !== 0x0a ? "\n" : ""}${JSON.stringify(record)}\n`);
}

/** Cuts a torn last line (a crash mid-append) off metrics.jsonl; returns the number of bytes removed. */
export async function repairMetrics(runDir: string): Promise<number> {
  const file = path.join(runDir, "metrics.jsonl");
  const last = await lastByte(file);
  if (last === null || last === 0x0a) return 0;
  const text = await fs.readFile(file);
  const keep = text.lastIndexOf(0x0a) + 1;
  await fs.truncate(file, keep);
  return text.length - keep;
}

/** Records of <runDir>/metrics.jsonl ([] if absent). Lines that are not JSON objects (torn by a crash)
 * are skipped with one warning naming them. */
export async function readMetrics(runDir: string): Promise<MetricsRecord[]> {
  const file = path.join(runDir, "metrics.jsonl");
  if (!(await fs.stat(file).then(() => true, () => false))) return [];
  const text = new TextDecoder().decode(readFileBounded(file, { maxBytes: MAX_METRICS_BYTES }));
  const out: MetricsRecord[] = [], bad: number[] = [];
  text.split("\n").forEach((line, i) => {
    if (line === "") return;
    try {
      const r: unknown = JSON.parse(line);
      // a record is a flat object; deep nesting would overflow the stack of whatever reads it next
      if (typeof r === "object" && r !== null && !Array.isArray(r) && shallow(r, 3)) { out.push(r as MetricsRecord); return; }
    } catch { /* reported below */ }
    bad.push(i + 1);
  });
  if (bad.length) process.emitWarning(`${file}: skipping ${bad.length} line${bad.length > 1 ? "s" : ""} that ${bad.length > 1 ? "are" : "is"} not a flat JSON object (line ${bad.slice(0, 5).join(", ")}${bad.length > 5 ? ", ..." : ""}; torn by a crash?)`);
  return out;
}

/** A point of the loss plot: `train` is one step's training loss, `val` a validation estimate. */
export interface LossPoint { step: number; train?: number; val?: number }

const W = 640, H = 400, L = 64, R = 24, TOP = 44, BOT = 52;
const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#843c39", "#000000"];
/** Points drawn per series at most (longer series are thinned evenly; the SVG stays small). */
const MAX_DRAWN = 1000;
/** Weight of the training-loss EMA (TensorBoard's smoothing, bias-corrected as Adam's moments). */
export const LOSS_EMA = 0.9;

/** line: a curve (markers when short); faint: a thin light curve; points: markers only. */
export interface Series { name: string; points: (readonly [number, number])[]; style?: "line" | "faint" | "points"; color?: string }

/** Round tick positions covering [lo, hi]: spacing 1, 2 or 5 times a power of ten, about `n` ticks.
 * Counted, not accumulated: at large values (2**52) `v += step` may not change v and never end. */
function ticks(lo: number, hi: number, n = 6): number[] {
  const raw = (hi - lo) / n;
  if (!(raw > 0) || !Number.isFinite(raw)) return [];
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) as number;
  const first = Math.ceil(lo / step);
  const count = Math.min(Math.floor(hi / step + 1e-9) - first + 1, 4 * n);
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const v = Number(((first + i) * step).toPrecision(12));
    if (out[out.length - 1] !== v) out.push(v);
  }
  return out;
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const fmt = (v: number) => (Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(1) : String(Number(v.toPrecision(6))));

/** Bias-corrected exponential moving average of y over the points, in order. */
export function emaSmooth(points: (readonly [number, number])[], weight = LOSS_EMA): [number, number][] {
  let m = 0, w = 1;
  return points.map(([x, y]) => {
    m = weight * m + (1 - weight) * y;
    w *= weight;
    return [x, m / (1 - w)];
  });
}

/** Every k-th point (and the last) so that at most `max` remain. */
function thin<P>(pts: P[], max = MAX_DRAWN): P[] {
  if (pts.length <= max) return pts;
  const k = Math.ceil(pts.length / max);
  return pts.filter((_, i) => i % k === 0 || i === pts.length - 1);
}

/** The run's loss plot: per-step training loss (raw, faint) and its EMA, validation estimates as points. */
export function lossPlotSvg(points: LossPoint[], title = "loss"): string {
  const train = points.filter((p) => Number.isFinite(p.train)).map((p) => [p.step, p.train as number] as const);
  const val = points.filter((p) => Number.isFinite(p.val)).map((p) => [p.step, p.val as number] as const);
  return linePlotSvg([
    { name: "train (per step)", points: train, style: "faint", color: "#9ecae1" },
    { name: `train (EMA ${LOSS_EMA})`, points: emaSmooth(train), color: PALETTE[0] },
    { name: "validation", points: val, style: "points", color: PALETTE[1] },
  ], { title });
}

/** Named curves on shared axes as a standalone SVG document (non-finite points are dropped). */
export function linePlotSvg(input: Series[], o: { title: string; xLabel?: string; yLabel?: string }): string {
  const { title, xLabel = "step", yLabel = "loss" } = o;
  const series = input.map((s, i) => ({ k: s.name, style: s.style ?? "line", color: s.color ?? PALETTE[i % PALETTE.length], pts: thin(s.points.filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1]))) }))
    .filter((s) => s.pts.length > 0);
  const all = series.flatMap((s) => s.pts);
  let [x0, x1] = all.length ? [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))] : [0, 1];
  let [y0, y1] = all.length ? [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))] : [0, 1];
  // Widen a zero range by an amount that still changes the value (± 1 is lost at 2**53).
  if (x1 === x0) { const d = Math.max(1, Math.abs(x0) * 1e-6); x0 -= d; x1 += d; }
  if (y1 === y0) { const d = Math.abs(y0) * 0.1 || 1; y0 -= d; y1 += d; }
  const pad = (y1 - y0) * 0.05;
  y0 -= pad; y1 += pad;
  const sx = (x: number) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const sy = (y: number) => H - BOT - ((y - y0) / (y1 - y0)) * (H - TOP - BOT);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="16">${esc(title)}</text>`,
    `<line x1="${L}" y1="${H - BOT}" x2="${W - R}" y2="${H - BOT}" stroke="black"/>`,
    `<line x1="${L}" y1="${TOP}" x2="${L}" y2="${H - BOT}" stroke="black"/>`,
  ];
  for (const t of ticks(x0, x1).filter((t) => Number.isInteger(t))) {
    const x = sx(t).toFixed(1);
    out.push(`<line x1="${x}" y1="${H - BOT}" x2="${x}" y2="${H - BOT + 5}" stroke="black"/>`,
      `<text x="${x}" y="${H - BOT + 18}" text-anchor="middle">${fmt(t)}</text>`);
  }
  for (const t of ticks(y0, y1)) {
    const y = sy(t).toFixed(1);
    out.push(`<line x1="${L - 5}" y1="${y}" x2="${W - R}" y2="${y}" stroke="#ddd"/>`,
      `<line x1="${L - 5}" y1="${y}" x2="${L}" y2="${y}" stroke="black"/>`,
      `<text x="${L - 8}" y="${y}" text-anchor="end" dominant-baseline="middle">${fmt(t)}</text>`);
  }
  out.push(`<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text transform="translate(16 ${(TOP + H - BOT) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`);
  series.forEach(({ k, style, color, pts }, i) => {
    const xy = pts.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`);
    if (style !== "points") out.push(`<polyline fill="none" stroke="${color}" stroke-width="${style === "faint" ? 1 : 2}" points="${xy.join(" ")}"/>`);
    // Markers only where they stay readable.
    if (style === "points" || (style === "line" && xy.length <= 60)) for (const p of xy) { const [cx, cy] = p.split(","); out.push(`<circle cx="${cx}" cy="${cy}" r="${style === "points" ? 3.5 : 2.5}" fill="${color}"/>`); }
    const ly = TOP + 8 + i * 18;
    out.push(style === "points"
      ? `<circle cx="${W - R - 150}" cy="${ly}" r="3.5" fill="${color}"/>`
      : `<line x1="${W - R - 160}" y1="${ly}" x2="${W - R - 140}" y2="${ly}" stroke="${color}" stroke-width="2"/>`,
    `<text x="${W - R - 134}" y="${ly}" dominant-baseline="middle">${esc(k)}</text>`);
  });
  out.push("</svg>\n");
  return out.join("\n");
}

/** Write <runDir>/loss.svg via a temp file and rename, so a reader never sees a partial plot. */
export async function writeLossPlot(runDir: string, points: LossPoint[], title?: string): Promise<void> {
  await writeSvg(path.join(runDir, "loss.svg"), lossPlotSvg(points, title));
}

/** Write an SVG document atomically (temp file + rename), creating the directory. */
export async function writeSvg(file: string, svg: string): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  writeFileAtomic(file, svg);
}
