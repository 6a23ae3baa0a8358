// The selective scan of Mamba (Gu & Dao 2023, Algorithm 2; shapes and names as mamba_ssm's
// selective_scan_ref): per batch b, channel d and state n,
//   h_t = exp(delta_t A_dn) h_{t-1} + delta_t B_nt u_t,     y_t = sum_n C_nt h_t + D_d u_t,   h_{-1} = 0
// with u, delta [B, D, L], A [D, N], B, C [B, N, L] (input-dependent), D [D]. The caller applies
// softplus / delta bias and the z gate (mamba_ssm's delta_softplus and z options) with ordinary ops.
// This is the js twin (a native kernel is a later step). The backward is a hand-written reverse scan.
// Memory: it saves its inputs and the state at every chunk boundary only ([B, D, ceil(L / chunk), N]);
// the backward recomputes the states inside one chunk at a time from its boundary, so saved memory is
// linear in L and the scratch is one chunk of states. States are carried in float64 whatever the dtype.

import { record, type BackwardCtx } from "../../tensor/autograd.js";
import { fmtShape } from "../../tensor/shape.js";
import { Tensor } from "../../tensor/tensor.js";
import { commonFloat, floatData } from "../../ops/util.js";

export interface ScanOptions {
  /** Steps between saved states (default 64): memory L / chunk * N per channel, recompute one chunk. */
  chunk?: number;
}

export interface ScanResult {
  /** [B, D, L] */
  y: Tensor;
  /** The state after the last step, [B, D, N] float64, no gradient: the start of recurrent decoding. */
  lastState: Tensor;
}

type Arr = Float32Array | Float64Array;

function dims(u: Tensor, delta: Tensor, A: Tensor, Bm: Tensor, C: Tensor, D: Tensor): [number, number, number, number, "float32" | "float64"] {
  const dtype = commonFloat("selectiveScan", u, delta, A, Bm, C, D);
  if (u.ndim !== 3) throw new RangeError(`selectiveScan: u must be [B, D, L], got ${fmtShape(u.shape)}`);
  const [b, d, L] = u.shape;
  if (A.ndim !== 2 || A.shape[0] !== d) throw new RangeError(`selectiveScan: A must be [D=${d}, N], got ${fmtShape(A.shape)}`);
  const n = A.shape[1];
  if (n < 1) throw new RangeError(`selectiveScan: the state size N (A's second dim) must be >= 1, got ${n}`);
  const want = (name: string, t: Tensor, s: number[]) => {
    if (t.ndim !== s.length || t.shape.some((x, i) => x !== s[i])) throw new RangeError(`selectiveScan: ${name} must be ${fmtShape(s)}, got ${fmtShape(t.shape)}`);
  };
  want("delta", delta, [b, d, L]);
  want("B", Bm, [b, n, L]);
  want("C", C, [b, n, L]);
  want("D", D, [d]);
  return [b, d, n, L, dtype];
}

/** The selective scan: y [B, D, L] differentiable in u, delta, A, B, C, D; see the file comment. */
export function selectiveScan(u: Tensor, delta: Tensor, A: Tensor, Bm: Tensor, C: Tensor, D: Tensor, o: ScanOptions = {}): ScanResult {
  const [nb, nd, nn, L, dtype] = dims(u, delta, A, Bm, C, D);
  const chunk = o.chunk ?? 64;
  if (!Number.isInteger(chunk) || chunk < 1) throw new RangeError(`selectiveScan: chunk must be an integer >= 1, got ${chunk}`);
  const nc = Math.ceil(L / chunk);
  const [ud, dd, ad, bd, cd, Dd] = [u, delta, A, Bm, C, D].map((t) => floatData(t, "selectiveScan"));
  const y = Tensor.empty([nb, nd, L], dtype);
  const yd = y.data as Arr;
  const ck = Tensor.zeros([nb, nd, nc, nn], "float64");
  const ckd = ck.data as Float64Array;
  const last = Tensor.zeros([nb, nd, nn], "float64");
  const h = new Float64Array(nn);
  for (let b = 0; b < nb; b++) {
    for (let d = 0; d < nd; d++) {
      h.fill(0);
      const row = (b * nd + d) * L;
      for (let t = 0; t < L; t++) {
        if (t % chunk === 0) ckd.set(h, ((b * nd + d) * nc + t / chunk) * nn);
        const dt = dd[row + t], x = ud[row + t];
        let s = 0;
        for (let n = 0; n < nn; n++) {
          const bc = (b * nn + n) * L + t;
          h[n] = Math.exp(dt * ad[d * nn + n]) * h[n] + dt * bd[bc] * x;
          s += cd[bc] * h[n];
        }
        yd[row + t] = s + Dd[d] * x;
      }
      (last.data as Float64Array).set(h, (b * nd + d) * nn);
    }
  }
  // The backward reads the inputs from ctx.saved (counted by memory accounting), not from this closure.
  const back = (gy: Tensor, ctx: BackwardCtx) => {
    const ins = ctx.saved.slice(0, 6).map((t) => floatData(t, "selectiveScan"));
    return scanBackward(floatData(gy, "selectiveScan"), ins, ctx.saved[6].data as Float64Array, [nb, nd, nn, L], chunk, dtype)
      .map((g, i) => (ctx.needsInputGrad[i] ? g : null));
  };
  record(y, "selectiveScan", [u, delta, A, Bm, C, D], back, [u, delta, A, Bm, C, D, ck]);
  return { y, lastState: last };
}

