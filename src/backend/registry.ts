// The active backend. Kernels are looked up through here on every call so a switch takes effect at
// once. The default is "native" when the addon loaded (TSFORMER_BACKEND=js forces the reference).

import type { Backend } from "./backend.js";
import { jsBackend } from "./js/index.js";
import { makeNativeBackend } from "./native/index.js";
import { nativeLoadError } from "./native/addon.js";

const backends = new Map<string, Backend>([["js", jsBackend]]);
const nativeBackend = makeNativeBackend();
if (nativeBackend) backends.set("native", nativeBackend);
else if (!/TSFORMER_NATIVE=0/.test(nativeLoadError)) {
  process.emitWarning(`native backend unavailable (${nativeLoadError}); using the pure-TypeScript backend`, { code: "TSFORMER_NO_NATIVE" });
}

function initial(): Backend {
  const want = process.env.TSFORMER_BACKEND;
  if (want) {
    const b = backends.get(want);
    if (!b) throw new Error(`TSFORMER_BACKEND=${want} is not available: expected one of ${[...backends.keys()].join(", ")}`);
    return b;
  }
  return nativeBackend ?? jsBackend;
}

let active: Backend = initial();

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
