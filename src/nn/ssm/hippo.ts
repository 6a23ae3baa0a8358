// HiPPO-LegS (Gu et al. 2020, "HiPPO: Recurrent Memory with Optimal Polynomial Projections", Theorem 2):
// the coefficients c(t) of the projection of a signal's whole history f(s), s in [0, t], onto the scaled
// Legendre basis g_n(s) = sqrt(2n+1) P_n(2s/t - 1) (orthonormal for the uniform measure ds/t) evolve by
//   dc/dt = (1/t) A c + (1/t) B f(t),
//   A_nk = -sqrt(2n+1) sqrt(2k+1) (n > k), -(n+1) (n = k), 0 (n < k);   B_n = sqrt(2n+1)
// (the sign folded into A, as the state-spaces repo's transition('legs') writes it). Discretized per step
// t = 1, 2, ... with the bilinear transform (GBT, alpha = 1/2; the paper's appendix and the HiPPO repo's
// HiPPOScale 'bilinear'): c_t = (I - A/2t)^{-1} ((I + A/2t) c_{t-1} + B/t f_t). Plain Float64Array math:
// these matrices initialize or analyze a state space model, they are not trained.

export interface LegS {
  /** Row-major N x N, lower triangular. */
  A: Float64Array;
  B: Float64Array;
}

function checkN(N: number, what: string): void {
  if (!Number.isInteger(N) || N < 1) throw new RangeError(`${what}: the state size N must be an integer >= 1, got ${N}`);
}

/** The HiPPO-LegS (A, B) of state size N. */
export function legsMatrices(N: number): LegS {
  checkN(N, "legsMatrices");
  const A = new Float64Array(N * N), B = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    B[n] = Math.sqrt(2 * n + 1);
    for (let k = 0; k < n; k++) A[n * N + k] = -Math.sqrt(2 * n + 1) * Math.sqrt(2 * k + 1);
    A[n * N + n] = -(n + 1);
  }
  return { A, B };
}

/**
 * Run the discrete LegS recurrence over the samples f_1 .. f_L (one per unit of time) from c_0 = 0; returns
 * c_L: the Legendre coefficients of the whole history, read back with legsReconstruct.
 */
export function legsEncode(f: ArrayLike<number>, N: number): Float64Array {
  checkN(N, "legsEncode");
  const { A, B } = legsMatrices(N);
  let c = new Float64Array(N);
  const rhs = new Float64Array(N);
  for (let t = 1; t <= f.length; t++) {
    const h = 1 / (2 * t);
    // rhs = (I + A/2t) c + B f_t / t
    for (let n = 0; n < N; n++) {
      let s = c[n] + (B[n] * f[t - 1]) / t;
      for (let k = 0; k <= n; k++) s += h * A[n * N + k] * c[k];
      rhs[n] = s;
    }
    // (I - A/2t) is lower triangular: forward substitution.
    const next = new Float64Array(N);
    for (let n = 0; n < N; n++) {
      let s = rhs[n];
      for (let k = 0; k < n; k++) s += h * A[n * N + k] * next[k];
      next[n] = s / (1 - h * A[n * N + n]);
    }
    c = next;
  }
  return c;
}

/** sqrt(2n+1) P_n(z) for n < N (Bonnet's recurrence), written into out. */
function scaledLegendre(z: number, N: number, out: Float64Array): void {
  let p0 = 1, p1 = z;
  for (let n = 0; n < N; n++) {
    const p = n === 0 ? p0 : p1;
    out[n] = Math.sqrt(2 * n + 1) * p;
    if (n >= 1) {
      const p2 = ((2 * n + 1) * z * p1 - n * p0) / (n + 1);
      p0 = p1;
      p1 = p2;
    }
  }
}

/**
 * The history encoded by c at relative times x in [0, 1] (0 = the first sample, 1 = now):
 * f(x t) ~ sum_n c_n sqrt(2n+1) P_n(2x - 1).
 */
export function legsReconstruct(c: Float64Array, x: ArrayLike<number>): Float64Array {
  checkN(c.length, "legsReconstruct");
  const N = c.length, g = new Float64Array(N), out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    if (!(x[i] >= 0 && x[i] <= 1)) throw new RangeError(`legsReconstruct: relative time ${x[i]} outside [0, 1]`);
    scaledLegendre(2 * x[i] - 1, N, g);
    let s = 0;
    for (let n = 0; n < N; n++) s += c[n] * g[n];
    out[i] = s;
  }
  return out;
}
