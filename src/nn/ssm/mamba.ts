// The Mamba block (Gu & Dao 2023, "Mamba: Linear-Time Sequence Modeling with Selective State Spaces",
// Figure 3; names, shapes and init as mamba_ssm's modules/mamba_simple.py Mamba):
//   [x, z] = in_proj(u);  x = silu(causal depthwise conv1d(x));  [dt, B, C] = x_proj(x)
//   delta = softplus(dt_proj(dt));  y = selective_scan(x, delta, A = -exp(A_log), B, C, D);  out_proj(y * silu(z))
// Two paths: the parallel (training) one over a whole sequence, and step() for decoding, which keeps
// the last d_conv - 1 conv inputs and the SSM state (mamba_simple.py's step()).

import * as ops from "../../ops/index.js";
import { defaultGenerator, type RandomGenerator } from "../../tensor/rng.js";
import { fmtShape } from "../../tensor/shape.js";
import { Tensor } from "../../tensor/tensor.js";
import { uniform_ } from "../init-fns.js";
import { Linear } from "../layers.js";
import { Module } from "../module.js";
import { selectiveScan } from "./scan.js";

export interface MambaOptions {
  /** SSM state size N per channel (default 16). */
  dState?: number;
  /** Depthwise conv width (default 4). */
  dConv?: number;
  /** d_inner = expand * d_model (default 2). */
  expand?: number;
  /** Rank of the delta projection (default ceil(d_model / 16)). */
  dtRank?: number;
  /** Initial delta ~ exp(U(log dtMin, log dtMax)), floored at 1e-4 (defaults 0.001, 0.1). */
  dtMin?: number;
  dtMax?: number;
  /** Steps between the scan's saved states (scan.ts). */
  chunk?: number;
  generator?: RandomGenerator;
}

/** Decoding state: the last d_conv - 1 conv inputs [B, d_inner, d_conv - 1] and the SSM state [B, d_inner, N]. */
export interface MambaState { conv: Tensor; ssm: Tensor }

export class Mamba extends Module {
  readonly dInner: number;
  readonly dState: number;
  readonly dConv: number;
  readonly dtRank: number;
  readonly inProj: Linear;
  readonly xProj: Linear;
  readonly dtProj: Linear;
  readonly outProj: Linear;
  /** [d_inner, 1, d_conv] as torch's Conv1d(groups = d_inner). */
  readonly convWeight: Tensor;
  readonly convBias: Tensor;
  readonly ALog: Tensor;
  readonly D: Tensor;
  private readonly chunk: number | undefined;

