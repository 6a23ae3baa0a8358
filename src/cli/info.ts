// `tsformer info`: version, backend, threads, CPU features.

import { cpus } from "node:os";
import * as T from "../index.js";

export function info(): Record<string, unknown> {
  const features = T.nativeCpuFeatures();
  return {
    version: T.version(),
    node: process.version,
    backend: T.backend().name,
    backends: T.availableBackends(),
    threads: T.getNativeThreads(),
    cpu: cpus()[0]?.model ?? "unknown",
    cpuFeatures: features.length ? features : ["(native addon not loaded: " + T.nativeLoadError + ")"],
  };
}

export function printInfo(json: boolean): void {
  const i = info();
  if (json) { console.log(JSON.stringify(i)); return; }
  for (const [k, v] of Object.entries(i)) console.log(`${k.padEnd(12)} ${Array.isArray(v) ? v.join(" ") : String(v)}`);
}
