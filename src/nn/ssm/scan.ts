// The selective scan of Mamba (Gu & Dao 2023, Algorithm 2; shapes and names as mamba_ssm's
// selective_scan_ref): per batch b, channel d and state n,
//   h_t = exp(delta_t A_dn) h_{t-1} + delta_t B_nt u_t,     y_t = sum_n C_nt h_t + D_d u_t,   h_{-1} = h0 (default 0)
// with u, delta [B, D, L], A [D, N], B, C [B, N, L] (input-dependent), D [D]. The caller applies
// softplus / delta bias and the z gate (mamba_ssm's delta_softplus and z options) with ordinary ops.
// The kernels are the backend's (selectiveScan / selectiveScanBackward: native/ssm/ for float32, the js
// twin backend/js/scan.ts otherwise); the backward is a hand-written reverse scan.
// Memory: it saves its inputs and the state at every chunk boundary only ([B, D, ceil(L / chunk), N],
// float64); the backward recomputes the states inside one chunk at a time from its boundary, so saved
// memory is linear in L and the scratch is one chunk of states.

import type { FloatArray } from "../../backend/backend.js";
import { record, type BackwardCtx } from "../../tensor/autograd.js";
import { fmtShape } from "../../tensor/shape.js";
import { Tensor } from "../../tensor/tensor.js";
import { commonFloat, floatData } from "../../ops/util.js";
import { backend } from "../../backend/registry.js";

export interface ScanOptions {
  /** Steps between saved states (default 64): memory L / chunk * N per channel, recompute one chunk. */
  chunk?: number;
  /** The state before the first step, [B, D, N] (default zeros; a decoding state, no gradient). */
  h0?: Tensor | null;
}

export interface ScanResult {
  /** [B, D, L] */
  y: Tensor;
  /** The state after the last step, [B, D, N] float64, no gradient: the start of recurrent decoding. */
  lastState: Tensor;
}

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
  const [b, d, n, L, dtype] = dims(u, delta, A, Bm, C, D);
  const chunk = o.chunk ?? 64;
  if (!Number.isInteger(chunk) || chunk < 1) throw new RangeError(`selectiveScan: chunk must be an integer >= 1, got ${chunk}`);
  if (o.h0 && (o.h0.ndim !== 3 || o.h0.shape[0] !== b || o.h0.shape[1] !== d || o.h0.shape[2] !== n)) throw new RangeError(`selectiveScan: h0 must be ${fmtShape([b, d, n])}, got ${fmtShape(o.h0.shape)}`);
  const h0 = o.h0 ? Float64Array.from(floatData(o.h0, "selectiveScan")) : null;
  const [ud, dd, ad, bd, cd, Dd] = [u, delta, A, Bm, C, D].map((t) => floatData(t, "selectiveScan"));
  const y = Tensor.empty([b, d, L], dtype);
  const ck = Tensor.empty([b, d, Math.ceil(L / chunk), n], "float64");
  const last = Tensor.empty([b, d, n], "float64");
  const sizes = { b, d, n, L, chunk };
  backend().selectiveScan({ ...sizes, u: ud, delta: dd, A: ad, B: bd, C: cd, D: Dd, h0, y: y.data as FloatArray, ck: ck.data as Float64Array, last: last.data as Float64Array });
  // The backward reads the inputs from ctx.saved (counted by memory accounting), not from this closure.
  const back = (gy: Tensor, ctx: BackwardCtx) => {
    const [su, sdelta, sA, sB, sC, sD] = ctx.saved.slice(0, 6).map((t) => floatData(t, "selectiveScan"));
    const g = [[b, d, L], [b, d, L], [d, n], [b, n, L], [b, n, L], [d]].map((s) => Tensor.empty(s, dtype));
    const [gu, gdelta, gA, gB, gC, gD] = g.map((t) => t.data as FloatArray);
    backend().selectiveScanBackward({
      ...sizes, u: su, delta: sdelta, A: sA, B: sB, C: sC, D: sD, ck: ctx.saved[6].data as Float64Array,
      gy: floatData(gy, "selectiveScan"), gu, gdelta, gA, gB, gC, gD,
    });
    return g.map((t, i) => (ctx.needsInputGrad[i] ? t : null));
  };
  record(y, "selectiveScan", [u, delta, A, Bm, C, D], back, [u, delta, A, Bm, C, D, ck]);
  return { y, lastState: last };
}
