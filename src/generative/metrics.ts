// Sample-quality metrics between two point sets X [m, d] and Y [n, d], computed in float64:
// - MMD² with a Gaussian kernel, the unbiased estimator of Gretton et al. 2012 ("A Kernel Two-Sample
//   Test", JMLR 13, eq. 3);
// - the sliced Wasserstein distance (Bonneel et al. 2015; Kolouri et al. 2019): W_p of the 1D projections
//   on random unit directions, averaged over directions;
// - the Fréchet distance between Gaussians fitted to two feature sets (Dowson & Landau 1982; the FID of
//   Heusel et al. 2017 applies it to Inception features): ||mu1 - mu2||² + Tr(S1 + S2 - 2 (S1 S2)^{1/2}).

import { symmetricEigen } from "../peft/extract.js";
import { floatData } from "../ops/util.js";
import type { RandomGenerator } from "../tensor/rng.js";
import type { Tensor } from "../tensor/tensor.js";

interface Points { v: Float64Array; n: number; d: number }

function points(t: Tensor, what: string, fn: string): Points {
  if (t.ndim !== 2 || t.shape[0] < 2) throw new RangeError(`${fn}: ${what} must be a [n, d] tensor with n >= 2, got shape [${t.shape.join(", ")}]`);
  return { v: Float64Array.from(floatData(t, fn)), n: t.shape[0], d: t.shape[1] };
}

function sameDim(a: Points, b: Points, fn: string): void {
  if (a.d !== b.d) throw new RangeError(`${fn}: X has ${a.d} features per point, Y has ${b.d}`);
}

function sqDist(a: Float64Array, i: number, b: Float64Array, j: number, d: number): number {
  let s = 0;
  for (let k = 0; k < d; k++) { const t = a[i * d + k] - b[j * d + k]; s += t * t; }
  return s;
}

/** The median heuristic (Gretton et al. 2012, sec. 8): the median pairwise Euclidean distance of the pooled points. */
export function medianBandwidth(x: Tensor, y?: Tensor): number {
  const a = points(x, "X", "medianBandwidth"), b = y ? points(y, "Y", "medianBandwidth") : null;
  if (b) sameDim(a, b, "medianBandwidth");
  const z = b ? Float64Array.from([...a.v, ...b.v]) : a.v, n = a.n + (b?.n ?? 0), d = a.d;
  const ds = new Float64Array((n * (n - 1)) / 2);
  let k = 0;
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) ds[k++] = Math.sqrt(sqDist(z, i, z, j, d));
  ds.sort();
  const m = ds.length;
  return m % 2 ? ds[(m - 1) / 2] : (ds[m / 2 - 1] + ds[m / 2]) / 2;
}

/**
 * Unbiased MMD² (Gretton et al. 2012, eq. 3) with k(x, y) = exp(-||x - y||² / (2 σ²)):
 * 1/(m(m-1)) Σ_{i≠j} k(x_i, x_j) + 1/(n(n-1)) Σ_{i≠j} k(y_i, y_j) - 2/(mn) Σ_{i,j} k(x_i, y_j).
 * σ is `bandwidth`: a fixed number, or "median" (the median heuristic on the pooled sample). The estimate
 * can be slightly negative when the distributions are equal.
 */
export function mmd2(x: Tensor, y: Tensor, o: { bandwidth?: number | "median" } = {}): { mmd2: number; bandwidth: number } {
  const a = points(x, "X", "mmd2"), b = points(y, "Y", "mmd2");
  sameDim(a, b, "mmd2");
  const bw = o.bandwidth ?? "median";
  const sigma = bw === "median" ? medianBandwidth(x, y) : bw;
  if (!(typeof sigma === "number" && sigma > 0 && Number.isFinite(sigma))) throw new RangeError(`mmd2: bandwidth must be a finite number > 0 or "median", got ${sigma}`);
  const g = -1 / (2 * sigma * sigma), d = a.d;
  const within = (p: Points) => {
    let s = 0;
    for (let i = 0; i < p.n; i++) for (let j = i + 1; j < p.n; j++) s += Math.exp(g * sqDist(p.v, i, p.v, j, d));
    return (2 * s) / (p.n * (p.n - 1));
  };
  let cross = 0;
  for (let i = 0; i < a.n; i++) for (let j = 0; j < b.n; j++) cross += Math.exp(g * sqDist(a.v, i, b.v, j, d));
  return { mmd2: within(a) + within(b) - (2 * cross) / (a.n * b.n), bandwidth: sigma };
}

/** L unit directions in R^d, rows of a [L, d] array: normalized N(0, I) draws (uniform on the sphere). */
export function randomDirections(L: number, d: number, gen: RandomGenerator): Float64Array {
  const th = new Float64Array(L * d);
  gen.normal(th);
  for (let l = 0; l < L; l++) {
    let s = 0;
    for (let k = 0; k < d; k++) s += th[l * d + k] ** 2;
    const r = 1 / Math.sqrt(s);
    for (let k = 0; k < d; k++) th[l * d + k] *= r;
  }
  return th;
}

