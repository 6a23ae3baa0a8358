// S4D (Gu, Gupta, Goel & Ré 2022, "On the Parameterization and Initialization of Diagonal State Space
// Models"; the state-spaces repo's standalone models/s4/s4d.py): per channel h, a diagonal complex state
// of N/2 modes (their conjugates make the real state size N), B = 1, and
//   ZOH:     dA = exp(dt A),  dB = (dA - 1) / A
//   kernel:  K_l = 2 Re(sum_n C_n dB_n dA_n^l)            (a Vandermonde product, paper eq. 5)
//   conv:    y_t = sum_{s <= t} K_s u_{t-s} + D u_t       (causal; here the direct O(L^2) Toeplitz product)
//   recur:   h_t = dA h_{t-1} + dB u_t,   y_t = 2 Re(C . h_t) + D u_t
// Trainable as s4d.py: log dt [H], log(-Re A) [H, N/2], Im A [H, N/2], C (real, imag) [H, N/2], D [H].
// Complex values are (re, im) tensor pairs built from real ops, so autograd needs no complex dtype.

import * as ops from "../../ops/index.js";
import { defaultGenerator, type RandomGenerator } from "../../tensor/rng.js";
import { fmtShape } from "../../tensor/shape.js";
import { Tensor } from "../../tensor/tensor.js";
import { normal_, uniform_ } from "../init-fns.js";
import { Module } from "../module.js";

export type S4DInit = "lin" | "inv";

export interface S4DOptions {
  /** S4D-Lin: A_n = -1/2 + i pi n; S4D-Inv: A_n = -1/2 + i N/pi (N/(2n+1) - 1) (paper section 4.1). */
  init?: S4DInit;
  /** log dt ~ U(log dtMin, log dtMax) per channel (s4d.py: 0.001, 0.1). */
  dtMin?: number;
  dtMax?: number;
  dtype?: "float32" | "float64";
  generator?: RandomGenerator;
  /** Leave log_dt, C and D at zero: the owner calls initParameters (a model, with its generator). */
  deferInit?: boolean;
}

/** The recurrent state: the complex modes (re, im), each [B, H, N/2]. */
export interface S4DState { re: Tensor; im: Tensor }

interface Complex { re: Tensor; im: Tensor }

const cmul = (a: Complex, b: Complex): Complex => ({
  re: ops.sub(ops.mul(a.re, b.re), ops.mul(a.im, b.im)),
  im: ops.add(ops.mul(a.re, b.im), ops.mul(a.im, b.re)),
});

/** exp(re + i im) = e^re (cos im + i sin im) */
function cexp(z: Complex): Complex {
  const m = ops.exp(z.re);
  return { re: ops.mul(m, ops.cos(z.im)), im: ops.mul(m, ops.sin(z.im)) };
}

export class S4D extends Module {
  readonly logDt: Tensor;
  readonly logAReal: Tensor;
  readonly aImag: Tensor;
  readonly cRe: Tensor;
  readonly cIm: Tensor;
  readonly D: Tensor;
  private readonly dtRange: [number, number];

  /** H channels, state size N (even: N/2 complex modes). */
  constructor(readonly channels: number, readonly stateSize: number, o: S4DOptions = {}) {
    super();
    if (!Number.isInteger(channels) || channels < 1) throw new RangeError(`S4D: channels must be an integer >= 1, got ${channels}`);
    if (!Number.isInteger(stateSize) || stateSize < 2 || stateSize % 2) throw new RangeError(`S4D: the state size N must be an even integer >= 2 (N/2 complex modes), got ${stateSize}`);
    const H = channels, M = stateSize / 2, dtype = o.dtype ?? "float32";
    this.dtRange = [o.dtMin ?? 0.001, o.dtMax ?? 0.1];
    this.logDt = this.param("log_dt", ops.zeros([H], { dtype }), "ssm");
    this.logAReal = this.param("log_A_real", ops.full([H, M], Math.log(0.5), { dtype }), "ssm");
    const imag = ops.empty([H, M], { dtype });
    for (let h = 0; h < H; h++) {
      for (let n = 0; n < M; n++) imag.data[h * M + n] = o.init === "inv" ? (stateSize / Math.PI) * (stateSize / (2 * n + 1) - 1) : Math.PI * n;
    }
    this.aImag = this.param("A_imag", imag, "ssm");
    this.cRe = this.param("C_re", ops.zeros([H, M], { dtype }));
    this.cIm = this.param("C_im", ops.zeros([H, M], { dtype }));
    this.D = this.param("D", ops.zeros([H], { dtype }));
    if (!o.deferInit) this.initParameters(o.generator ?? defaultGenerator);
  }

  /** s4d.py's random draws: log dt ~ U(log dtMin, log dtMax); C ~ torch.randn(cfloat), real and imaginary parts each N(0, 1/2); D ~ N(0, 1). */
  initParameters(g: RandomGenerator = defaultGenerator): void {
    uniform_(this.logDt, Math.log(this.dtRange[0]), Math.log(this.dtRange[1]), { generator: g });
    normal_(this.cRe, 0, Math.SQRT1_2, { generator: g });
    normal_(this.cIm, 0, Math.SQRT1_2, { generator: g });
    normal_(this.D, 0, 1, { generator: g });
  }

