// Run metrics: one JSON object per line in <runDir>/metrics.jsonl, and a hand-written SVG loss plot
// (<runDir>/loss.svg) with train and val curves, replaced atomically (temp file + rename).

import { promises as fs } from "node:fs";
import * as path from "node:path";

export type MetricsRecord = Record<string, unknown>;

export async function appendMetrics(runDir: string, record: MetricsRecord): Promise<void> {
  await fs.mkdir(runDir, { recursive: true });
  await fs.appendFile(path.join(runDir, "metrics.jsonl"), `${JSON.stringify(record)}\n`);
}

/** Records of <runDir>/metrics.jsonl ([] if absent). A torn last line (crash mid-append) is dropped. */
export async function readMetrics(runDir: string): Promise<MetricsRecord[]> {
  const file = path.join(runDir, "metrics.jsonl");
  const text = await fs.readFile(file, "utf8").catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return "";
    throw e;
  });
  const lines = text.split("\n");
  const torn = lines.pop(); // "" when the file ends with a newline
  if (torn) process.emitWarning(`${file}: dropping an incomplete last line`);
  return lines.map((line, i) => {
    try {
      return JSON.parse(line) as MetricsRecord;
    } catch {
      throw new Error(`${file}:${i + 1}: not valid JSON; expected one JSON object per line`);
    }
  });
}

export interface LossPoint { step: number; train?: number; val?: number }

const W = 640, H = 400, L = 64, R = 24, TOP = 44, BOT = 52;
const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];

export interface Series { name: string; points: (readonly [number, number])[] }

/** Round tick positions covering [lo, hi]: spacing 1, 2 or 5 times a power of ten, about `n` ticks. */
function ticks(lo: number, hi: number, n = 6): number[] {
  const raw = (hi - lo) / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) as number;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const fmt = (v: number) => (Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(1) : String(Number(v.toPrecision(6))));

/** Render the train/val loss curves as a standalone SVG document. */
export function lossPlotSvg(points: LossPoint[], title = "loss"): string {
  return linePlotSvg((["train", "val"] as const).map((k) => ({
    name: k, points: points.filter((p) => Number.isFinite(p[k])).map((p) => [p.step, p[k] as number] as const),
  })), { title });
}

/** Named curves on shared axes as a standalone SVG document (non-finite points are dropped). */
export function linePlotSvg(input: Series[], o: { title: string; xLabel?: string; yLabel?: string }): string {
  const { title, xLabel = "step", yLabel = "loss" } = o;
  const series = input.map((s, i) => ({ k: s.name, color: PALETTE[i % PALETTE.length], pts: s.points.filter((p) => Number.isFinite(p[1])) }))
    .filter((s) => s.pts.length > 0);
  const all = series.flatMap((s) => s.pts);
  let [x0, x1] = all.length ? [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))] : [0, 1];
  let [y0, y1] = all.length ? [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))] : [0, 1];
  if (x1 === x0) { x0 -= 1; x1 += 1; }
  if (y1 === y0) { y0 -= Math.abs(y0) * 0.1 || 1; y1 += Math.abs(y1) * 0.1 || 1; }
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
  series.forEach(({ k, color, pts }, i) => {
    const xy = pts.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`);
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${xy.join(" ")}"/>`);
    // Markers only where they stay readable.
    if (xy.length <= 60) for (const p of xy) { const [cx, cy] = p.split(","); out.push(`<circle cx="${cx}" cy="${cy}" r="2.5" fill="${color}"/>`); }
    const ly = TOP + 8 + i * 18;
    out.push(`<line x1="${W - R - 120}" y1="${ly}" x2="${W - R - 100}" y2="${ly}" stroke="${color}" stroke-width="2"/>`,
      `<text x="${W - R - 94}" y="${ly}" dominant-baseline="middle">${esc(k)}</text>`);
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
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    await fs.writeFile(tmp, svg);
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
}
