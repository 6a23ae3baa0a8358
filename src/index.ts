// tsformer public API.
export { Tensor, type TensorLike } from "./tensor/tensor.js";
export type { DType } from "./tensor/dtype.js";
export { noGrad, isGradEnabled } from "./tensor/autograd.js";
export { Generator, manualSeed, defaultGenerator, type RngState } from "./tensor/rng.js";
export { memoryStats, resetPeakMemory, type MemoryStats } from "./tensor/memory.js";
export { backend, setBackend, availableBackends } from "./backend/registry.js";
export { nativeCpuFeatures, setNativeThreads, getNativeThreads, nativeLoadError } from "./backend/native/addon.js";
export type { Backend } from "./backend/backend.js";
export * from "./ops/index.js";
export * from "./io/safetensors.js";
