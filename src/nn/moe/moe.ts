// A mixture-of-experts feed-forward layer (Shazeer et al. 2017; Switch, Fedus et al. 2021; Mixtral):
// a router sends each token to its top-k of E expert FFNs, and the output is the gate-weighted sum of
// the chosen experts' outputs, plus always-on shared experts (DeepSeekMoE, Dai et al. 2024).
// - Grouped compute: the token-slots are sorted by expert (one index_select) and each expert runs
//   once on its rows; without biases every expert Linear of the layer is one grouped GEMM
//   (ops/grouped.ts: MegaBlocks' formulation), with biases each expert runs on its slice. The rows
//   go back to token-slot order by one more index_select and are summed with their gates.
// - Inference without a graph (no biases): the routing is a loop over the router's logits and the
//   experts run in one fused native call (ops/grouped.ts moeFfn), what a decoding step's few tokens need.
// - Capacity (Switch sec. 2.2): in training, with capacityFactor C, each expert takes at most
//   ceil(C * N * k / E) slots, first come in token order; the rest are dropped and contribute 0 (the
//   block's residual carries the token). Inference is dropless, so a KV-cached decode equals recompute.
// - Shared experts: n shared experts of width dFF are one FFN of width n * dFF (the sum of n FFNs is
//   an FFN over the concatenated hidden units, as HF's DeepseekV2MoE builds its shared_experts).
// - Auxiliary losses (losses.ts) are kept after each training forward for the objective to read
//   (moeAuxLoss), so the layer keeps the FeedForwardPart signature [.., D] -> [.., D].
// - With DeepSeek-V3's sigmoid gates (router.ts), each training forward also moves the selection bias
//   (aux-loss-free balancing); under gradient accumulation that is once per micro-batch.

import * as ops from "../../ops/index.js";
import { isGradEnabled } from "../../tensor/autograd.js";
import type { Tensor } from "../../tensor/tensor.js";
import { groupedLinear, moeFfn } from "../../ops/grouped.js";
import { GeluMLP, makeFeedForward, type FeedForward } from "../ffn/mlp.js";
import { Module } from "../module.js";
import { balanceLoss, slotFractions, zLoss } from "./losses.js";
import { Router, type GateKind } from "./router.js";

export interface MoEOptions {
  dModel: number;
  /** Hidden width of each expert (and of each shared expert). */
  dFF: number;
  ffn: "gelu" | "gelu_tanh" | "swiglu";
  bias: boolean;
  experts: number;
  topK: number;
  /** Training capacity per expert = ceil(C * tokens * topK / experts); default: no dropping. */
  capacityFactor?: number;
  /** Always-on shared experts (default 0). */
  sharedExperts?: number;
  gate?: GateKind;
  /** DeepSeek-V3's bias update speed gamma ("sigmoid" gates; default 0.001): after each training
   * forward, b_i += gamma * sign(mean load - load_i) (sec. 2.1.2), loads counted before dropping. */
  biasUpdateRate?: number;
  /** Weights of the balance and z losses in the objective (default 0.01 as Switch, 0.001 as ST-MoE). */
  balanceWeight?: number;
  zWeight?: number;
}

/** What one training forward of a layer left for the objective. */
export interface MoEAux {
  balance: Tensor;
  z: Tensor;
  /** Fraction of the routed slots each expert was chosen for (before dropping). */
  load: Float64Array;
  /** Fraction of the routed slots dropped by the capacity limit. */
  dropped: number;
}

function check(o: MoEOptions): void {
  const int = (name: string, v: number | undefined, min: number) => {
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= min)) throw new RangeError(`MoE: ${name} must be an integer >= ${min}, got ${v}`);
  };
  int("experts", o.experts, 1);
  int("topK", o.topK, 1);
  int("sharedExperts", o.sharedExperts, 0);
  if (o.topK > o.experts) throw new RangeError(`MoE: topK ${o.topK} must be at most the number of experts ${o.experts}`);
  if (o.capacityFactor !== undefined && !(o.capacityFactor > 0 && Number.isFinite(o.capacityFactor))) throw new RangeError(`MoE: capacityFactor must be a finite number > 0, got ${o.capacityFactor}`);
  for (const w of ["balanceWeight", "zWeight", "biasUpdateRate"] as const) {
    if (o[w] !== undefined && !(o[w]! >= 0 && Number.isFinite(o[w]))) throw new RangeError(`MoE: ${w} must be a finite number >= 0, got ${o[w]}`);
  }
}

