// Generative-model foundations (issue 20). Usage: npm run bench -- generative [rf|diffusion|classifier|pfgm] [--steps=N]
// (--steps: training steps per network, default 5000). On a shared machine TSFORMER_THREADS=1 runs these small
// MLPs fastest (a busy thread pool only waits).
//
// rf: the ReFlow claim of Liu et al. 2022 ("Flow Straight and Fast", sec. 2.2-3; Su, kexue.fm/archives/9497)
//   on 2D toys. For each target (moons, 8 gaussians, checkerboard; FFJORD's definitions) from N(0, I):
//   1-RF = a TimeMLP velocity trained on independent pairs (X0, X1) by eq. 1; ReFlow draws fresh X0, pushes
//   them through 1-RF with 100 Euler steps to get coupled pairs (Z0, Z1), and trains 2-RF on those pairs,
//   starting from 1-RF's weights (as the paper's reflow runs continue from the previous flow). The paper's
//   remedies for a remaining 1-step gap, each from the previous network's weights with the same step budget:
//   2-RF on 8x the pairs (the paper reflows CIFAR-10 on 4M pairs), and one-step distillation of that 2-RF on
//   its own 100-step pairs (sec. 2.3, loss at t = 0 only). Samples of 1 and 100 Euler steps are scored by MMD² (unbiased, Gretton et al. 2012 eq. 3; Gaussian kernel with the
//   fixed bandwidth σ = 0.5, the scale of the toys' structure: the median heuristic gives σ ≈ 3-4 here, which
//   does not see the blur between modes or cells) and sliced Wasserstein-2
//   (64 directions) against held-out data, beside the same scores of fresh data samples (the noise floor;
//   its spread sets the band within which MMD² values cannot be told apart). Straightness S(Z) (Definition 3.6) along 100-step paths. Plot: bench/generative-rf.svg/png.
// diffusion: one ε-prediction TimeMLP per toy (DDPM loss, eq. 14 of Ho et al.; linear β, T = 1000), sampled by
//   DDPM ancestral steps (1000), DDIM η = 0 (50 and 10 steps) and the VP probability-flow ODE (Heun, 50 steps;
//   the discrete model read at t (T - 1)); MMD² and SW2 against held-out data as above.
// classifier: the 784-256-256-10 MLP behind FID-MNIST (ours, not Inception FID): its test accuracy and the
//   FID-MNIST of real train images vs real test images (the floor any generator is compared with).
// pfgm: Poisson flow (Xu et al. 2022; src/generative/pfgm.ts) per toy: a TimeMLP on (x, z) trained to the
//   normalized empirical field (Algorithm 1), sampled by the backward ODE in ln z (Euler 100 and 20 steps,
//   Heun 50) from the hemisphere prior on the z = 40 plane; MMD² and SW2 against held-out data beside the
//   data-vs-data floor, as above. Plot: bench/generative-pfgm.svg/png.

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
import { distillLoss, eulerFlow, rectifiedFlowLoss, type VelocityField } from "../src/generative/rectified-flow.js";
import { pfgmConfig, pfgmLoss, pfgmPrior, pfgmSample, timeMlpField } from "../src/generative/pfgm.js";
import { TimeMLP } from "../src/generative/time-mlp.js";
import { fmt, printTable } from "./common.js";

const ROOT = new URL("..", import.meta.url).pathname;
const out = (f: string) => join(ROOT, "bench", f);
const now = () => performance.now() / 1000;

const TARGETS: Toy[] = ["moons", "8gaussians", "checkerboard"];
/**
 * PFGM on the toys: the reference's CIFAR-10 constants except two. γ sets the field norm below which the
 * target shrinks (5 there, for ||x|| ≈ 30-55; the toys live within ≈ 4). The prior's norm clip sits just
 * above the prior's bulk there (N = 3072); in 2D the radius law ∝ R / (R² + z²)^{3/2} is heavy-tailed and
 * the trained field is not accurate enough where it is nearly horizontal (starts far out lag behind their
 * field line and blow up), so norms are clipped at 3 z_max: the hemisphere below 18° elevation (32% of the
 * draws) starts on that ring.
 */
