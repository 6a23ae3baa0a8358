// `tsformer info`: version, backend, threads, CPU features.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { cpus } from "node:os";
import * as T from "../index.js";
import { packageRoot } from "../backend/native/addon.js";

export function info(): Record<string, unknown> {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as { version: string };
  const features = T.nativeCpuFeatures();
  return {
    version: pkg.version,
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
