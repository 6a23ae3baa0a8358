// Generative-model foundations (issue 20). Usage: npm run bench -- generative [rf|diffusion|classifier] [--steps=N]
// (--steps: training steps per network, default 5000). On a shared machine TSFORMER_THREADS=1 runs these small
// MLPs fastest (a busy thread pool only waits).
//
// rf: the ReFlow claim of Liu et al. 2022 ("Flow Straight and Fast", sec. 2.2-3; Su, kexue.fm/archives/9497)
//   on 2D toys. For each target (moons, 8 gaussians, checkerboard; FFJORD's definitions) from N(0, I):
//   1-RF = a TimeMLP velocity trained on independent pairs (X0, X1) by eq. 1; ReFlow draws fresh X0, pushes
//   them through 1-RF with 100 Euler steps to get coupled pairs (Z0, Z1), and trains 2-RF on those pairs,
//   starting from 1-RF's weights (as the paper's reflow runs continue from the previous flow). Samples of
//   1 and 100 Euler steps are scored by MMD² (unbiased, Gretton et al. 2012 eq. 3; Gaussian kernel with the
//   fixed bandwidth σ = 0.5, the scale of the toys' structure: the median heuristic gives σ ≈ 3-4 here, which
//   does not see the blur between modes or cells) and sliced Wasserstein-2
//   (64 directions) against held-out data, beside the same scores of fresh data samples (the noise floor;
//   its spread sets the band within which MMD² values cannot be told apart). Straightness S(Z) (Definition 3.6) along 100-step paths. Plot: bench/generative-rf.svg/png.
// diffusion: one ε-prediction TimeMLP per toy (DDPM loss, eq. 14 of Ho et al.; linear β, T = 1000), sampled by
//   DDPM ancestral steps (1000), DDIM η = 0 (50 and 10 steps) and the VP probability-flow ODE (Heun, 50 steps;
//   the discrete model read at t (T - 1)); MMD² and SW2 against held-out data as above.
// classifier: the 784-256-256-10 MLP behind FID-MNIST (ours, not Inception FID): its test accuracy and the
//   FID-MNIST of real train images vs real test images (the floor any generator is compared with).

