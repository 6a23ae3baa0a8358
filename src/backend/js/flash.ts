// Reference FlashAttention (Dao et al. 2022; Dao 2023 "FlashAttention-2"): tiled online softmax forward
// and recomputing backward, with only tile-sized scratch (never a Tq x S buffer); the mask rules are
// backend/mask.ts.
// This is the correctness twin of a native port: plain loops, float64 accumulation.

import type { FlashArgs, FlashBackwardArgs, FloatArray } from "../backend.js";
import { AttentionMask, Tile } from "../mask.js";

/** Tile sizes Br x Bc (FlashAttention-2 Alg. 1). */
const BR = 64, BC = 64;

/** a[ao .. ao + n) . b[bo .. bo + n), four accumulators (V8 keeps them in registers). */
function dot(a: FloatArray, ao: number, b: FloatArray, bo: number, n: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0, x = 0;
  for (; x + 3 < n; x += 4) {
    s0 += a[ao + x] * b[bo + x]; s1 += a[ao + x + 1] * b[bo + x + 1];
    s2 += a[ao + x + 2] * b[bo + x + 2]; s3 += a[ao + x + 3] * b[bo + x + 3];
  }
  for (; x < n; x++) s0 += a[ao + x] * b[bo + x];
  return s0 + s1 + s2 + s3;
}

/** y[yo .. yo + n) += alpha x[xo .. xo + n). */
function axpy(y: Float64Array, yo: number, alpha: number, x: FloatArray, xo: number, n: number): void {
  for (let i = 0; i < n; i++) y[yo + i] += alpha * x[xo + i];
}

/** FlashAttention-2 Alg. 1: per query tile, online softmax over the key tiles (see FlashArgs). */
export function flashForward(a: FlashArgs): void {
  const { B, H, Hkv, Tq, S, d, q, k, v, o, lse, scale } = a;
  const mask = new AttentionMask(a, Tq, S);
  const group = H / Hkv;
  const st = new Float64Array(BR * BC), acc = new Float64Array(BR * d), m = new Float64Array(BR), l = new Float64Array(BR);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const qh = (b * H + h) * Tq, kh = (b * Hkv + Math.floor(h / group)) * (a.kvRows ?? S);
      for (const sg of mask.segments) {
        for (let t0 = 0; t0 < sg.nq; t0 += BR) {
          const br = Math.min(BR, sg.nq - t0), i0 = t0 + sg.off;
          m.fill(-Infinity); l.fill(0); acc.fill(0);
          for (let j0 = 0; j0 < sg.nk; j0 += BC) {
            const bc = Math.min(BC, sg.nk - j0);
            const status = mask.tile(i0, i0 + br - 1, j0, j0 + bc - 1);
            if (status === Tile.Skip) continue;
            // S_ij = scale Q_i K_j^T, masked entries -inf (Alg. 1 line 8)
            for (let r = 0; r < br; r++) {
              const qo = (qh + sg.q0 + t0 + r) * d;
              for (let c = 0; c < bc; c++) {
                if (status === Tile.Partial && !mask.visible(i0 + r, j0 + c)) { st[r * BC + c] = -Infinity; continue; }
                st[r * BC + c] = dot(q, qo, k, (kh + sg.k0 + j0 + c) * d, d) * scale;
              }
            }
            // m_new = max(m, rowmax S), P = exp(S - m_new), l = e^(m - m_new) l + rowsum P,
            // O = e^(m - m_new) O + P V_j (Alg. 1 lines 9-10); rows with nothing visible yet stay empty.
            for (let r = 0; r < br; r++) {
              let mx = m[r];
              for (let c = 0; c < bc; c++) if (st[r * BC + c] > mx) mx = st[r * BC + c];
              if (mx === -Infinity) continue;
              const alpha = Math.exp(m[r] - mx), ar = r * d;
              let sum = 0;
              if (alpha !== 1) for (let x = 0; x < d; x++) acc[ar + x] *= alpha;
              for (let c = 0; c < bc; c++) {
                const p = Math.exp(st[r * BC + c] - mx);
                if (p === 0) continue;
                sum += p;
                axpy(acc, ar, p, v, (kh + sg.k0 + j0 + c) * d, d);
              }
              l[r] = alpha * l[r] + sum;
              m[r] = mx;
            }
          }
          // O_i = diag(l)^-1 O_i, L_i = m + log l (Alg. 1 lines 12-13); no visible key: O = 0, L = -inf
          for (let r = 0; r < br; r++) {
            const row = qh + sg.q0 + t0 + r, oo = row * d;
            if (l[r] === 0) {
              o.fill(0, oo, oo + d);
              lse[row] = -Infinity;
              continue;
            }
            const inv = 1 / l[r];
            for (let x = 0; x < d; x++) o[oo + x] = acc[r * d + x] * inv;
            lse[row] = m[r] + Math.log(l[r]);
          }
        }
      }
    }
  }
}