const PFGM_2D = { gamma: 0.01, upperNorm: 120 }, PFGM_LARGE = 1024;
const BATCH = 256, PAIRS = 8192, BIG_PAIRS = 65536, EVAL = 2000, LR = 1e-3, FLOOR_DRAWS = 5, BANDWIDTH = 0.5;
/** AdamW with nanoGPT's cosine decay (100 warmup steps, down to LR / 10). */
const schedule = (steps: number) => ({ kind: "cosine" as const, lr: LR, minLr: LR / 10, warmupSteps: Math.min(100, steps - 1), decaySteps: steps });

const newNet = (seed: number) => new TimeMLP(2, { hidden: 256, layers: 3, embDim: 64, timeScale: 1000, generator: new T.RandomGenerator(seed) });
const field = (net: TimeMLP): VelocityField => (x, t) => net.forward(x, t);
/** The mean of a loss curve's last 200 steps. */
const tail = (l: Float64Array) => l.subarray(-200).reduce((a, b) => a + b, 0) / 200;

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

type Score = (x: T.Tensor) => { mmd2: number; sw: number };

/**
 * The estimator's noise: the mean scores of FLOOR_DRAWS fresh data samples against the same held-out set,
 * and the band b = 2 std of their MMD² within which MMD² values cannot be told apart.
 */
function noiseFloor(target: Toy, score: Score, gen: T.RandomGenerator): { floor: { mmd2: number; sw: number }; band: number } {
  const floors = Array.from({ length: FLOOR_DRAWS }, () => score(sampleToy(target, EVAL, gen)));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const floor = { mmd2: mean(floors.map((f) => f.mmd2)), sw: mean(floors.map((f) => f.sw)) };
  return { floor, band: 2 * Math.sqrt(mean(floors.map((f) => (f.mmd2 - floor.mmd2) ** 2)) * FLOOR_DRAWS / (FLOOR_DRAWS - 1)) };
}

