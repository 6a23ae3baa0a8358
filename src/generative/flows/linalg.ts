// Small dense float64 linear algebra for the 1x1 convolution's C x C weight (C is a few dozen at most):
// LU with partial pivoting (Golub & Van Loan, "Matrix Computations", alg. 3.4.1), the inverse by
// Gauss-Jordan elimination, and a random rotation from the QR of a Gaussian matrix (modified Gram-Schmidt).

import type { RandomGenerator } from "../../tensor/rng.js";

/** A = P L U for row-major A [n, n]: L unit lower, U upper; P as a permutation matrix (row-major). */
export function luDecompose(a: ArrayLike<number>, n: number): { p: Float64Array; l: Float64Array; u: Float64Array } {
  const m = Float64Array.from(a), perm = Array.from({ length: n }, (_, i) => i);
  for (let k = 0; k < n; k++) {
    let piv = k;
    for (let i = k + 1; i < n; i++) if (Math.abs(m[i * n + k]) > Math.abs(m[piv * n + k])) piv = i;
    if (m[piv * n + k] === 0) throw new RangeError("luDecompose: the matrix is singular");
    if (piv !== k) {
      for (let j = 0; j < n; j++) [m[k * n + j], m[piv * n + j]] = [m[piv * n + j], m[k * n + j]];
      [perm[k], perm[piv]] = [perm[piv], perm[k]];
    }
    for (let i = k + 1; i < n; i++) {
      const f = (m[i * n + k] /= m[k * n + k]);
      for (let j = k + 1; j < n; j++) m[i * n + j] -= f * m[k * n + j];
    }
  }
  const p = new Float64Array(n * n), l = new Float64Array(n * n), u = new Float64Array(n * n);
  // row k of P A is row perm[k] of A, so A = P^T (L U): P[perm[k], k] = 1 gives A = P L U
  for (let k = 0; k < n; k++) p[perm[k] * n + k] = 1;
  for (let i = 0; i < n; i++) {
    l[i * n + i] = 1;
    for (let j = 0; j < n; j++) (j < i ? l : u)[i * n + j] = m[i * n + j];
  }
  return { p, l, u };
}

/** The inverse of a row-major [n, n] matrix (Gauss-Jordan with partial pivoting). */
export function invert(a: ArrayLike<number>, n: number): Float64Array {
  const m = Float64Array.from(a), inv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) inv[i * n + i] = 1;
  for (let k = 0; k < n; k++) {
    let piv = k;
    for (let i = k + 1; i < n; i++) if (Math.abs(m[i * n + k]) > Math.abs(m[piv * n + k])) piv = i;
    if (m[piv * n + k] === 0) throw new RangeError("invert: the matrix is singular");
    for (const t of [m, inv]) for (let j = 0; j < n; j++) [t[k * n + j], t[piv * n + j]] = [t[piv * n + j], t[k * n + j]];
    const d = m[k * n + k];
    for (let j = 0; j < n; j++) { m[k * n + j] /= d; inv[k * n + j] /= d; }
    for (let i = 0; i < n; i++) {
      if (i === k) continue;
      const f = m[i * n + k];
      if (f === 0) continue;
      for (let j = 0; j < n; j++) { m[i * n + j] -= f * m[k * n + j]; inv[i * n + j] -= f * inv[k * n + j]; }
    }
  }
  return inv;
}

/** A random orthogonal [n, n] matrix: Q of the QR of a standard Gaussian matrix (Glow's init of W). */
export function randomRotation(n: number, gen: RandomGenerator): Float64Array {
  const q = new Float64Array(n * n);
  gen.normal(q);
  // modified Gram-Schmidt on the columns
  for (let j = 0; j < n; j++) {
    for (let k = 0; k < j; k++) {
      let dot = 0;
      for (let i = 0; i < n; i++) dot += q[i * n + k] * q[i * n + j];
      for (let i = 0; i < n; i++) q[i * n + j] -= dot * q[i * n + k];
    }
    let norm = 0;
    for (let i = 0; i < n; i++) norm += q[i * n + j] ** 2;
    norm = Math.sqrt(norm);
    for (let i = 0; i < n; i++) q[i * n + j] /= norm;
  }
  return q;
}
