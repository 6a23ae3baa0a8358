// WGAN-GP and self-consuming loops on the 2D toys (issue 20). Usage:
//   npm run bench -- gan [wgan|mad] [--iterations=N] [--lambda=X] [--steps=N] [--generations=N] [--toy=NAME]
// Run with TSFORMER_THREADS=1 on the shared machine (these MLPs are too small for a thread pool).
//
// wgan: WGAN-GP (Gulrajani et al. 2017, Algorithm 1: n_critic 5, Adam 1e-4, β (0, 0.9), batch 256; ReLU
//   MLPs 2-128-128-128-2 / 2-128-128-128-1) trained for --iterations generator steps (default 3000) on 20000
//   points of each toy. λ is --lambda, default 0.1: the reference toy script (gan_toy.py, "smaller lambda
//   seems to help for toy tasks specifically") uses 0.1 where Algorithm 1 (and WganGp's default) has 10. Scored against 2000 held-out points by MMD² (unbiased, Gaussian kernel σ = 0.5, as in
//   `generative rf`), sliced W2 (64 directions) and precision / recall (Kynkäänniemi et al. 2019, k = 3),
//   next to the same scores of a second independent real sample (the floor). Plot: bench/gan-wgan.svg
//   (bench/gan-wgan-lambda<λ>.svg for another λ).
// mad: the self-consuming loops of Alemohammad et al. 2023 on one toy (default 8gaussians): generation 0
//   trains on TRAIN real points, generation t on TRAIN points of which a share f is fresh real data and the
//   rest samples of generation t - 1 (f = 0: fully synthetic loop; f = 0.5: fresh data loop). The generator
//   is rectified flow (Liu et al. 2022; a TimeMLP velocity, --steps AdamW steps per generation, default 3000,
//   sampled by 50 Euler steps), retrained from a fresh init each generation. Per generation: MMD² (quality as
//   a distance), precision (quality) and recall (diversity) against held-out real data. Plots:
//   bench/gan-mad-<toy>.svg (scores per generation), bench/gan-mad-samples-<toy>.svg (first and last generations).

import * as T from "../src/index.js";
import { sampleToy, TOYS, type Toy } from "../src/data/toys.js";
import { fit } from "../src/generative/fit.js";
import { madLoop, precisionRecall, type MadGeneration, type Sampler } from "../src/generative/mad.js";
import { mmd2, randomDirections, slicedWasserstein } from "../src/generative/metrics.js";
import { eulerFlow, rectifiedFlowLoss } from "../src/generative/rectified-flow.js";
import { TimeMLP } from "../src/generative/time-mlp.js";
import { drawRows, trainWganGp } from "../src/generative/wgan-gp.js";
import { fmt, printTable } from "./common.js";
import { scatterGridSvg, writeSvg, type Panel } from "./generative.js";

const EVAL = 2000, PR_POINTS = 1000, BANDWIDTH = 0.5, BATCH = 256;
const now = () => performance.now() / 1000;
const pts = (x: T.Tensor) => x.toTypedArray() as Float32Array;
const e = (x: number) => x.toExponential(2);

/** MMD², SW2 and precision / recall (on the first PR_POINTS of each set) of x against held-out real data. */
function scorer(heldOut: T.Tensor, gen: T.RandomGenerator) {
  const dirs = randomDirections(64, 2, gen), heldPr = heldOut.narrow(0, 0, PR_POINTS);
  return (x: T.Tensor) => ({
    mmd2: mmd2(x, heldOut, { bandwidth: BANDWIDTH }).mmd2,
    sw: slicedWasserstein(x, heldOut, dirs),
    ...precisionRecall(heldPr, x.narrow(0, 0, PR_POINTS)),
  });
}