export class MoEFeedForward extends Module {
  readonly router: Router;
  readonly experts: FeedForward[];
  readonly shared: FeedForward | null;
  readonly balanceWeight: number;
  readonly zWeight: number;
  /** The auxiliary terms of the last training forward (null after moeAuxLoss reads them, and in eval). */
  lastAux: MoEAux | null = null;

  constructor(readonly options: MoEOptions) {
    super();
    check(options);
    const o = options;
    this.router = this.child("router", new Router(o.dModel, o.experts, o.topK, o.gate));
    this.experts = this.childList("experts", Array.from({ length: o.experts }, () => makeFeedForward(o.ffn, o.dModel, o.dFF, o.bias)));
    const ns = o.sharedExperts ?? 0;
    this.shared = ns > 0 ? this.child("shared", makeFeedForward(o.ffn, o.dModel, ns * o.dFF, o.bias)) : null;
    this.balanceWeight = o.balanceWeight ?? 0.01;
    this.zWeight = o.zWeight ?? 0.001;
  }

  /** The slot capacity of each expert for N tokens (Infinity: dropless). */
  capacity(N: number): number {
    const C = this.options.capacityFactor;
    return this.training && C !== undefined ? Math.ceil((C * N * this.options.topK) / this.options.experts) : Infinity;
  }

  forward(x: Tensor): Tensor {
    const D = this.options.dModel, k = this.options.topK, E = this.options.experts;
    const h = ops.reshape(x, [-1, D]);
    if (!this.training && !isGradEnabled() && !this.options.bias) return ops.reshape(this.infer(h), x.shape);
    const N = h.shape[0];
    const r = this.router.forward(h);
    const { tokens, where, offsets, dropped } = this.sortSlots(r.experts, N, this.capacity(N));
    const ys = this.runExperts(ops.indexSelect(h, 0, ops.tensor(tokens)), offsets);
    const rowsOut = dropped ? ops.cat([ys, ops.zeros([1, D], { dtype: h.dtype })], 0) : ys;
    const y = ops.reshape(ops.indexSelect(rowsOut, 0, ops.tensor(where)), [N, k, D]);
    let out = ops.sum(ops.mul(y, ops.unsqueeze(r.gates, -1)), 1);
    if (this.shared) out = ops.add(out, this.shared.forward(h));
    if (this.training) this.updateScoreBias(r.experts);
    this.lastAux = this.training
      ? { balance: balanceLoss(r.probs, r.experts), z: zLoss(r.logits), load: slotFractions(r.experts, E), dropped: dropped / (N * k) }
      : null;
    return ops.reshape(out, x.shape);
  }

  /**
   * Inference without a graph (decoding), experts without biases: the routing is a plain loop over the
   * router's logits and the experts one fused kernel (ops/grouped.ts moeFfn), so a step costs the
   * router and one call rather than ~15 small tensor ops. Same result as the recorded path (no
   * dropping in inference).
   */
  private infer(h: Tensor): Tensor {
    const { experts, gates } = this.router.choose(h);
    const { tokens, offsets, where } = this.sortSlots(experts, h.shape[0], Infinity);
    const sorted = new Float32Array(gates.length);
    where.forEach((row, s) => { sorted[row] = gates[s]; });
    const out = moeFfn(h, { tokens, offsets, gates: sorted }, this.expertWeights(), this.act());
    return this.shared ? ops.add(out, this.shared.forward(h)) : out;
  }

  /** Slots s = t * k + j by expert, in token order, up to `cap` each: the rows to gather (tokens),
   * each slot's row among them (where; a dropped slot points past the kept rows) and the experts' offsets. */
  private sortSlots(experts: Int32Array, N: number, cap: number) {
    const E = this.options.experts, k = this.options.topK;
    const rows: number[][] = Array.from({ length: E }, () => []);
    let dropped = 0;
    experts.forEach((e, s) => { if (rows[e].length < cap) rows[e].push(s); else dropped++; });
    const kept = N * k - dropped;
    const where = new Int32Array(N * k).fill(kept);  // a dropped slot reads the zero row after the kept ones
    const tokens = new Int32Array(kept), offsets = new Int32Array(E + 1);
    let at = 0;
    rows.forEach((slots, e) => {
      for (const s of slots) { tokens[at] = Math.floor(s / k); where[s] = at++; }
      offsets[e + 1] = at;
    });
    return { tokens, where, offsets, dropped };
  }