function rectifiedFlowPart(steps: number): void {
  const table: (string | number)[][] = [], grid: { label: string; panels: Panel[] }[] = [];
  const summary: Record<string, unknown>[] = [];
  TARGETS.forEach((target, ti) => {
    const gen = new T.RandomGenerator(100 + ti);
    const heldOut = sampleToy(target, EVAL, gen);
    const dirs = randomDirections(64, 2, gen);
    const score: Score = (x) => ({ mmd2: mmd2(x, heldOut, { bandwidth: BANDWIDTH }).mmd2, sw: slicedWasserstein(x, heldOut, dirs) });
    const z0 = sampleToy("gaussian", EVAL, gen); // the same source points for every sampler

    let t = now();
    const net1 = newNet(ti);
    const l1 = fit(net1, () => rectifiedFlowLoss(field(net1), sampleToy("gaussian", BATCH, gen), sampleToy(target, BATCH, gen), gen), { steps, lr: schedule(steps) });
    const train1 = now() - t;

    // a new network from `teacher`'s weights, trained by `loss` on `pairs` pairs (Z0, Z1 = 100 Euler steps of teacher)
    const onPairs = (teacher: TimeMLP, pairs: number, g: T.RandomGenerator, loss: (v: VelocityField, a: T.Tensor, b: T.Tensor) => T.Tensor) => {
      let t0 = now();
      const src = sampleToy("gaussian", pairs, g), dst = eulerFlow(field(teacher), src, 100).x1;
      const pairTime = now() - t0;
      t0 = now();
      const net = newNet(ti);
      net.loadStateDict(teacher.stateDict());
      const l = fit(net, () => {
        const idx = new Int32Array(BATCH);
        g.randint(idx, pairs);
        return loss(field(net), rows(src, idx), rows(dst, idx));
      }, { steps, lr: schedule(steps) });
      return { net, final: tail(l), pairTime, train: now() - t0 };
    };
    const rf = (g: T.RandomGenerator) => (v: VelocityField, a: T.Tensor, b: T.Tensor) => rectifiedFlowLoss(v, a, b, g);
    const r2 = onPairs(net1, PAIRS, gen, rf(gen));
    // the paper's remedies for a 1-step gap (sec. 2.3, 5): more reflow pairs, then one-step distillation of that
    // 2-RF on its own pairs; their own generator keeps the first runs' draws (and figures) unchanged
    const gen2 = new T.RandomGenerator(1000 + ti);
    const r2b = onPairs(net1, BIG_PAIRS, gen2, rf(gen2));
    const rd = onPairs(r2b.net, BIG_PAIRS, gen2, distillLoss);

    const res: Record<string, { x1: T.Tensor; straightness: number; mmd2: number; sw: number }> = {};
    const nets = [["1-RF", net1, [1, 100]], ["2-RF", r2.net, [1, 100]], [`2-RF ${BIG_PAIRS / 1024}k`, r2b.net, [1, 100]], ["distilled", rd.net, [1]]] as const;
    for (const [name, net, ns] of nets) {
      for (const n of ns) {
        const r = eulerFlow(field(net), z0, n);
        res[`${name} ${n}`] = { ...r, ...score(r.x1) };
      }
    }
    const { floor, band } = noiseFloor(target, score, gen);
    for (const k of Object.keys(res)) {
      table.push([target, k + (k.endsWith(" 1") ? " step" : " steps"), res[k].mmd2.toExponential(2), fmt(res[k].sw, 3), k.endsWith("100") ? fmt(res[k].straightness, 3) : ""]);
    }
    table.push([target, `data (floor, mean of ${FLOOR_DRAWS})`, floor.mmd2.toExponential(2), fmt(floor.sw, 3), ""]);
    const m = (k: string) => res[k].mmd2, big = `2-RF ${BIG_PAIRS / 1024}k`;
    // a negative unbiased MMD² means "no difference measured": it counts as 0
    const within = (one: string, many: string) => m(one) <= 2 * Math.max(m(many), 0) + band;
    summary.push({ target, band, before: !within("1-RF 1", "1-RF 100"),
      after: within("2-RF 1", "2-RF 100"), afterBig: within(`${big} 1`, `${big} 100`), afterDistill: within("distilled 1", `${big} 100`),
      losses: [tail(l1), r2.final, r2b.final, rd.final], times: [train1, r2.pairTime, r2.train, r2b.pairTime, r2b.train, rd.pairTime, rd.train] });
    const pts = (k: string) => res[k].x1.toTypedArray() as Float32Array;
    grid.push({ label: target, panels: [{ title: "data", pts: heldOut.toTypedArray() as Float32Array },
      { title: "1-RF, 1 step", pts: pts("1-RF 1") }, { title: "1-RF, 100 steps", pts: pts("1-RF 100") },
      { title: "2-RF, 1 step", pts: pts("2-RF 1") }, { title: `${big}, 1 step`, pts: pts(`${big} 1`) }, { title: "distilled, 1 step", pts: pts("distilled 1") }] });
  });
  console.log(`\nrectified flow N(0, I) -> toy: ${steps} steps per network, batch ${BATCH}, AdamW lr ${LR} cosine to ${LR / 10}; 2-RF on ${PAIRS} pairs, ` +
    `2-RF ${BIG_PAIRS / 1024}k on ${BIG_PAIRS}, distilled = 2-RF ${BIG_PAIRS / 1024}k distilled on ${BIG_PAIRS} of its pairs; ${EVAL} eval points; MMD² bandwidth ${BANDWIDTH}`);
  printTable(["target", "sampler", "MMD²", "SW2", "straightness"], table);
  console.log(`\nclaim: after ReFlow, 1-step MMD² within 2x of 100-step; before ReFlow, 1-step clearly worse. With the
estimator's noise band b = 2 std of the data-vs-data MMD² (${FLOOR_DRAWS} draws): "after" holds if MMD²(2-RF, 1) <= 2 max(MMD²(2-RF, 100), 0) + b
(the distilled 1-step map is held to its teacher's 100 steps), "before" if MMD²(1-RF, 1) > 2 max(MMD²(1-RF, 100), 0) + b.
Ratios of MMD² values inside the band are noise.`);
  const e = (x: unknown) => (x as number).toExponential(2), holds = (x: unknown) => (x ? "holds" : "does not hold");
  printTable(["target", "band b", "before", `after: 2-RF / 2-RF ${BIG_PAIRS / 1024}k / distilled`, "final loss 1-RF / 2-RF / big / distilled",
    "time (s) train1, pairs + train: 2-RF / big / distill"],
    summary.map((s) => [s.target as string, e(s.band), holds(s.before), [s.after, s.afterBig, s.afterDistill].map(holds).join(" / "),
      (s.losses as number[]).map((x) => fmt(x, 3)).join(" / "),
      ((t: number[]) => `${fmt(t[0])}, ${fmt(t[1])} + ${fmt(t[2])} / ${fmt(t[3])} + ${fmt(t[4])} / ${fmt(t[5])} + ${fmt(t[6])}`)(s.times as number[])]));
  writeSvg("generative-rf.svg", scatterGridSvg(grid, "Rectified flow N(0, I) → toy: 1-RF, ReFlow (2-RF), more pairs, distillation; Euler steps"));
}

