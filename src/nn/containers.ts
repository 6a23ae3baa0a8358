// Containers, as torch.nn's: Sequential chains modules, ModuleList holds them. Children register as
// "0", "1", ... so state-dict names match torch's ("2.weight", "layers.0.bias"). Both read the module
// tree at call time, so a child swapped by replaceChild (a LoRA wrapper) is the one that runs.

import type { Tensor } from "../tensor/tensor.js";
import { Module } from "./module.js";

/** A module with a one-tensor forward (what Sequential chains). */
export interface Layer extends Module {
  forward(x: Tensor): Tensor;
}

/** A module holding numbered children, read back by position (negative counts from the end). */
abstract class Indexed<M extends Module> extends Module {
  #count = 0;

  get length(): number {
    return this.#count;
  }

  protected add(m: M): void {
    this.child(String(this.#count++), m);
  }

  at(i: number): M {
    const k = i < 0 ? i + this.#count : i;
    if (!Number.isInteger(k) || k < 0 || k >= this.#count) throw new RangeError(`${this.constructor.name}: index ${i} is out of range for ${this.#count} modules`);
    return this.childNamed(String(k)) as M;
  }

  *[Symbol.iterator](): Iterator<M> {
    for (let i = 0; i < this.#count; i++) yield this.at(i);
  }
}

/** new Sequential(new Linear(4, 8), new ReLU(), new Linear(8, 2)): forward applies each in turn. */
export class Sequential extends Indexed<Layer> {
  constructor(...layers: Layer[]) {
    super();
    for (const m of layers) this.add(m);
  }

  forward(x: Tensor): Tensor {
    for (const m of this) x = m.forward(x);
    return x;
  }
}

/** A list of modules registered as children (torch.nn.ModuleList): their parameters are the list's. */
export class ModuleList<M extends Module = Module> extends Indexed<M> {
  constructor(modules: Iterable<M> = []) {
    super();
    for (const m of modules) this.add(m);
  }

  append(m: M): this {
    this.add(m);
    return this;
  }
}