/**
 * Sliced Wasserstein-p: (1/L Σ_l W_p^p(θ_l·X, θ_l·Y))^{1/p}, where the 1D W_p^p of two equal-size samples
 * is the mean of |x_(i) - y_(i)|^p over the sorted projections. `directions` [L, d] row-major (unit rows),
 * e.g. randomDirections(L, d, gen).
 */
export function slicedWasserstein(x: Tensor, y: Tensor, directions: Float64Array, o: { p?: number } = {}): number {
  const a = points(x, "X", "slicedWasserstein"), b = points(y, "Y", "slicedWasserstein");
  sameDim(a, b, "slicedWasserstein");
  if (a.n !== b.n) throw new RangeError(`slicedWasserstein: X and Y must have the same number of points, got ${a.n} and ${b.n}`);
  const d = a.d, L = directions.length / d, p = o.p ?? 2;
  if (!Number.isInteger(L) || L < 1) throw new RangeError(`slicedWasserstein: directions must hold L x ${d} values (L >= 1), got ${directions.length}`);
  if (!(p >= 1)) throw new RangeError(`slicedWasserstein: p must be >= 1, got ${p}`);
  const project = (q: Points, l: number) => {
    const out = new Float64Array(q.n);
    for (let i = 0; i < q.n; i++) { let s = 0; for (let k = 0; k < d; k++) s += q.v[i * d + k] * directions[l * d + k]; out[i] = s; }
    return out.sort();
  };
  let total = 0;
  for (let l = 0; l < L; l++) {
    const px = project(a, l), py = project(b, l);
    let s = 0;
    for (let i = 0; i < a.n; i++) s += Math.abs(px[i] - py[i]) ** p;
    total += s / a.n;
  }
  return (total / L) ** (1 / p);
}

/** Mean and unbiased covariance (n - 1, as numpy.cov) of the rows. */
export function gaussianFit(x: Tensor): { mean: Float64Array; cov: Float64Array; d: number } {
  const { v, n, d } = points(x, "features", "gaussianFit");
  const mean = new Float64Array(d), cov = new Float64Array(d * d), c = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let k = 0; k < d; k++) mean[k] += v[i * d + k] / n;
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < d; k++) c[k] = v[i * d + k] - mean[k];
    for (let j = 0; j < d; j++) { const cj = c[j]; if (cj !== 0) for (let k = j; k < d; k++) cov[j * d + k] += cj * c[k]; }
  }
  for (let j = 0; j < d; j++) for (let k = j; k < d; k++) { cov[j * d + k] /= n - 1; cov[k * d + j] = cov[j * d + k]; }
  return { mean, cov, d };
}

/** A (d x d) times B (d x d), row-major. */
function matmul(a: Float64Array, b: Float64Array, d: number): Float64Array {
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let k = 0; k < d; k++) { const aik = a[i * d + k]; if (aik !== 0) for (let j = 0; j < d; j++) out[i * d + j] += aik * b[k * d + j]; }
  return out;
}

/**
 * Fréchet distance of N(mu1, S1) and N(mu2, S2). Tr (S1 S2)^{1/2} = Tr (S1^{1/2} S2 S1^{1/2})^{1/2}, and
 * the latter is symmetric PSD: its eigenvalues (cyclic Jacobi, float64) give the trace as Σ sqrt(λ).
 * Eigenvalues that rounding leaves slightly negative are taken as 0.
 */
export function frechetDistance(f1: { mean: Float64Array; cov: Float64Array; d: number }, f2: { mean: Float64Array; cov: Float64Array; d: number }): number {
  const d = f1.d;
  if (f2.d !== d) throw new RangeError(`frechetDistance: feature sizes differ (${d} and ${f2.d})`);
  const e = symmetricEigen(f1.cov, d);
  const sq = new Float64Array(d * d); // S1^{1/2} = V diag(sqrt λ) V^T
  for (let i = 0; i < d; i++) {
    for (let j = i; j < d; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += e.vectors[i * d + k] * Math.sqrt(Math.max(e.values[k], 0)) * e.vectors[j * d + k];
      sq[i * d + j] = s; sq[j * d + i] = s;
    }
  }
  const m = matmul(matmul(sq, f2.cov, d), sq, d);
  for (let i = 0; i < d; i++) for (let j = i + 1; j < d; j++) { const s = (m[i * d + j] + m[j * d + i]) / 2; m[i * d + j] = s; m[j * d + i] = s; }
  let trSqrt = 0, tr = 0, dm = 0;
  for (const l of symmetricEigen(m, d).values) trSqrt += Math.sqrt(Math.max(l, 0));
  for (let i = 0; i < d; i++) { tr += f1.cov[i * d + i] + f2.cov[i * d + i]; dm += (f1.mean[i] - f2.mean[i]) ** 2; }
  return dm + tr - 2 * trSqrt;
}

/** Fréchet distance between Gaussians fitted to two feature sets [n, d] (FID's formula on any features). */
export function frechetFeatureDistance(x: Tensor, y: Tensor): number {
  return frechetDistance(gaussianFit(x), gaussianFit(y));
}
