// LoRA (Hu et al. 2021, eq. 3): a frozen Linear W0 plus a trainable low-rank update,
// h = W0 x + s B A x with A [r, in] (Kaiming-uniform, a = sqrt(5)) and B [out, r] (zero) as PEFT
// initializes them (tuners/lora/layer.py reset_lora_parameters), so training starts at the base model.
// s = alpha / r, or alpha / sqrt(r) with rsLoRA (Kalajdzievski 2023). DoRA (Liu et al. 2024, eq. 5):
// W' = m (W0 + s B A) / ||W0 + s B A||, the norm taken per output row and treated as a constant in
// backward (§4.3; PEFT dora.py detaches it); m starts at the rows' norms. Several named adapters can sit
// on one layer; the active ones are added, a merged one is folded into W0 (and unmerged back).

import * as ops from "../ops/index.js";
import { loraLinear } from "../ops/lora.js";
import { Module } from "../nn/module.js";
import { Dropout, Linear } from "../nn/layers.js";
import { kaimingUniform_ } from "../nn/init-fns.js";
import type { RandomGenerator } from "../tensor/rng.js";
import { noGrad } from "../tensor/autograd.js";
import type { Tensor } from "../tensor/tensor.js";

export interface LoraOptions {
  r: number;
  alpha: number;
  dropout?: number;
  /** Scale by alpha / sqrt(r) instead of alpha / r. */
  rslora?: boolean;
  /** Weight-decomposed LoRA: a trainable magnitude per output row. */
  dora?: boolean;
  /** Draws A (default: a fixed stream, as torch's global one would be). */
  generator?: RandomGenerator;
  /** Draws dropout masks. */
  dropoutGenerator?: () => RandomGenerator;
}

/** One adapter's parameters on one layer (registered on its LoraLinear under PEFT's names). */
class LoraAdapter {
  readonly A: Tensor;
  readonly B: Tensor;
  /** DoRA's magnitude m [out], or null. */
  readonly magnitude: Tensor | null;
  readonly drop: Dropout;

  constructor(inF: number, outF: number, readonly scaling: number, base: Tensor, o: LoraOptions) {
    this.A = kaimingUniform_(ops.zeros([o.r, inF]), { a: Math.sqrt(5), generator: o.generator });
    this.B = ops.zeros([outF, o.r]);
    this.magnitude = o.dora ? noGrad(() => rowNorms(base)) : null;
    this.drop = new Dropout(o.dropout ?? 0, o.dropoutGenerator ?? (() => { throw new Error("LoRA dropout needs a dropoutGenerator"); }));
  }
}

/** ||row||_2 of a [out, in] matrix, as a [out] tensor. */
function rowNorms(w: Tensor): Tensor {
  return ops.sqrt(ops.sum(ops.mul(w, w), 1));
}

export function loraScaling(o: Pick<LoraOptions, "r" | "alpha" | "rslora">): number {
  return o.rslora ? o.alpha / Math.sqrt(o.r) : o.alpha / o.r;
}

/**
 * A Linear with LoRA adapters. It keeps the wrapped layer's weight and bias under their own names
 * (weight, bias), so the base model's state dict still loads, and adds lora_A.<name>.weight,
 * lora_B.<name>.weight (and lora_magnitude_vector.<name>.weight) per adapter.
 */
