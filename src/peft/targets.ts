// Which modules a PEFT method adapts: PEFT's target_modules rule (tuners_utils.py
// check_target_module_exists): a string is a regular expression matched against the whole module
// name; a list matches a module whose name equals an entry or ends with "." + entry. A module matches
// by our name (blocks.0.attn.wq) or, for a model with an HF layout, by HF's (model.layers.0.self_attn.q_proj).

import type { Module } from "../nn/module.js";
import { hfArchFor, type HFArch } from "../models/hf/config.js";
import { hfModuleNames, type HFModuleName } from "../models/hf/weights.js";
import type { ModelConfig } from "../models/config.js";

export type TargetModules = string | string[];

/** How a model's modules are named in adapter files: HF's names (for an HF architecture) or ours. */
export interface ModuleNaming {
  arch: HFArch | null;
  /** our module path -> HF's, for the modules that have one */
  hf: Map<string, HFModuleName>;
}

/** HF names when the config has an HF layout, else tsformer's own. */
export function moduleNaming(config: ModelConfig): ModuleNaming {
  let arch: HFArch | null = null;
  try {
    arch = hfArchFor(config);
  } catch {
    return { arch: null, hf: new Map() };
  }
  return { arch, hf: hfModuleNames(arch, config) };
}

/** The name adapter files use for one of our modules. */
export function externalName(naming: ModuleNaming, ours: string): string {
  return naming.hf.get(ours)?.hf ?? ours;
}

export function matchesTarget(target: TargetModules, names: string[]): boolean {
  if (typeof target === "string") {
    const re = new RegExp(`^(?:${target})$`);
    return names.some((n) => re.test(n));
  }
  return names.some((n) => target.some((t) => n === t || n.endsWith(`.${t}`)));
}

/** The modules of `model` that `accept` takes and `target` selects, by our path; none matching is an error (`kind` names them). */
export function selectModules(model: Module, target: TargetModules, naming: ModuleNaming, accept: (m: Module) => boolean, kind: string, what: string): [string, Module][] {
  if (typeof target === "string") {
    try { new RegExp(target); } catch (e) { throw new Error(`${what}: targetModules ${JSON.stringify(target)} is not a valid regular expression (${(e as Error).message})`); }
  } else if (!Array.isArray(target) || target.length === 0 || !target.every((t) => typeof t === "string" && t.length > 0)) {
    throw new Error(`${what}: targetModules must be a non-empty list of module names or a regular expression string, got ${JSON.stringify(target)}`);
  }
  const all = [...model.namedModules()].filter(([n, m]) => n && accept(m));
  const hit = all.filter(([n]) => matchesTarget(target, [n, externalName(naming, n)]));
  if (hit.length === 0) {
    const examples = [...new Set(all.map(([n]) => externalName(naming, n).split(".").pop()!))].slice(0, 12);
    throw new Error(`${what}: targetModules ${JSON.stringify(target)} match no ${kind} layer; this model's ${kind} layers end in: ${examples.join(", ")}`);
  }
  return hit;
}