function wganPart(iterations: number, lambda: number): void {
  const rows: (string | number)[][] = [], grid: { label: string; panels: Panel[] }[] = [];
  (["moons", "8gaussians", "checkerboard"] as Toy[]).forEach((toy, i) => {
    const gen = new T.RandomGenerator(300 + i);
    const data = sampleToy(toy, 20000, gen), heldOut = sampleToy(toy, EVAL, gen), score = scorer(heldOut, gen);
    const t = now();
    const { model, last } = trainWganGp(data, { iterations, lambda, hidden: 128, seed: i, rng: gen });
    const time = now() - t;
    const x = model.sample(EVAL, gen), s = score(x), floor = score(sampleToy(toy, EVAL, gen));
    rows.push([toy, "WGAN-GP", e(s.mmd2), fmt(s.sw, 3), fmt(s.precision, 3), fmt(s.recall, 3), `${fmt(last.wasserstein, 3)} / ${fmt(last.penalty, 3)}`, fmt(time)]);
    rows.push([toy, "real sample (floor)", e(floor.mmd2), fmt(floor.sw, 3), fmt(floor.precision, 3), fmt(floor.recall, 3), "", ""]);
    grid.push({ label: toy, panels: [{ title: "data", pts: pts(heldOut) }, { title: `WGAN-GP, ${iterations} iterations`, pts: pts(x) }] });
  });
  console.log(`\nWGAN-GP: ${iterations} generator iterations, n_critic 5, λ ${lambda}, Adam 1e-4 β (0, 0.9), batch ${BATCH}, hidden 128 x 3; ${EVAL} eval points, MMD² σ ${BANDWIDTH}`);
  printTable(["toy", "samples", "MMD²", "SW2", "precision", "recall", "last W est. / penalty", "train (s)"], rows);
  writeSvg(lambda === 0.1 ? "gan-wgan.svg" : `gan-wgan-lambda${lambda}.svg`, scatterGridSvg(grid, `WGAN-GP on the 2D toys, λ = ${lambda}`));
}

/** Rectified flow N(0, I) -> data, trained on a fixed data set, as a MAD generation's model. */
function flowTrainer(steps: number, gen: T.RandomGenerator) {
  return (data: T.Tensor, generation: number): Sampler => {
    const net = new TimeMLP(2, { hidden: 128, layers: 3, embDim: 32, timeScale: 1000, generator: new T.RandomGenerator(1000 + generation) });
    const v = (x: T.Tensor, t: T.Tensor) => net.forward(x, t);
    fit(net, () => rectifiedFlowLoss(v, sampleToy("gaussian", BATCH, gen), drawRows(data, BATCH, gen), gen),
      { steps, lr: { kind: "cosine", lr: 1e-3, minLr: 1e-4, warmupSteps: Math.min(100, steps - 1), decaySteps: steps } });
    return (n, g) => eulerFlow(v, sampleToy("gaussian", n, g), 50).x1;
  };
}

/** One line chart per metric (generations on x), a line per loop, as one SVG. */
function linesSvg(series: { name: string; color: string; gens: MadGeneration[] }[], metrics: { key: string; title: string; floor?: number }[], title: string): string {
  const W = 320, H = 220, P = 45, TOP = 50;
  const o = [`<svg xmlns="http://www.w3.org/2000/svg" width="${metrics.length * (W + 20) + 20}" height="${TOP + H + 60}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`, `<text x="${(metrics.length * (W + 20)) / 2}" y="22" text-anchor="middle" font-size="15">${title}</text>`];
  metrics.forEach((m, mi) => {
    const x0 = 20 + mi * (W + 20), vals = series.flatMap((s) => s.gens.map((g) => g.scores[m.key])).concat(m.floor ?? []);
    const lo = Math.min(0, ...vals), hi = Math.max(...vals) * 1.05 || 1, G = series[0].gens.length;
    const px = (g: number) => x0 + P + (g / Math.max(G - 1, 1)) * (W - P - 10), py = (v: number) => TOP + H - ((v - lo) / (hi - lo)) * H;
    o.push(`<rect x="${x0 + P}" y="${TOP}" width="${W - P - 10}" height="${H}" fill="none" stroke="#999"/>`,
      `<text x="${x0 + W / 2}" y="${TOP - 8}" text-anchor="middle">${m.title}</text>`,
      `<text x="${x0 + P - 4}" y="${TOP + 4}" text-anchor="end">${hi.toPrecision(2)}</text>`,
      `<text x="${x0 + P - 4}" y="${TOP + H}" text-anchor="end">${lo.toPrecision(2)}</text>`,
      `<text x="${x0 + W / 2}" y="${TOP + H + 18}" text-anchor="middle">generation (0 … ${G - 1})</text>`);
    if (m.floor !== undefined) o.push(`<line x1="${x0 + P}" x2="${x0 + W - 10}" y1="${py(m.floor)}" y2="${py(m.floor)}" stroke="#888" stroke-dasharray="4 3"/>`);
    for (const s of series) {
      o.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${s.gens.map((g) => `${px(g.generation).toFixed(1)},${py(g.scores[m.key]).toFixed(1)}`).join(" ")}"/>`);
    }
  });
  series.forEach((s, i) => o.push(`<text x="${20 + i * 260}" y="${TOP + H + 45}" fill="${s.color}">━ ${s.name}</text>`));
  o.push(`<text x="${20 + series.length * 260}" y="${TOP + H + 45}" fill="#888">- - real sample (floor)</text>`, "</svg>");
  return o.join("\n");
}