/**
 * FlashAttention-2 Alg. 2: per key tile j (of one kv head), over its group's query heads and query
 * tiles i, recompute P_ij = exp(S_ij - L_i) and accumulate dV_j, dK_j in tile scratch and dQ_i.
 */
export function flashBackward(a: FlashBackwardArgs): void {
  const { B, H, Hkv, Tq, S, d, q, k, v, o, lse, dO, dq, dk, dv, scale } = a;
  const mask = new AttentionMask(a, Tq, S);
  const group = H / Hkv;
  const D = new Float64Array(group * Tq), dQ = new Float64Array(group * Tq * d);
  const dKt = new Float64Array(BC * d), dVt = new Float64Array(BC * d);
  for (let b = 0; b < B; b++) {
    for (let kvh = 0; kvh < Hkv; kvh++) {
      const kh = (b * Hkv + kvh) * S, qh0 = (b * H + kvh * group) * Tq;
      // D_i = rowsum(dO_i * O_i) (Alg. 2 line 4); the group's query heads are consecutive rows
      for (let r = 0; r < group * Tq; r++) {
        D[r] = dot(dO, (qh0 + r) * d, o, (qh0 + r) * d, d);
      }
      dQ.fill(0);
      for (const sg of mask.segments) {
        for (let j0 = 0; j0 < sg.nk; j0 += BC) {
          const bc = Math.min(BC, sg.nk - j0);
          dKt.fill(0); dVt.fill(0);
          for (let g = 0; g < group; g++) {
            for (let t0 = 0; t0 < sg.nq; t0 += BR) {
              const br = Math.min(BR, sg.nq - t0), i0 = t0 + sg.off;
              const status = mask.tile(i0, i0 + br - 1, j0, j0 + bc - 1);
              if (status === Tile.Skip) continue;
              for (let r = 0; r < br; r++) {
                const gr = g * Tq + sg.q0 + t0 + r, ro = (qh0 + gr) * d, L = lse[qh0 + gr];
                if (L === -Infinity) continue;
                for (let c = 0; c < bc; c++) {
                  if (status === Tile.Partial && !mask.visible(i0 + r, j0 + c)) continue;
                  const ko = (kh + sg.k0 + j0 + c) * d, co = c * d;
                  // P_ij = exp(S_ij - L_i) (line 11)
                  const p = Math.exp(dot(q, ro, k, ko, d) * scale - L);
                  if (p === 0) continue;
                  // dV_j += P^T dO_i (line 12); dP_ij = dO_i V_j^T (line 13)
                  axpy(dVt, co, p, dO, ro, d);
                  const dp = dot(dO, ro, v, ko, d);
                  // dS_ij = P_ij (dP_ij - D_i) (line 14); dQ_i += scale dS K_j, dK_j += scale dS^T Q_i (lines 15-16)
                  const ds = scale * p * (dp - D[gr]);
                  axpy(dQ, gr * d, ds, k, ko, d);
                  axpy(dKt, co, ds, q, ro, d);
                }
              }
            }
          }
          const base = (kh + sg.k0 + j0) * d;
          for (let i = 0; i < bc * d; i++) { dk[base + i] = dKt[i]; dv[base + i] = dVt[i]; }
        }
      }
      for (let i = 0; i < group * Tq * d; i++) dq[qh0 * d + i] = dQ[i];
    }
  }
}
