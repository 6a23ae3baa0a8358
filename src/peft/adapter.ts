// Houlsby adapters (Houlsby et al. 2019, "Parameter-Efficient Transfer Learning for NLP", §2.1, Fig. 2):
// a bottleneck h + up(f(down(h))) (d -> m -> d, with its own skip connection) after the attention's
// output projection and after the FFN, before each residual add.
//
// Where it goes: every mixer and FFN ends with its output projection (the Linear whose weight has the
// init role "o", resp. "ffn_out": attn.wo, mlp.w2 / mlp.fc2), so the adapter wraps that Linear. The
// wrapper registers the Linear's own tensors under their own names, so every base parameter keeps its
// name (blocks.0.attn.wo.weight) and a base state dict still loads; the adapter's parameters are
// blocks.<i>.attn.wo.adapter.{down,up}.{weight,bias} and blocks.<i>.mlp.<w2|fc2>.adapter.*.
// (Wrapping attn itself would have to rename its children, blocks.0.attn.inner.wq.weight, or mirror
// them, and a later replaceChild of attn.wq would then miss the inner module's field.)
// The block's dropout applies after the adapter (the reference implementation, google-research/
// adapter-bert modeling.py transformer_model, applies it before); identical without dropout, the usual
// fine-tuning setting.
//
// Init: down ~ N(0, 1e-3) truncated to two standard deviations (adapter-bert's feedforward_adapter,
// init_scale 1e-3); up = 0 and both biases 0, so the adapted model starts exactly as the base (the
// reference's near-zero up-projection made exact; up gets a gradient from the first step, down from
// the second).

import * as ops from "../ops/index.js";
import { RandomGenerator } from "../tensor/rng.js";
import type { Tensor } from "../tensor/tensor.js";
import { Module } from "../nn/module.js";
import { Linear, skipInit } from "../nn/layers.js";
import { truncNormal_ } from "../nn/init-fns.js";
import type { Role } from "../nn/init.js";
import type { TransformerLM } from "../models/transformer.js";

export interface HoulsbyOptions {
  /** Bottleneck size m: each adapter maps d -> m -> d (2md + m + d parameters). */
  bottleneck: number;
  /** The bottleneck's nonlinearity (default "gelu", the erf form; adapter-bert's is the tanh approximation). */
  nonlinearity?: "gelu" | "relu";
  /** Draws the down-projections (default RandomGenerator(0)). */
  generator?: RandomGenerator;
}

/** h + up(f(down(h))). */
export class HoulsbyAdapter extends Module {
  readonly down: Linear;
  readonly up: Linear;

  constructor(d: number, m: number, readonly nonlinearity: "gelu" | "relu", g: RandomGenerator) {
    super();
    this.down = this.child("down", skipInit(() => new Linear(d, m)));
    this.up = this.child("up", skipInit(() => new Linear(m, d)));
    truncNormal_(this.down.weight, { std: 1e-3, a: -2e-3, b: 2e-3, generator: g });
  }

  forward(h: Tensor): Tensor {
    const z = this.down.forward(h);
    return ops.add(h, this.up.forward(this.nonlinearity === "gelu" ? ops.gelu(z) : ops.relu(z)));
  }
}

/** A Linear followed by an adapter; the Linear's parameters keep their names (weight, bias) here. */
export class AdaptedLinear extends Module {
  readonly adapter: HoulsbyAdapter;

  constructor(readonly base: Linear, adapter: HoulsbyAdapter) {
    super();
    const roles = new Map<string, Role>([...base.namedRoles()].map(([n, , r]) => [n, r]));
    for (const [n, t] of base.namedParameters()) {
      const trainable = t.requiresGrad;
      this.param(n, t, roles.get(n)).requiresGrad = trainable;  // param() marks it trainable: keep a frozen base frozen
    }
    this.adapter = this.child("adapter", adapter);
  }

  forward(x: Tensor): Tensor {
    return this.adapter.forward(this.base.forward(x));
  }
}

/** The paths of the Linear layers that received an adapter, and a test for adapter parameter names. */
export interface HoulsbyAdapters {
  /** e.g. ["blocks.0.attn.wo", "blocks.0.mlp.w2", ...]; the adapter of path P has parameters P.adapter.*. */
  paths: string[];
  isAdapterParam(name: string): boolean;
}

const isAdapterParam = (name: string): boolean => /\.adapter\.(down|up)\.(weight|bias)$/.test(name);

/**
 * Adds a Houlsby adapter after the output projection of every block's mixer and FFN (in place, through
 * Module.replaceChild). The base's parameters keep their names and trainability: freeze them with
 * model.requiresGrad_(false, (n) => !result.isAdapterParam(n)).
 */
export function addHoulsbyAdapters(model: TransformerLM, o: HoulsbyOptions): HoulsbyAdapters {
  const m = o.bottleneck;
  if (!Number.isSafeInteger(m) || m <= 0) throw new RangeError(`addHoulsbyAdapters: bottleneck must be an integer >= 1, got ${m}`);
  const f = o.nonlinearity ?? "gelu";
  if (f !== "gelu" && f !== "relu") throw new RangeError(`addHoulsbyAdapters: nonlinearity must be "gelu" or "relu", got ${JSON.stringify(f)}`);
  const g = o.generator ?? new RandomGenerator(0);
  const targets = model.blocks.flatMap((b, i) => [
    outputProjection(b.attn, `blocks.${i}.attn`, "o"),
    ...(b.mlp ? [outputProjection(b.mlp, `blocks.${i}.mlp`, "ffn_out")] : []),
  ]);
  for (const [path, linear] of targets) model.replaceChild(path, new AdaptedLinear(linear, new HoulsbyAdapter(linear.outFeatures, m, f, g)));
  return { paths: targets.map(([p]) => p), isAdapterParam };
}

/** The one child of `part` (at `path`) whose weight has the role: [its path, the Linear]. */
function outputProjection(part: Module, path: string, role: Role): [string, Linear] {
  const names = new Set([...part.namedRoles()].filter(([, , r]) => r === role).map(([n]) => n.split(".")[0]));
  if (names.size !== 1) throw new Error(`addHoulsbyAdapters: ${path} has ${names.size} output projections (weights with role "${role}"), expected one`);
  const [name] = names;
  const child = new Map(part.namedModules()).get(name);
  if (child instanceof AdaptedLinear) throw new Error(`addHoulsbyAdapters: ${path}.${name} already has a Houlsby adapter`);
  if (!(child instanceof Linear)) throw new Error(`addHoulsbyAdapters: ${path}.${name} is a ${child?.constructor.name}, not a Linear (add Houlsby adapters before wrapping it)`);
  return [`${path}.${name}`, child];
}
