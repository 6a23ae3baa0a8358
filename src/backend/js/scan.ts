// Reference selective scan (see ScanArgs in backend.ts), the twin of native/ssm/scan_impl.h: the same
// chunked algorithm, with the state carried in float64 whatever the dtype. Forward: h_t = exp(delta_t
// A) h_{t-1} + delta_t B_t u_t, y_t = C_t . h_t + D u_t, saving the state before every chunk. Backward:
// per channel, chunks in reverse; each chunk's states recomputed from its saved start, then the
// reverse recurrence gh_{t-1} = exp(delta_t A) gh_t (gh_t = dLoss/dh_t including C_t gy_t).

import type { FloatArray, ScanArgs, ScanBackwardArgs } from "../backend.js";

export function selectiveScan(p: ScanArgs): void {
  const { b: nb, d: nd, n: nn, L, chunk, u, delta, A, B, C, D, h0, y, ck, last } = p;
  const nc = Math.ceil(L / chunk), h = new Float64Array(nn);
  for (let b = 0; b < nb; b++) {
    for (let d = 0; d < nd; d++) {
      const ch = b * nd + d, row = ch * L;
      if (h0) h.set(h0.subarray(ch * nn, (ch + 1) * nn));
      else h.fill(0);
      for (let t = 0; t < L; t++) {
        if (t % chunk === 0) ck.set(h, (ch * nc + t / chunk) * nn);
        const dt = delta[row + t], x = u[row + t];
        let s = 0;
        for (let n = 0; n < nn; n++) {
          const bc = (b * nn + n) * L + t;
          h[n] = Math.exp(dt * A[d * nn + n]) * h[n] + dt * B[bc] * x;
          s += C[bc] * h[n];
        }
        y[row + t] = s + D[d] * x;
      }
      last.set(h, ch * nn);
    }
  }
}

export function selectiveScanBackward(p: ScanBackwardArgs): void {
  const { b: nb, d: nd, n: nn, L, chunk, u, delta, A, B, C, D, ck, gy } = p;
  const nc = Math.ceil(L / chunk);
  const gA = new Float64Array(nd * nn), gB = new Float64Array(nb * nn * L), gC = new Float64Array(nb * nn * L), gD = new Float64Array(nd);
  // hs[(i + 1) * nn + n] = h at step (chunk start + i); hs[0..nn) = the state before the chunk.
  const hs = new Float64Array((chunk + 1) * nn), gh = new Float64Array(nn);
  for (let b = 0; b < nb; b++) {
    for (let d = 0; d < nd; d++) {
      const ch = b * nd + d, row = ch * L;
      gh.fill(0);
      for (let c = nc - 1; c >= 0; c--) {
        const t0 = c * chunk, t1 = Math.min(L, t0 + chunk);
        hs.set(ck.subarray((ch * nc + c) * nn, (ch * nc + c + 1) * nn), 0);
        for (let t = t0; t < t1; t++) {
          const dt = delta[row + t], x = u[row + t], o = (t - t0 + 1) * nn;
          for (let n = 0; n < nn; n++) hs[o + n] = Math.exp(dt * A[d * nn + n]) * hs[o - nn + n] + dt * B[(b * nn + n) * L + t] * x;
        }
        for (let t = t1 - 1; t >= t0; t--) {
          const g = gy[row + t], dt = delta[row + t], x = u[row + t], o = (t - t0 + 1) * nn;
          let gx = g * D[d], gdt = 0;
          gD[d] += g * x;
          for (let n = 0; n < nn; n++) {
            const bc = (b * nn + n) * L + t, a = A[d * nn + n], dA = Math.exp(dt * a);
            gC[bc] += g * hs[o + n];
            const ghn = gh[n] + g * C[bc];
            const gdA = ghn * hs[o - nn + n] * dA;
            gdt += gdA * a + ghn * B[bc] * x;
            gA[d * nn + n] += gdA * dt;
            gB[bc] += ghn * dt * x;
            gx += ghn * dt * B[bc];
            gh[n] = ghn * dA;
          }
          p.gu[row + t] = gx;
          p.gdelta[row + t] = gdt;
        }
      }
    }
  }
  const out = (dst: FloatArray, src: Float64Array) => dst.set(src);
  out(p.gA, gA);
  out(p.gB, gB);
  out(p.gC, gC);
  out(p.gD, gD);
}