function madPart(toy: Toy, generations: number, steps: number): void {
  const TRAIN = 1000, FRESH = 0.5;
  const gen = new T.RandomGenerator(400), heldOut = sampleToy(toy, EVAL, gen), score = scorer(heldOut, gen);
  const floor = score(sampleToy(toy, EVAL, gen));
  const loops = [{ name: "fully synthetic (f = 0)", f: 0, color: "#d62728" }, { name: `fresh data (f = ${FRESH})`, f: FRESH, color: "#1f77b4" }];
  const results = loops.map((l) => {
    const t = now();
    const r = madLoop({
      generations, trainSize: TRAIN, freshFraction: l.f, seed: 500, keepSamplers: true,
      real: (n, g) => sampleToy(toy, n, g), train: flowTrainer(steps, new T.RandomGenerator(600)),
      evaluate: (s) => score(s(EVAL, new T.RandomGenerator(700))),
    });
    console.log(`${l.name}: ${fmt(now() - t)} s`);
    return { ...l, ...r };
  });
  console.log(`\nMAD loops on ${toy}: rectified flow (TimeMLP 128 x 3), ${steps} AdamW steps per generation (1e-3 cosine to 1e-4, batch ${BATCH}), ${TRAIN} training points per generation, 50 Euler steps; ${EVAL} eval points (precision / recall on ${PR_POINTS}, k = 3), MMD² σ ${BANDWIDTH}`);
  const rows: (string | number)[][] = [];
  for (let g = 0; g < generations; g++) {
    const cell = (k: "mmd2" | "precision" | "recall" | "sw", d: number) => results.map((r) => (k === "mmd2" ? e(r.generations[g].scores[k]) : fmt(r.generations[g].scores[k], d))).join(" / ");
    rows.push([g, cell("mmd2", 0), cell("sw", 3), cell("precision", 3), cell("recall", 3)]);
  }
  rows.push(["real sample (floor)", e(floor.mmd2), fmt(floor.sw, 3), fmt(floor.precision, 3), fmt(floor.recall, 3)]);
  printTable(["generation", "MMD² synthetic / fresh", "SW2 synthetic / fresh", "precision synthetic / fresh", "recall synthetic / fresh"], rows);
  const svg = linesSvg(results.map((r) => ({ name: r.name, color: r.color, gens: r.generations })),
    [{ key: "mmd2", title: "MMD² to real (lower is better)", floor: floor.mmd2 }, { key: "precision", title: "precision (quality)", floor: floor.precision }, { key: "recall", title: "recall (diversity)", floor: floor.recall }],
    `Self-consuming loops on ${toy}: rectified flow, ${TRAIN} training points per generation`);
  writeSvg(`gan-mad-${toy}.svg`, svg);
  const sampleGen = new T.RandomGenerator(800), last = generations - 1;
  writeSvg(`gan-mad-samples-${toy}.svg`, scatterGridSvg(results.map((r) => ({ label: r.f === 0 ? "synthetic" : "fresh data", panels: [
    { title: "real data", pts: pts(heldOut) },
    { title: "generation 0", pts: pts(r.samplers[0](EVAL, sampleGen)) },
    { title: `generation ${last}`, pts: pts(r.samplers[last](EVAL, sampleGen)) },
  ] })), `Self-consuming loops on ${toy}: first and last generation`));
}

export function main(argv: string[]): void {
  const part = argv.find((a) => !a.startsWith("--"));
  const num = (k: string, d: number) => {
    const v = Number(argv.find((a) => a.startsWith(`--${k}=`))?.slice(k.length + 3) ?? d);
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`--${k} must be a positive integer, got ${v}`);
    return v;
  };
  const toy = (argv.find((a) => a.startsWith("--toy="))?.slice(6) ?? "8gaussians") as Toy;
  if (!TOYS.includes(toy) || toy === "gaussian") throw new RangeError(`--toy must be moons, 8gaussians or checkerboard, got ${toy}`);
  if (part !== undefined && part !== "wgan" && part !== "mad") throw new RangeError(`unknown part "${part}"; expected wgan or mad`);
  const lambda = Number(argv.find((a) => a.startsWith("--lambda="))?.slice(9) ?? 0.1);
  if (!(lambda >= 0 && Number.isFinite(lambda))) throw new RangeError(`--lambda must be a finite number >= 0, got ${lambda}`);
  if (!part || part === "wgan") wganPart(num("iterations", 3000), lambda);
  if (!part || part === "mad") madPart(toy, num("generations", 8), num("steps", 3000));
}