  constructor(readonly dModel: number, o: MambaOptions = {}) {
    super();
    const int = (name: string, v: number) => {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`Mamba: ${name} must be an integer >= 1, got ${v}`);
      return v;
    };
    int("dModel", dModel);
    this.dState = int("dState (the SSM state size)", o.dState ?? 16);
    this.dConv = int("dConv", o.dConv ?? 4);
    this.dInner = int("expand * dModel", (o.expand ?? 2) * dModel);
    this.dtRank = int("dtRank", o.dtRank ?? Math.ceil(dModel / 16));
    this.chunk = o.chunk;
    const g = o.generator ?? defaultGenerator, E = this.dInner, N = this.dState;
    this.inProj = this.child("in_proj", new Linear(dModel, 2 * E, false, { generator: g }));
    this.convWeight = this.param("conv1d.weight", ops.zeros([E, 1, this.dConv]));
    this.convBias = this.param("conv1d.bias", ops.zeros([E]));
    // torch.nn.Conv1d's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = d_conv (one input channel per group).
    const bound = 1 / Math.sqrt(this.dConv);
    uniform_(this.convWeight, -bound, bound, { generator: g });
    uniform_(this.convBias, -bound, bound, { generator: g });
    this.xProj = this.child("x_proj", new Linear(E, this.dtRank + 2 * N, false, { generator: g }));
    this.dtProj = this.child("dt_proj", new Linear(this.dtRank, E, true, { generator: g }));
    // mamba_simple.py: dt_proj.weight ~ U(+-dt_rank^-0.5); its bias is softplus^-1 of the initial delta.
    const std = this.dtRank ** -0.5;
    uniform_(this.dtProj.weight, -std, std, { generator: g });
    const [lo, hi] = [Math.log(o.dtMin ?? 0.001), Math.log(o.dtMax ?? 0.1)];
    const b = this.dtProj.bias!;
    uniform_(b, lo, hi, { generator: g });
    for (let i = 0; i < E; i++) {
      const dt = Math.max(Math.exp(b.data[i]), 1e-4);
      b.data[i] = dt + Math.log(-Math.expm1(-dt));
    }
    // S4D-Real init: A_n = -(n + 1).
    const aLog = ops.empty([E, N]);
    for (let i = 0; i < E * N; i++) aLog.data[i] = Math.log((i % N) + 1);
    this.ALog = this.param("A_log", aLog);
    this.D = this.param("D", ops.ones([E]));
    this.outProj = this.child("out_proj", new Linear(E, dModel, false, { generator: g }));
  }

  private check(x: Tensor, rank: number): void {
    if (x.ndim !== rank || x.shape[rank - 1] !== this.dModel) {
      throw new RangeError(`Mamba: the input must be ${rank === 3 ? "[B, L" : "[B"}, d_model=${this.dModel}], got ${fmtShape(x.shape)}`);
    }
  }

  /** delta [..., E], B and C [..., N] from the conv output x [..., E]. */
  private selection(x: Tensor): { delta: Tensor; B: Tensor; C: Tensor } {
    const [dt, B, C] = ops.split(this.xProj.forward(x), [this.dtRank, this.dState, this.dState], -1);
    return { delta: ops.softplus(this.dtProj.forward(dt)), B, C };
  }

  /** The parallel path: u [B, L, d_model] -> y [B, L, d_model]. */
  forward(u: Tensor): Tensor {
    return this.prefill(u).y;
  }

  /** The parallel path, and the decoding state after it (step() continues from there). */
  prefill(u: Tensor): { y: Tensor; state: MambaState } {
    this.check(u, 3);
    const [nb, L] = u.shape, K = this.dConv;
    const [xIn, z] = ops.chunk(this.inProj.forward(u), 2, -1);
    // Causal depthwise conv: y_t = bias + sum_j w_j x_{t - (K-1) + j} over the input left-padded with K - 1 zeros.
    const padded = ops.cat([ops.zeros([nb, K - 1, this.dInner], { dtype: u.dtype }), xIn], 1);
    const w = ops.reshape(this.convWeight, [this.dInner, K]);
    let conv: Tensor = this.convBias;
    for (let j = 0; j < K; j++) conv = ops.add(conv, ops.mul(ops.narrow(padded, 1, j, L), ops.squeeze(ops.narrow(w, 1, j, 1), 1)));
    const x = ops.silu(conv);
    const { delta, B, C } = this.selection(x);
    const t = (a: Tensor) => ops.permute(a, [0, 2, 1]);
    const A = ops.neg(ops.exp(this.ALog));
    const scan = selectiveScan(t(x), t(delta), A, t(B), t(C), this.D, { chunk: this.chunk });
    const y = this.outProj.forward(ops.mul(t(scan.y), ops.silu(z)));
    const state = { conv: ops.contiguous(t(ops.narrow(padded, 1, L, K - 1))).detach(), ssm: scan.lastState.to(u.dtype) };
    return { y, state };
  }

  /** A zero decoding state for B sequences. */
  newState(batch: number): MambaState {
    return { conv: ops.zeros([batch, this.dInner, this.dConv - 1]), ssm: ops.zeros([batch, this.dInner, this.dState]) };
  }

  /** One decoding step: u [B, d_model] -> y [B, d_model], and the next state (the given one is not changed). */
  step(u: Tensor, state: MambaState): { y: Tensor; state: MambaState } {
    this.check(u, 2);
    const [xIn, z] = ops.chunk(this.inProj.forward(u), 2, -1);
    const window = ops.cat([state.conv, ops.unsqueeze(xIn, 2)], 2);
    const x = ops.silu(ops.add(ops.sum(ops.mul(window, ops.reshape(this.convWeight, [this.dInner, this.dConv])), 2), this.convBias));
    const { delta, B, C } = this.selection(x);
    const d = ops.unsqueeze(delta, 2);
    // h = exp(delta A) h + delta B x;  y = C . h + D x
    const h = ops.add(ops.mul(ops.exp(ops.mul(d, ops.neg(ops.exp(this.ALog)))), state.ssm), ops.mul(ops.mul(d, ops.unsqueeze(B, 1)), ops.unsqueeze(x, 2)));
    const y = ops.add(ops.sum(ops.mul(h, ops.unsqueeze(C, 1)), 2), ops.mul(x, this.D));
    return { y: this.outProj.forward(ops.mul(y, ops.silu(z))), state: { conv: ops.narrow(window, 2, 1, this.dConv - 1), ssm: h } };
  }
}