  /** The experts on their rows of xs (sorted by expert, expert e at offsets[e] .. offsets[e + 1]). */
  private runExperts(xs: Tensor, offsets: Int32Array): Tensor {
    if (!this.options.bias) {
      const lin = (x: Tensor, pick: (f: FeedForward) => Tensor) => groupedLinear(x, this.experts.map(pick), offsets);
      if (this.experts[0] instanceof GeluMLP) {
        const f = this.experts[0];
        return lin(ops.gelu(lin(xs, (e) => (e as GeluMLP).fc1.weight), f.approximate), (e) => (e as GeluMLP).fc2.weight);
      }
      type Swi = Exclude<FeedForward, GeluMLP>;
      const gate = ops.silu(lin(xs, (e) => (e as Swi).w1.weight));
      return lin(ops.mul(gate, lin(xs, (e) => (e as Swi).w3.weight)), (e) => (e as Swi).w2.weight);
    }
    const outs: Tensor[] = [];
    this.experts.forEach((f, e) => {
      const n = offsets[e + 1] - offsets[e];
      if (n > 0) outs.push(f.forward(ops.narrow(xs, 0, offsets[e], n)));
    });
    return outs.length ? ops.cat(outs, 0) : ops.zeros([0, this.options.dModel], { dtype: xs.dtype });
  }

  /** The experts' weights as moeFfn takes them. */
  private expertWeights(): { w1: Tensor[]; w2: Tensor[]; w3?: Tensor[] } {
    if (this.experts[0] instanceof GeluMLP) {
      const mlps = this.experts as GeluMLP[];
      return { w1: mlps.map((e) => e.fc1.weight), w2: mlps.map((e) => e.fc2.weight) };
    }
    const swi = this.experts as Exclude<FeedForward, GeluMLP>[];
    return { w1: swi.map((e) => e.w1.weight), w2: swi.map((e) => e.w2.weight), w3: swi.map((e) => e.w3.weight) };
  }

  private act(): "silu" | "gelu_erf" | "gelu_tanh" {
    const f = this.experts[0];
    return f instanceof GeluMLP ? (f.approximate === "tanh" ? "gelu_tanh" : "gelu_erf") : "silu";
  }

  /** DeepSeek-V3's aux-loss-free balancing: raise the selection bias of underloaded experts, lower the overloaded's. */
  private updateScoreBias(experts: Int32Array): void {
    const b = this.router.scoreBias, rate = this.options.biasUpdateRate ?? 0.001;
    if (!b || rate === 0) return;
    const E = this.options.experts, load = new Float64Array(E);
    for (const e of experts) load[e]++;
    const bd = b.data, mean = experts.length / E;
    for (let i = 0; i < E; i++) bd[b.offset + i] += rate * Math.sign(mean - load[i]);
  }
}

/**
 * The weighted auxiliary loss of every MoE layer's last training forward (summed over layers, as each
 * Switch layer adds its own) and the terms to log, averaged over layers: moe_balance, moe_z,
 * moe_dropped and moe_load_<i>. Reading clears them. null when no MoE layer ran in training mode.
 */
export function moeAuxLoss(model: Module): { loss: Tensor; aux: Record<string, number> } | null {
  const layers: [MoEFeedForward, MoEAux][] = [];
  for (const [, m] of model.namedModules()) {
    if (m instanceof MoEFeedForward && m.lastAux) layers.push([m, m.lastAux]);
  }
  if (!layers.length) return null;
  let loss: Tensor | null = null;
  const n = layers.length, E = layers[0][1].load.length;
  const mean = (f: (a: MoEAux) => number) => layers.reduce((s, [, a]) => s + f(a), 0) / n;
  const aux: Record<string, number> = {
    moe_balance: mean((a) => a.balance.item()),
    moe_z: mean((a) => a.z.item()),
    moe_dropped: mean((a) => a.dropped),
  };
  for (const [m, a] of layers) {
    const term = ops.add(ops.mul(a.balance, m.balanceWeight), ops.mul(a.z, m.zWeight));
    loss = loss ? ops.add(loss, term) : term;
    m.lastAux = null;
  }
  if (layers.every(([m]) => m.options.experts === E)) for (let i = 0; i < E; i++) aux[`moe_load_${i}`] = mean((a) => a.load[i]);
  return { loss: loss!, aux };
}
