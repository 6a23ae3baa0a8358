// The Mamba block (Gu & Dao 2023, "Mamba: Linear-Time Sequence Modeling with Selective State Spaces",
// Figure 3; names, shapes and init as mamba_ssm's modules/mamba_simple.py Mamba):
//   [x, z] = in_proj(u);  x = silu(causal depthwise conv1d(x));  [dt, B, C] = x_proj(x)
//   delta = softplus(dt_proj(dt));  y = selective_scan(x, delta, A = -exp(A_log), B, C, D);  out_proj(y * silu(z))
// Two paths: the parallel (training) one over a whole sequence, and step() for decoding, which keeps
// the last d_conv - 1 conv inputs and the SSM state (mamba_simple.py's step()). As a model's mixer
// (the Attention contract), forward(x, ctx) continues and updates ctx's decoding state (an SSMState):
// one token runs step(), O(1) whatever the context; more run the parallel path from the state.
// Init (initParameters) is the reference's: torch's Linear / Conv1d defaults, dt_proj's special init,
// S4D-Real A, D = 1, and in a model out_proj scaled by 1/sqrt(residuals per layer * nLayers)
// (mamba_ssm's models/mixer_seq_simple.py _init_weights, rescale_prenorm_residual).

import * as ops from "../../ops/index.js";
import { defaultGenerator, type RandomGenerator } from "../../tensor/rng.js";
import { fmtShape } from "../../tensor/shape.js";
import type { Tensor } from "../../tensor/tensor.js";
import { kaimingUniform_, uniform_ } from "../init-fns.js";
import { Linear, skipInit } from "../layers.js";
import { Module } from "../module.js";
import { SeqContext } from "../seq-context.js";
import { selectiveScan } from "./scan.js";
import { SSMState, ssmState, type SelfInit } from "./state.js";

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
  /** Leave the weights at zero: the owner calls initParameters (a model, with its generator and depth). */
  deferInit?: boolean;
}

/** Decoding state: the last d_conv - 1 conv inputs [B, d_inner, d_conv - 1] and the SSM state [B, d_inner, N]. */
export interface MambaState { conv: Tensor; ssm: Tensor }