import { execFileSync, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import * as T from "../src/index.js";
import { loadMnist } from "../src/data/mnist.js";
import { sampleToy, type Toy } from "../src/data/toys.js";
import { fit } from "../src/generative/fit.js";
import { mmd2, randomDirections, slicedWasserstein } from "../src/generative/metrics.js";
import { classifierAccuracy, fidMnist, trainMnistClassifier } from "../src/generative/mnist-classifier.js";
import { ddimSample } from "../src/generative/ddim.js";
import { ddpmLoss, ddpmSample } from "../src/generative/ddpm.js";
import { discreteTime, pfOdeSample } from "../src/generative/pf-ode.js";
import { diffusionSchedule } from "../src/generative/schedules.js";
import { eulerFlow, rectifiedFlowLoss, type VelocityField } from "../src/generative/rectified-flow.js";
import { TimeMLP } from "../src/generative/time-mlp.js";
import { fmt, printTable } from "./common.js";

const ROOT = new URL("..", import.meta.url).pathname;
const out = (f: string) => join(ROOT, "bench", f);
const now = () => performance.now() / 1000;

const TARGETS: Toy[] = ["moons", "8gaussians", "checkerboard"];
const BATCH = 256, PAIRS = 8192, EVAL = 2000, LR = 1e-3, FLOOR_DRAWS = 5, BANDWIDTH = 0.5;
/** AdamW with nanoGPT's cosine decay (100 warmup steps, down to LR / 10). */
const schedule = (steps: number) => ({ kind: "cosine" as const, lr: LR, minLr: LR / 10, warmupSteps: Math.min(100, steps - 1), decaySteps: steps });

const newNet = (seed: number) => new TimeMLP(2, { hidden: 256, layers: 3, embDim: 64, timeScale: 1000, generator: new T.RandomGenerator(seed) });
const field = (net: TimeMLP): VelocityField => (x, t) => net.forward(x, t);

/** Rows of a [n, d] tensor at the given indices, as a new tensor. */
function rows(x: T.Tensor, idx: Int32Array): T.Tensor {
  const d = x.shape[1], v = x.toTypedArray() as Float32Array, o = new Float32Array(idx.length * d);
  idx.forEach((k, i) => o.set(v.subarray(k * d, (k + 1) * d), i * d));
  return T.tensor(o, { shape: [idx.length, d] });
}

export interface Panel { title: string; pts: Float32Array }

/** A grid of scatter plots (rows of panels), points clipped to [-lim, lim]², as one SVG. */
export function scatterGridSvg(grid: { label: string; panels: Panel[] }[], title: string, lim = 5, n = 1500): string {
  const S = 220, G = 14, L = 110, TOP = 60, cols = grid[0].panels.length;
  const W = L + cols * (S + G), H = TOP + grid.length * (S + G + 18);
  const o = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`, `<text x="${W / 2}" y="22" text-anchor="middle" font-size="16">${title}</text>`];
  grid.forEach((row, r) => {
    const y0 = TOP + r * (S + G + 18);
    o.push(`<text x="8" y="${y0 + S / 2}" font-size="13">${row.label}</text>`);
    row.panels.forEach((p, c) => {
      const x0 = L + c * (S + G);
      o.push(`<rect x="${x0}" y="${y0}" width="${S}" height="${S}" fill="#fafafa" stroke="#999"/>`,
        `<text x="${x0 + S / 2}" y="${y0 - 5}" text-anchor="middle">${p.title}</text>`);
      // one path of 1.2 px squares per panel keeps the file small (a circle element per point would not)
      const d: string[] = [];
      for (let i = 0; i < Math.min(n, p.pts.length / 2); i++) {
        const px = p.pts[2 * i], py = p.pts[2 * i + 1];
        if (Math.abs(px) > lim || Math.abs(py) > lim) continue;
        d.push(`M${(x0 + ((px + lim) / (2 * lim)) * S).toFixed(1)} ${(y0 + S - ((py + lim) / (2 * lim)) * S).toFixed(1)}h1.2v1.2h-1.2z`);
      }
      o.push(`<path d="${d.join("")}" fill="#1f77b4" fill-opacity="0.6"/>`);
    });
  });
  o.push("</svg>");
  return o.join("\n");
}

export function writeSvg(file: string, svg: string): void {
  writeFileSync(out(file), svg);
  const png = file.replace(/\.svg$/, ".png"), rsvg = spawnSync("rsvg-convert", ["--version"]).status === 0;
  if (rsvg) execFileSync("rsvg-convert", ["-o", out(png), out(file)]);
  console.log(`wrote bench/${file}${rsvg ? ` and bench/${png}` : ""}`);
}

function rectifiedFlowPart(steps: number): void {
  const table: (string | number)[][] = [], grid: { label: string; panels: Panel[] }[] = [];
  const summary: Record<string, unknown>[] = [];
  TARGETS.forEach((target, ti) => {
    const gen = new T.RandomGenerator(100 + ti);
    const heldOut = sampleToy(target, EVAL, gen);
    const dirs = randomDirections(64, 2, gen);
    const score = (x: T.Tensor) => ({ mmd2: mmd2(x, heldOut, { bandwidth: BANDWIDTH }).mmd2, sw: slicedWasserstein(x, heldOut, dirs) });
    const z0 = sampleToy("gaussian", EVAL, gen); // the same source points for every sampler

    let t = now();
    const net1 = newNet(ti);
    const l1 = fit(net1, () => rectifiedFlowLoss(field(net1), sampleToy("gaussian", BATCH, gen), sampleToy(target, BATCH, gen), gen), { steps, lr: schedule(steps) });
    const train1 = now() - t;

    t = now();
    const src = sampleToy("gaussian", PAIRS, gen);
    const dst = eulerFlow(field(net1), src, 100).x1;
    const pairTime = now() - t;

    t = now();
    const net2 = newNet(ti);
    net2.loadStateDict(net1.stateDict());
    const l2 = fit(net2, () => {
      const idx = new Int32Array(BATCH);
      gen.randint(idx, PAIRS);
      return rectifiedFlowLoss(field(net2), rows(src, idx), rows(dst, idx), gen);
    }, { steps, lr: schedule(steps) });
    const train2 = now() - t;

    const res: Record<string, { x1: T.Tensor; straightness: number; mmd2: number; sw: number }> = {};
    for (const [name, net] of [["1-RF", net1], ["2-RF", net2]] as const) {
      for (const n of [1, 100]) {
        const r = eulerFlow(field(net), z0, n);
        res[`${name} ${n}`] = { ...r, ...score(r.x1) };
      }
    }
    // the estimator's noise: the scores of FLOOR_DRAWS fresh data samples against the same held-out set
    const floors = Array.from({ length: FLOOR_DRAWS }, () => score(sampleToy(target, EVAL, gen)));
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const floor = { mmd2: mean(floors.map((f) => f.mmd2)), sw: mean(floors.map((f) => f.sw)) };
    const band = 2 * Math.sqrt(mean(floors.map((f) => (f.mmd2 - floor.mmd2) ** 2)) * FLOOR_DRAWS / (FLOOR_DRAWS - 1));
    const tail = (l: Float64Array) => l.subarray(-200).reduce((a, b) => a + b, 0) / 200;
    for (const k of Object.keys(res)) {
      table.push([target, k + (k.endsWith(" 1") ? " step" : " steps"), res[k].mmd2.toExponential(2), fmt(res[k].sw, 3), k.endsWith("100") ? fmt(res[k].straightness, 3) : ""]);
    }
    table.push([target, `data (floor, mean of ${FLOOR_DRAWS})`, floor.mmd2.toExponential(2), fmt(floor.sw, 3), ""]);
    const m = (k: string) => res[k].mmd2;
    summary.push({ target, m11: m("1-RF 1"), m1100: m("1-RF 100"), m21: m("2-RF 1"), m2100: m("2-RF 100"), band,
      // a negative unbiased MMD² means "no difference measured": it counts as 0
      after: m("2-RF 1") <= 2 * Math.max(m("2-RF 100"), 0) + band, before: m("1-RF 1") > 2 * Math.max(m("1-RF 100"), 0) + band,
      loss1: tail(l1), loss2: tail(l2), train1, pairTime, train2 });
    grid.push({ label: target, panels: [
      { title: "data", pts: heldOut.toTypedArray() as Float32Array },
      { title: "1-RF, 1 step", pts: res["1-RF 1"].x1.toTypedArray() as Float32Array },
      { title: "1-RF, 100 steps", pts: res["1-RF 100"].x1.toTypedArray() as Float32Array },
      { title: "2-RF, 1 step", pts: res["2-RF 1"].x1.toTypedArray() as Float32Array },
    ] });
  });
  console.log(`\nrectified flow N(0, I) -> toy: ${steps} steps per flow, batch ${BATCH}, AdamW lr ${LR} cosine to ${LR / 10}; ${PAIRS} ReFlow pairs; ${EVAL} eval points; MMD² bandwidth ${BANDWIDTH}`);
  printTable(["target", "sampler", "MMD²", "SW2", "straightness"], table);
  console.log(`\nclaim: after ReFlow, 1-step MMD² within 2x of 100-step; before ReFlow, 1-step clearly worse. With the
estimator's noise band b = 2 std of the data-vs-data MMD² (${FLOOR_DRAWS} draws): "after" holds if MMD²(2-RF, 1) <= 2 max(MMD²(2-RF, 100), 0) + b,
"before" if MMD²(1-RF, 1) > 2 max(MMD²(1-RF, 100), 0) + b. Ratios of MMD² values inside the band are noise.`);
  const e = (x: unknown) => (x as number).toExponential(2);
  printTable(["target", "1-RF 1 / 100 steps", "2-RF 1 / 100 steps", "band b", "before", "after", "final loss 1-RF / 2-RF", "time train1 / pairs / train2 (s)"],
    summary.map((s) => [s.target as string, `${e(s.m11)} / ${e(s.m1100)}`, `${e(s.m21)} / ${e(s.m2100)}`, e(s.band),
      s.before ? "holds" : "does not hold", s.after ? "holds" : "does not hold",
      `${fmt(s.loss1 as number, 3)} / ${fmt(s.loss2 as number, 3)}`, `${fmt(s.train1 as number)} / ${fmt(s.pairTime as number)} / ${fmt(s.train2 as number)}`]));
  writeSvg("generative-rf.svg", scatterGridSvg(grid, "Rectified flow N(0, I) → toy: 1-RF vs ReFlow (2-RF), Euler steps"));
}

function diffusionPart(steps: number): void {
  const table: (string | number)[][] = [], s = diffusionSchedule("linear", 1000);
  TARGETS.forEach((target, ti) => {
    const gen = new T.RandomGenerator(200 + ti);
    const heldOut = sampleToy(target, EVAL, gen), dirs = randomDirections(64, 2, gen);
    let t = now();
    const net = new TimeMLP(2, { hidden: 256, layers: 3, embDim: 64, generator: new T.RandomGenerator(ti) });
    const eps = (x: T.Tensor, tt: T.Tensor) => net.forward(x, tt);
    fit(net, () => ddpmLoss(eps, s, sampleToy(target, BATCH, gen), gen), { steps, lr: schedule(steps) });
    table.push([target, "train", "", "", fmt(now() - t)]);
    const samplers: [string, () => T.Tensor][] = [
      ["DDPM 1000 steps", () => ddpmSample(eps, s, [EVAL, 2], gen)],
      ["DDIM η=0, 50 steps", () => ddimSample(eps, s, [EVAL, 2], gen, { steps: 50 })],
      ["DDIM η=0, 10 steps", () => ddimSample(eps, s, [EVAL, 2], gen, { steps: 10 })],
      ["PF-ODE Heun, 50 steps", () => pfOdeSample(discreteTime(eps, s.T), [EVAL, 2], gen, { steps: 50, method: "heun" })],
    ];
    for (const [name, run] of samplers) {
      t = now();
      const x = run();
      table.push([target, name, mmd2(x, heldOut, { bandwidth: BANDWIDTH }).mmd2.toExponential(2), fmt(slicedWasserstein(x, heldOut, dirs), 3), fmt(now() - t)]);
    }
  });
  console.log(`\nε-prediction diffusion on the toys: ${steps} training steps, batch ${BATCH}, linear β, T = 1000`);
  printTable(["target", "sampler", "MMD²", "SW2", "time (s)"], table);
}

function classifierPart(): void {
  let t = now();
  const train = loadMnist("train"), test = loadMnist("test");
  const model = trainMnistClassifier(train, { epochs: 5 });
  const trainTime = now() - t;
  const acc = classifierAccuracy(model, test);
  t = now();
  const fid = fidMnist(model, train.images.subarray(0, 10000 * 784), test.images);
  printTable(["model", "epochs", "test accuracy", "train time (s)", "FID-MNIST train[:10k] vs test", "FID time (s)"],
    [["MLP 784-256-256-10", 5, `${fmt(100 * acc, 2)}%`, fmt(trainTime), fmt(fid, 3), fmt(now() - t)]]);
}

export function main(argv: string[]): void {
  const part = argv.find((a) => !a.startsWith("--"));
  const steps = Number(argv.find((a) => a.startsWith("--steps="))?.slice(8) ?? 5000);
  if (!Number.isSafeInteger(steps) || steps < 1) throw new RangeError(`--steps must be a positive integer, got ${steps}`);
  if (part !== undefined && !["rf", "diffusion", "classifier"].includes(part)) throw new RangeError(`unknown part "${part}"; expected rf, diffusion or classifier`);
  if (!part || part === "rf") rectifiedFlowPart(steps);
  if (!part || part === "diffusion") diffusionPart(steps);
  if (!part || part === "classifier") classifierPart();
}
