// The active backend. Kernels are looked up through here on every call so a backend switch takes
// effect immediately; "native" is js with the native kernels laid over it (see backend/native).

import type { Backend } from "./backend.js";
import { jsBackend } from "./js/index.js";

const backends = new Map<string, Backend>([["js", jsBackend]]);
let active: Backend = jsBackend;

export function registerBackend(b: Backend): void {
  backends.set(b.name, b);
}

export function backend(): Backend {
  return active;
}

export function setBackend(name: string): void {
  const b = backends.get(name);
  if (!b) throw new Error(`unknown backend '${name}': available are ${[...backends.keys()].join(", ")}`);
  active = b;
}

export function availableBackends(): string[] {
  return [...backends.keys()];
}