export class Mamba extends Module implements SelfInit {
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
  private readonly dtRange: [number, number];

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
    this.dtRange = [o.dtMin ?? 0.001, o.dtMax ?? 0.1];
    const E = this.dInner, N = this.dState;
    const linear = (i: number, out: number, bias = false) => skipInit(() => new Linear(i, out, bias));
    this.inProj = this.child("in_proj", linear(dModel, 2 * E));
    this.convWeight = this.param("conv1d.weight", ops.zeros([E, 1, this.dConv]));
    this.convBias = this.param("conv1d.bias", ops.zeros([E]));
    this.xProj = this.child("x_proj", linear(E, this.dtRank + 2 * N));
    this.dtProj = this.child("dt_proj", linear(this.dtRank, E, true));
    this.ALog = this.param("A_log", ops.zeros([E, N]), "ssm");
    this.D = this.param("D", ops.zeros([E]), "ssm");
    this.outProj = this.child("out_proj", linear(E, dModel));
    if (!o.deferInit) this.initParameters(o.generator ?? defaultGenerator);
  }

  /** mamba_simple.py's init in its draw order; in a model (nLayers given) out_proj is scaled down by depth. */
  initParameters(g: RandomGenerator, o: { nLayers?: number; residualsPerLayer?: number } = {}): void {
    const E = this.dInner, N = this.dState;
    const torchLinear = (w: Tensor) => kaimingUniform_(w, { a: Math.sqrt(5), generator: g });
    torchLinear(this.inProj.weight);
    // torch.nn.Conv1d's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = d_conv (one input channel per group).
    const bound = 1 / Math.sqrt(this.dConv);
    uniform_(this.convWeight, -bound, bound, { generator: g });
    uniform_(this.convBias, -bound, bound, { generator: g });
    torchLinear(this.xProj.weight);
    // dt_proj.weight ~ U(+-dt_rank^-0.5); its bias is softplus^-1 of the initial delta.
    const std = this.dtRank ** -0.5;
    uniform_(this.dtProj.weight, -std, std, { generator: g });
    const b = this.dtProj.bias!;
    uniform_(b, Math.log(this.dtRange[0]), Math.log(this.dtRange[1]), { generator: g });
    for (let i = 0; i < E; i++) {
      const dt = Math.max(Math.exp(b.data[i]), 1e-4);
      b.data[i] = dt + Math.log(-Math.expm1(-dt));
    }
    // S4D-Real init: A_n = -(n + 1).
    for (let i = 0; i < E * N; i++) this.ALog.data[i] = Math.log((i % N) + 1);
    this.D.data.fill(1);
    torchLinear(this.outProj.weight);
    if (o.nLayers) {
      const s = 1 / Math.sqrt((o.residualsPerLayer ?? 1) * o.nLayers), w = this.outProj.weight.data;
      for (let i = 0; i < w.length; i++) w[i] *= s;
    }
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

  /**
   * u [B, L, d_model] -> y [B, L, d_model]. With a decoding state in ctx (newState()), continues it and
   * updates it: one token per call is the O(1) recurrent step.
   */
  forward(u: Tensor, ctx = SeqContext.causal()): Tensor {
    const st = ssmState<MambaState>("mamba", ctx);
    if (!st) return this.prefill(u).y;
    this.check(u, 3);
    const [nb, L] = u.shape;
    let r: { y: Tensor; state: MambaState };
    if (L === 1) {
      const s = this.stepped(ops.squeeze(u, 1), st.value ?? this.zeroState(nb, u.dtype));
      r = { y: ops.unsqueeze(s.y, 1), state: s.state };
    } else {
      r = this.prefill(u, st.value);
    }
    st.value = { conv: r.state.conv.detach(), ssm: r.state.ssm.detach() };
    st.length += L;
    return r.y;
  }

  /** A fresh decoding state for a model (its tensors are allocated at the first forward). */
  newState(_capacity?: number): SSMState<MambaState> {
    return new SSMState<MambaState>("mamba");
  }

  /** The parallel path from `init` (zero by default), and the decoding state after it (step() continues from there). */
  prefill(u: Tensor, init?: MambaState | null): { y: Tensor; state: MambaState } {
    this.check(u, 3);
    const [nb, L] = u.shape, K = this.dConv;
    if (init) this.checkState(init, nb);
    const [xIn, z] = ops.chunk(this.inProj.forward(u), 2, -1);
    const t = (a: Tensor) => ops.permute(a, [0, 2, 1]);
    // Causal depthwise conv: y_t = bias + sum_j w_j x_{t - (K-1) + j} over the input left-padded with the K - 1 previous inputs.
    const before = init ? t(init.conv).to(u.dtype) : ops.zeros([nb, K - 1, this.dInner], { dtype: u.dtype });
    const padded = ops.cat([before, xIn], 1);
    const w = ops.reshape(this.convWeight, [this.dInner, K]);
    let conv: Tensor = this.convBias;
    for (let j = 0; j < K; j++) conv = ops.add(conv, ops.mul(ops.narrow(padded, 1, j, L), ops.squeeze(ops.narrow(w, 1, j, 1), 1)));
    const x = ops.silu(conv);
    const { delta, B, C } = this.selection(x);
    const A = ops.neg(ops.exp(this.ALog));
    const scan = selectiveScan(t(x), t(delta), A, t(B), t(C), this.D, { chunk: this.chunk, h0: init?.ssm });
    const y = this.outProj.forward(ops.mul(t(scan.y), ops.silu(z)));
    const state = { conv: ops.contiguous(t(ops.narrow(padded, 1, L, K - 1))).detach(), ssm: scan.lastState.to(u.dtype) };
    return { y, state };
  }

  private checkState(s: MambaState, nb: number): void {
    if (s.ssm.shape[0] !== nb) throw new RangeError(`Mamba: the decoding state holds ${s.ssm.shape[0]} sequences, the input ${nb}`);
  }

  /** A zero decoding state for B sequences. */
  zeroState(batch: number, dtype: Tensor["dtype"] = "float32"): MambaState {
    return { conv: ops.zeros([batch, this.dInner, this.dConv - 1], { dtype }), ssm: ops.zeros([batch, this.dInner, this.dState], { dtype }) };
  }

  /** One decoding step: u [B, d_model] -> y [B, d_model], and the next state (the given one is not changed). */
  step(u: Tensor, state: MambaState): { y: Tensor; state: MambaState } {
    this.check(u, 2);
    return this.stepped(u, state);
  }

  private stepped(u: Tensor, state: MambaState): { y: Tensor; state: MambaState } {
    this.checkState(state, u.shape[0]);
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
