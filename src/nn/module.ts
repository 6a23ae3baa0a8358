// Module: a named tree of parameters and submodules (like torch.nn.Module). Parameters are leaf
// tensors with requiresGrad; names are dotted paths ("blocks.0.attn.wq.weight"). Buffers are
// persistent non-trainable state (torch's register_buffer): saved and loaded with the parameters,
// never seen by the optimizer. A parameter may declare its init role when it is created (what it is
// for the init schemes of nn/init.ts: an embedding, a query projection, an FFN output, ...).

import { parametersUpdated } from "../ops/autocast.js";
import { fmtShape, sameShape } from "../tensor/shape.js";
import { keep } from "../tensor/scope.js";
import { releaseGrad } from "../tensor/autograd.js";
import { Tensor } from "../tensor/tensor.js";
import type { Role } from "./init.js";

export interface StateDictOptions {
  /** Keep only these entries (e.g. an adapter's parameters). */
  only?: (name: string, t: Tensor) => boolean;
  /** Only parameters that require grad (buffers and frozen weights left out). */
  trainableOnly?: boolean;
}

/** What loadStateDict({ strict: false }) skipped, as torch's load_state_dict reports it. */
export interface LoadResult { missing: string[]; unexpected: string[] }

export class Module {
  training = true;
  private readonly params = new Map<string, Tensor>();
  private readonly roles = new Map<string, Role>();
  private readonly buffers = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();

  /**
   * Register a parameter (a leaf that requires grad unless frozen later). role: how the model's init
   * scheme draws it; without one the module's own values stay (zeros, ones, or its own draw).
   */
  protected param(name: string, t: Tensor, role?: Role): Tensor {
    t.requiresGrad_(true);
    this.params.set(name, keep(t));
    if (role) this.roles.set(name, role);
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

  /** The submodule registered under name now (after any replaceChild), or undefined. */
  protected childNamed(name: string): Module | undefined {
    return this.children.get(name);
  }

  protected childList<M extends Module>(name: string, ms: M[]): M[] {
    ms.forEach((m, i) => this.children.set(`${name}.${i}`, m));
    return ms;
  }

  /**
   * Swap the submodule at a dotted path ("blocks.0.attn.wq") for another (e.g. a LoRA wrapper around a
   * Linear); returns the old one. The owner's fields that held the old module (directly or in an
   * array, as childList keeps them) are pointed at the new one, so its forward runs the replacement.
   */
  replaceChild(path: string, m: Module): Module {
    for (const [n, owner] of this.namedModules()) {
      const name = !n ? path : path.startsWith(`${n}.`) ? path.slice(n.length + 1) : null;
      const old = name === null ? undefined : owner.children.get(name);
      if (old) {
        owner.children.set(name!, m);
        const fields = owner as unknown as Record<string, unknown>;
        for (const k of Object.keys(fields)) {
          const f = fields[k];
          if (f === old) fields[k] = m;
          else if (Array.isArray(f)) f.forEach((x, i) => { if (x === old) f[i] = m; });
        }
        return old;
      }
    }
    throw new Error(`replaceChild: no submodule ${path}`);
  }

  *namedParameters(prefix = ""): Generator<[string, Tensor]> {
    for (const [n, p] of this.params) yield [prefix + n, p];
    for (const [n, c] of this.children) yield* c.namedParameters(`${prefix}${n}.`);
  }

  /** The parameters that declared an init role: a module's own first, then its children's (the init's draw order). */
  *namedRoles(prefix = ""): Generator<[string, Tensor, Role]> {
    for (const [n, p] of this.params) {
      const r = this.roles.get(n);
      if (r) yield [prefix + n, p, r];
    }
    for (const [n, c] of this.children) yield* c.namedRoles(`${prefix}${n}.`);
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
  stateDict(o: StateDictOptions = {}): Record<string, Tensor> {
    const all: [string, Tensor][] = o.trainableOnly ? [...this.namedParameters()].filter(([, p]) => p.requiresGrad)
      : [...this.namedParameters(), ...this.namedBuffers()];
    return Object.fromEntries(o.only ? all.filter(([n, t]) => o.only!(n, t)) : all);
  }

  /**
   * Copy values into the parameters and buffers by name; shapes must match (errors name the parameter
   * and both shapes). strict (default): every entry must be present and no unknown name may appear.
   * Non-strict loads what matches (an adapter-only dict) and reports the rest, like torch.
   */
  loadStateDict(sd: Record<string, Tensor>, opts: { strict?: boolean } | boolean = {}): LoadResult {
    const o = typeof opts === "boolean" ? { strict: opts } : opts;  // torch's load_state_dict(sd, strict)
    const own = this.stateDict();
    const missing = Object.keys(own).filter((k) => !(k in sd));
    const unexpected = Object.keys(sd).filter((k) => !(k in own));
    if ((o.strict ?? true) && (missing.length || unexpected.length)) {
      throw new Error(`loadStateDict: ${missing.length ? `missing ${missing.join(", ")}` : ""}${missing.length && unexpected.length ? "; " : ""}${unexpected.length ? `unexpected ${unexpected.join(", ")}` : ""}`);
    }
    // every shape is checked before anything is copied: a refused load leaves the module as it was
    const pairs = Object.entries(own).flatMap(([k, p]) => (sd[k] ? [[k, p, sd[k]] as const] : []));
    for (const [k, p, src] of pairs) {
      if (!sameShape(src.shape, p.shape)) throw new Error(`loadStateDict: ${k} has shape ${fmtShape(src.shape)}, the model expects ${fmtShape(p.shape)}`);
    }
    for (const [, p, src] of pairs) p.data.set(src.to(p.dtype).toTypedArray(), p.offset);
    parametersUpdated();
    return { missing, unexpected };
  }

  /** Freeze (or unfreeze) every parameter whose name matches. */
  requiresGrad_(on: boolean, match: (name: string) => boolean = () => true): this {
    for (const [n, p] of this.namedParameters()) if (match(n)) p.requiresGrad = on;
    return this;
  }

  /**
   * Drop the gradients (.grad = null, torch's zero_grad(set_to_none=True)). Gradient storage that backward
   * allocated is reused by later steps, so an old .grad tensor must not be read afterwards (it throws).
   */
  zeroGrad(): void {
    for (const p of this.parameters()) releaseGrad(p);
  }
}

export { Tensor };
