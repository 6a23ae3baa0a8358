// `tsformer info`: version, backend, threads, CPU features, and every TSFORMER_* environment variable
// (its value, or "(unset)", and what it does).

import { cpus } from "node:os";
import * as T from "../index.js";

/** Every environment variable tsformer reads (README "Environment variables" lists the same). */
export const ENV_VARS: Record<string, string> = {
  TSFORMER_THREADS: "native thread pool size (default: all cores; --threads overrides)",
  TSFORMER_BACKEND: "js | native: the kernel backend (default native when the addon loads)",
  TSFORMER_NATIVE: "0 = do not load the native addon",
  TSFORMER_ISA: "cap the native ISA level: scalar | avx2 | avx512 (default: the best the CPU has)",
  TSFORMER_MAX_MODEL_BYTES: "largest model (parameter bytes) a load may allocate (default 4 GiB)",
  TSFORMER_GEMM_MC: "GEMM tuning: rows per packed A block",
  TSFORMER_GEMM_KC: "GEMM tuning: depth per packed block",
  TSFORMER_GEMM_NC: "GEMM tuning: columns per packed B block",
  TSFORMER_GEMM_UA_PANELS: "GEMM tuning: panels of the unpacked-A path (0 disables it)",
  TSFORMER_GEMM_SMALL: "0 disables the small-GEMM path",
  TSFORMER_GEMM_COOP: "GEMM tuning: least m*n*k for which threads share one packed B (0 disables)",
};

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
    env: Object.fromEntries(Object.keys(ENV_VARS).map((k) => [k, process.env[k] ?? null])),
  };
}

export function printInfo(json: boolean): void {
  const i = info();
  if (json) { console.log(JSON.stringify(i)); return; }
  for (const [k, v] of Object.entries(i)) if (k !== "env") console.log(`${k.padEnd(12)} ${Array.isArray(v) ? v.join(" ") : String(v)}`);
  console.log("\nenvironment:");
  for (const [k, about] of Object.entries(ENV_VARS)) console.log(`  ${k.padEnd(25)} ${(process.env[k] ?? "(unset)").padEnd(8)} ${about}`);
}