/** Reverse scan: gh is dLoss/dh_t, carried back through h_t = dA_t h_{t-1} + ... as gh * dA_t. */
function scanBackward(gy: Arr, [ud, dd, ad, bd, cd, Dd]: Arr[], ckd: Float64Array, [nb, nd, nn, L]: number[], chunk: number, dtype: "float32" | "float64"): Tensor[] {
  const nc = Math.ceil(L / chunk);
  const gu = Tensor.zeros([nb, nd, L], dtype), gdelta = Tensor.zeros([nb, nd, L], dtype);
  const gA = new Float64Array(nd * nn), gB = new Float64Array(nb * nn * L), gC = new Float64Array(nb * nn * L), gD = new Float64Array(nd);
  const gud = gu.data as Arr, gdd = gdelta.data as Arr;
  // hs[(i + 1) * nn + n] = h at step (chunk start + i); hs[0..nn) = the state before the chunk.
  const hs = new Float64Array((chunk + 1) * nn), gh = new Float64Array(nn);
  for (let b = 0; b < nb; b++) {
    for (let d = 0; d < nd; d++) {
      const row = (b * nd + d) * L;
      gh.fill(0);
      for (let c = nc - 1; c >= 0; c--) {
        const t0 = c * chunk, t1 = Math.min(L, t0 + chunk);
        hs.set(ckd.subarray(((b * nd + d) * nc + c) * nn, ((b * nd + d) * nc + c + 1) * nn), 0);
        for (let t = t0; t < t1; t++) {
          const dt = dd[row + t], x = ud[row + t], o = (t - t0 + 1) * nn;
          for (let n = 0; n < nn; n++) hs[o + n] = Math.exp(dt * ad[d * nn + n]) * hs[o - nn + n] + dt * bd[(b * nn + n) * L + t] * x;
        }
        for (let t = t1 - 1; t >= t0; t--) {
          const g = gy[row + t], dt = dd[row + t], x = ud[row + t], o = (t - t0 + 1) * nn;
          let gx = g * Dd[d], gdt = 0;
          gD[d] += g * x;
          for (let n = 0; n < nn; n++) {
            const bc = (b * nn + n) * L + t, a = ad[d * nn + n], dA = Math.exp(dt * a);
            gC[bc] += g * hs[o + n];
            const ghn = gh[n] + g * cd[bc];
            const gdA = ghn * hs[o - nn + n] * dA;
            gdt += gdA * a + ghn * bd[bc] * x;
            gA[d * nn + n] += gdA * dt;
            gB[bc] += ghn * dt * x;
            gx += ghn * dt * bd[bc];
            gh[n] = ghn * dA;
          }
          gud[row + t] = gx;
          gdd[row + t] = gdt;
        }
      }
    }
  }
  const as = (a: Float64Array, shape: number[]) => {
    const t = Tensor.empty(shape, dtype);
    (t.data as Arr).set(a);
    return t;
  };
  return [gu, gdelta, as(gA, [nd, nn]), as(gB, [nb, nn, L]), as(gC, [nb, nn, L]), as(gD, [nd])];
}