function pfgmPart(steps: number): void {
  const table: (string | number)[][] = [], grid: { label: string; panels: Panel[] }[] = [], cfg = pfgmConfig(PFGM_2D);
  TARGETS.forEach((target, ti) => {
    const gen = new T.RandomGenerator(300 + ti);
    const heldOut = sampleToy(target, EVAL, gen), dirs = randomDirections(64, 2, gen);
    const score: Score = (x) => ({ mmd2: mmd2(x, heldOut, { bandwidth: BANDWIDTH }).mmd2, sw: slicedWasserstein(x, heldOut, dirs) });
    let t = now();
    const net = new TimeMLP(3, { hidden: 256, layers: 3, embDim: 64, generator: new T.RandomGenerator(ti) }), f = timeMlpField(net);
    const l = fit(net, () => pfgmLoss(f, sampleToy(target, BATCH, gen), sampleToy(target, PFGM_LARGE, gen), gen, cfg), { steps, lr: schedule(steps),
      onStep: (i, loss) => { if ((i + 1) % 1000 === 0) console.log(`pfgm ${target}: step ${i + 1}/${steps}, loss ${fmt(loss, 4)}, ${fmt(now() - t)} s`); } });
    table.push([target, "train", `loss ${fmt(tail(l), 4)}`, "", "", fmt(now() - t)]);
    const x0 = pfgmPrior(EVAL, 2, gen, cfg), panels: Panel[] = [{ title: "data", pts: heldOut.toTypedArray() as Float32Array }];
    for (const [n, method] of [[100, "euler"], [50, "heun"], [20, "euler"]] as const) {
      t = now();
      const x = pfgmSample(f, x0, { steps: n, method, zMax: cfg.zMax, zMin: cfg.zMin }), sc = score(x), name = `${method === "euler" ? "Euler" : "Heun"}, ${n} steps`;
      const v = x.toTypedArray() as Float32Array;
      let out = 0; // samples that end outside the toys' range (|x| > 6 or not finite): MMD² hardly sees them, SW2 does
      for (let i = 0; i < EVAL; i++) if (!(Math.hypot(v[2 * i], v[2 * i + 1]) <= 6)) out++;
      table.push([target, name, sc.mmd2.toExponential(2), fmt(sc.sw, 3), out, fmt(now() - t)]);
      panels.push({ title: name, pts: x.toTypedArray() as Float32Array });
    }
    const { floor, band } = noiseFloor(target, score, gen);
    table.push([target, `data (floor, mean of ${FLOOR_DRAWS}; band ${band.toExponential(1)})`, floor.mmd2.toExponential(2), fmt(floor.sw, 3), "", ""]);
    grid.push({ label: target, panels });
  });
  console.log(`\nPFGM on the toys: ${steps} training steps, batch ${BATCH} perturbed points, field over ${PFGM_LARGE} data points; ` +
    `σ ${cfg.sigma}, τ ${cfg.tau}, M ${cfg.M}, γ ${cfg.gamma}, z ${cfg.zMax} -> ${cfg.zMin} in ln z, prior norms in [1, ${cfg.upperNorm}]`);
  printTable(["target", "sampler", "MMD²", "SW2", `outside |x| <= 6 (of ${EVAL})`, "time (s)"], table);
  writeSvg("generative-pfgm.svg", scatterGridSvg(grid, "PFGM on the 2D toys: the backward ODE in ln z from the z = 40 plane"));
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
  if (part !== undefined && !["rf", "diffusion", "classifier", "pfgm"].includes(part)) throw new RangeError(`unknown part "${part}"; expected rf, diffusion, classifier or pfgm`);
  if (!part || part === "rf") rectifiedFlowPart(steps);
  if (!part || part === "diffusion") diffusionPart(steps);
  if (!part || part === "classifier") classifierPart();
  if (!part || part === "pfgm") pfgmPart(steps);
}
