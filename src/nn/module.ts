// Module: a named tree of parameters and submodules (like torch.nn.Module). Parameters are leaf
// tensors with requiresGrad; names are dotted paths ("blocks.0.attn.wq.weight"). Buffers are
// persistent non-trainable state (torch's register_buffer): saved and loaded with the parameters,
// never seen by the optimizer.

import { fmtShape, sameShape } from "../tensor/shape.js";
import { keep } from "../tensor/scope.js";
import { Tensor } from "../tensor/tensor.js";

export class Module {
  training = true;
  private readonly params = new Map<string, Tensor>();
  private readonly buffers = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();

  /** Register a parameter (a leaf that requires grad unless frozen later). */
  protected param(name: string, t: Tensor): Tensor {
    t.requiresGrad_(true);
    this.params.set(name, keep(t));
    return t;
  }

  /** Register a buffer: state that is saved and loaded but not trained (update it in place). */
  protected buffer(name: string, t: Tensor): Tensor {
    this.buffers.set(name, keep(t));
    return t;
  }

  /** Register a submodule; a list registers as name.0, name.1, ... */
  protected child<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    return m;
  }

  protected childList<M extends Module>(name: string, ms: M[]): M[] {
    ms.forEach((m, i) => this.children.set(`${name}.${i}`, m));
    return ms;
  }

  *namedParameters(prefix = ""): Generator<[string, Tensor]> {
    for (const [n, p] of this.params) yield [prefix + n, p];
    for (const [n, c] of this.children) yield* c.namedParameters(`${prefix}${n}.`);
  }

  *namedBuffers(prefix = ""): Generator<[string, Tensor]> {
    for (const [n, b] of this.buffers) yield [prefix + n, b];
    for (const [n, c] of this.children) yield* c.namedBuffers(`${prefix}${n}.`);
  }

  parameters(): Tensor[] {
    return [...this.namedParameters()].map(([, p]) => p);
  }

  *namedModules(prefix = ""): Generator<[string, Module]> {
    yield [prefix.replace(/\.$/, ""), this];
    for (const [n, c] of this.children) yield* c.namedModules(`${prefix}${n}.`);
  }

  /** Number of distinct parameter elements (a tied weight counts once). */
  numParameters(): number {
    return [...new Set(this.parameters())].reduce((n, p) => n + p.numel, 0);
  }

  train(on = true): this {
    for (const [, m] of this.namedModules()) m.training = on;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Parameters and buffers by name; a tied parameter appears under each of its names. */
  stateDict(): Record<string, Tensor> {
    return Object.fromEntries([...this.namedParameters(), ...this.namedBuffers()]);
  }

  /**
   * Copy values into the parameters and buffers by name. strict: every parameter must be present and no
   * unknown name may appear; shapes must match. Errors name the parameter and both shapes.
   */
  loadStateDict(sd: Record<string, Tensor>, strict = true): void {
    const own = this.stateDict();
    if (strict) {
      const missing = Object.keys(own).filter((k) => !(k in sd));
      const unexpected = Object.keys(sd).filter((k) => !(k in own));
      if (missing.length || unexpected.length) {
        throw new Error(`loadStateDict: ${missing.length ? `missing ${missing.join(", ")}` : ""}${missing.length && unexpected.length ? "; " : ""}${unexpected.length ? `unexpected ${unexpected.join(", ")}` : ""}`);
      }
    }
    for (const [k, p] of Object.entries(own)) {
      const src = sd[k];
      if (!src) continue;
      if (!sameShape(src.shape, p.shape)) throw new Error(`loadStateDict: ${k} has shape ${fmtShape(src.shape)}, the model expects ${fmtShape(p.shape)}`);
      p.data.set(src.to(p.dtype).toTypedArray());
    }
  }

  /** Freeze (or unfreeze) every parameter whose name matches. */
  requiresGrad_(on: boolean, match: (name: string) => boolean = () => true): this {
    for (const [n, p] of this.namedParameters()) if (match(n)) p.requiresGrad = on;
    return this;
  }

  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }
}

export { Tensor };