  /** dt A, and the ZOH dA, dB, each [H, N/2]. */
  private discretize(): { dtA: Complex; dA: Complex; dB: Complex } {
    const dt = ops.unsqueeze(ops.exp(this.logDt), 1);
    const A = { re: ops.neg(ops.exp(this.logAReal)), im: this.aImag };
    const dtA = { re: ops.mul(dt, A.re), im: ops.mul(dt, A.im) };
    const dA = cexp(dtA);
    // (dA - 1) / A = (dA - 1) conj(A) / |A|^2
    const norm = ops.add(ops.square(A.re), ops.square(A.im));
    const num = cmul({ re: ops.sub(dA.re, 1), im: dA.im }, { re: A.re, im: ops.neg(A.im) });
    return { dtA, dA, dB: { re: ops.div(num.re, norm), im: ops.div(num.im, norm) } };
  }

  /** The convolution kernel K [H, L]. */
  kernel(L: number): Tensor {
    const { dtA, dB } = this.discretize();
    const CdB = cmul({ re: this.cRe, im: this.cIm }, dB);
    const l = ops.arange(0, L, 1, { dtype: this.D.dtype });
    const V = cexp({ re: ops.mul(ops.unsqueeze(dtA.re, 2), l), im: ops.mul(ops.unsqueeze(dtA.im, 2), l) });
    const re = ops.sub(ops.mul(ops.unsqueeze(CdB.re, 2), V.re), ops.mul(ops.unsqueeze(CdB.im, 2), V.im));
    return ops.mul(ops.sum(re, 1), 2);
  }

  private checkInput(x: Tensor, rank: number, what: string): void {
    if (x.ndim !== rank || x.shape[rank - 1] !== this.channels) throw new RangeError(`S4D: ${what} must be ${rank === 3 ? "[B, L" : "[B"}, H=${this.channels}], got ${fmtShape(x.shape)}`);
  }

  /** The convolution form over x [B, L, H] -> [B, L, H]. */
  forward(x: Tensor): Tensor {
    this.checkInput(x, 3, "the input");
    const L = x.shape[1];
    const idx = new Int32Array(L * L), mask = ops.zeros([L, L], { dtype: x.dtype });
    for (let t = 0; t < L; t++) {
      for (let s = 0; s <= t; s++) { idx[t * L + s] = t - s; mask.data[t * L + s] = 1; }
    }
    // Toeplitz[h, t, s] = K[h, t - s] (s <= t), then y[h, t, b] = sum_s Toeplitz[h, t, s] x[b, s, h].
    const K = this.kernel(L);
    const toeplitz = ops.mul(ops.reshape(ops.indexSelect(K, 1, ops.tensor(idx, { dtype: "int32" })), [this.channels, L, L]), mask);
    const y = ops.permute(ops.matmul(toeplitz, ops.permute(x, [2, 1, 0])), [2, 1, 0]);
    return ops.add(y, ops.mul(x, this.D));
  }

  /** The state after x [B, L, H] from a zero state: h_L = sum_s dA^(L-1-s) dB u_s, by the same Vandermonde powers as the kernel. */
  stateAfter(x: Tensor): S4DState {
    this.checkInput(x, 3, "the input");
    const L = x.shape[1], { dtA, dB } = this.discretize();
    const l = ops.arange(L - 1, -1, -1, { dtype: this.D.dtype });
    const V = cexp({ re: ops.mul(ops.unsqueeze(dtA.re, 2), l), im: ops.mul(ops.unsqueeze(dtA.im, 2), l) });
    const W = cmul({ re: ops.unsqueeze(dB.re, 2), im: ops.unsqueeze(dB.im, 2) }, V);
    // [H, M, L] @ [H, L, B] -> [H, M, B] -> [B, H, M]
    const u = ops.permute(x, [2, 1, 0]);
    const h = (w: Tensor) => ops.contiguous(ops.permute(ops.matmul(w, u), [2, 0, 1]));
    return { re: h(W.re), im: h(W.im) };
  }

  /** A zero recurrent state for a batch of B sequences. */
  zeroState(batch: number): S4DState {
    const s = [batch, this.channels, this.stateSize / 2];
    return { re: ops.zeros(s, { dtype: this.D.dtype }), im: ops.zeros(s, { dtype: this.D.dtype }) };
  }

  /** One recurrent step: x [B, H] -> y [B, H]; returns the next state (the given one is not changed). */
  step(x: Tensor, state: S4DState): { y: Tensor; state: S4DState } {
    this.checkInput(x, 2, "a step's input");
    const { dA, dB } = this.discretize();
    const u = ops.unsqueeze(x, 2);
    const h = cmul(dA, state);
    const next = { re: ops.add(h.re, ops.mul(dB.re, u)), im: ops.add(h.im, ops.mul(dB.im, u)) };
    const cy = ops.sub(ops.mul(this.cRe, next.re), ops.mul(this.cIm, next.im));
    return { y: ops.add(ops.mul(ops.sum(cy, 2), 2), ops.mul(x, this.D)), state: next };
  }

  /** The recurrent form over x [B, L, H] from `state` (zero by default): the same y as forward(). */
  forwardRecurrent(x: Tensor, state: S4DState = this.zeroState(x.shape[0])): { y: Tensor; state: S4DState } {
    this.checkInput(x, 3, "the input");
    const ys: Tensor[] = [];
    for (let t = 0; t < x.shape[1]; t++) {
      const r = this.step(ops.squeeze(ops.narrow(x, 1, t, 1), 1), state);
      ys.push(r.y);
      state = r.state;
    }
    return { y: ops.stack(ys, 1), state };
  }
}