export class LoraLinear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly inFeatures: number;
  readonly outFeatures: number;
  private readonly adapters = new Map<string, LoraAdapter>();
  /** Adapters added in forward, in order. */
  active: string[] = [];
  /** name -> what merge() added to W0, to take it out again. */
  private readonly merged = new Map<string, Float32Array>();

  constructor(base: Linear) {
    super();
    this.weight = this.param("weight", base.weight);
    this.bias = base.bias ? this.param("bias", base.bias) : null;
    this.inFeatures = base.inFeatures;
    this.outFeatures = base.outFeatures;
  }

  addAdapter(name: string, o: LoraOptions): void {
    if (this.adapters.has(name)) throw new Error(`LoRA: this layer already has an adapter named ${JSON.stringify(name)}`);
    const a = new LoraAdapter(this.inFeatures, this.outFeatures, loraScaling(o), this.weight, o);
    this.adapters.set(name, a);
    this.param(`lora_A.${name}.weight`, a.A);
    this.param(`lora_B.${name}.weight`, a.B);
    if (a.magnitude) this.param(`lora_magnitude_vector.${name}.weight`, a.magnitude);
    this.child(`lora_dropout.${name}`, a.drop);
    this.active.push(name);
  }

  adapter(name: string): { A: Tensor; B: Tensor; magnitude: Tensor | null; scaling: number } {
    const a = this.adapters.get(name);
    if (!a) throw new Error(`LoRA: no adapter named ${JSON.stringify(name)} on this layer (it has ${[...this.adapters.keys()].join(", ") || "none"})`);
    return a;
  }

  get adapterNames(): string[] {
    return [...this.adapters.keys()];
  }

  isMerged(name: string): boolean {
    return this.merged.has(name);
  }

  forward(x: Tensor): Tensor {
    // the first active plain adapter (no DoRA, no dropout at work) is fused with the base product
    const fused = this.active.find((n) => {
      const a = this.adapters.get(n)!;
      return !this.merged.has(n) && !a.magnitude && !(a.drop.p > 0 && a.drop.training);
    });
    const f = fused === undefined ? null : this.adapters.get(fused)!;
    let y = f ? loraLinear(x, this.weight, this.bias, f.A, f.B, f.scaling) : ops.linear(x, this.weight, this.bias);
    for (const name of this.active) {
      if (this.merged.has(name) || name === fused) continue;
      const a = this.adapters.get(name)!;
      const xd = a.drop.forward(x);
      // s B (A x) with s applied to the rank-r product A x: a mul keeps its operands for backward,
      // and on the [.., out] output that would hold one more activation per layer than the base does
      const lora = ops.linear(ops.mul(ops.linear(xd, a.A), a.scaling), a.B);
      if (!a.magnitude) {
        y = ops.add(y, lora);
        continue;
      }
      // PEFT dora.py: (m/n - 1) * (x W0^T) + (m/n) * s * B A x, n = ||W0 + s B A|| per row, detached
      const n = noGrad(() => rowNorms(ops.add(this.weight, ops.mul(ops.matmul(a.B, a.A), a.scaling))));
      const scale = ops.div(a.magnitude, n);
      const base = ops.linear(xd, this.weight);
      y = ops.add(y, ops.add(ops.mul(base, ops.sub(scale, 1)), ops.mul(lora, scale)));
    }
    return y;
  }

  /** The update an adapter makes to W0: s B A, or for DoRA m (W0 + s B A) / n - W0. */
  deltaWeight(name: string): Float32Array {
    const a = this.adapter(name);
    return noGrad(() => {
      const sBA = ops.mul(ops.matmul(a.B, a.A), a.scaling);
      if (!a.magnitude) return sBA.toTypedArray() as Float32Array;
      const w = ops.add(this.weight, sBA);
      const merged = ops.mul(w, ops.reshape(ops.div(a.magnitude, rowNorms(w)), [this.outFeatures, 1]));
      return ops.sub(merged, this.weight).toTypedArray() as Float32Array;
    });
  }

  /** Fold an adapter into W0 (its forward term is then skipped). Merging one twice is refused. */
  merge(name: string): void {
    if (this.merged.has(name)) throw new Error(`LoRA: adapter ${JSON.stringify(name)} is already merged into these weights; unmerge it first`);
    const delta = this.deltaWeight(name);
    const w = this.weight.data as Float32Array;
    for (let i = 0; i < w.length; i++) w[i]! += delta[i]!;
    this.merged.set(name, delta);
  }

  /** Take a merged adapter out of W0 again. */
  unmerge(name: string): void {
    const delta = this.merged.get(name);
    if (!delta) throw new Error(`LoRA: adapter ${JSON.stringify(name)} is not merged`);
    const w = this.weight.data as Float32Array;
    for (let i = 0; i < w.length; i++) w[i]! -= delta[i]!;
    this.merged.delete(name);
  }
}
