// Storage allocation: recycled float32 storage when there is some, fresh otherwise. Allocating a fresh
// ArrayBuffer per op output (and collecting it) costs more than a memory-bound kernel that writes it:
// page faults on fresh memory, GC, and cache misses that a recently freed buffer would not have (about
// a fifth of a small GPT's training step). JS has no refcounts, so storage is recycled only where its
// lifetime is known: gradients that the autograd engine created and consumed (runBackward), and
// whatever a tidy() scope allocated and did not let escape (scope.ts). Recycled arrays are zero-filled
// again before reuse unless the caller asks for uninitialized storage. float32 storage and 16-bit
// storage (the bf16 / fp16 operands of mixed precision) are recycled, each in its own lists.

import type { DType, Storage } from "./dtype.js";

const CAP_BYTES = 1024 * 2 ** 20;  // most bytes kept for reuse; beyond this, storage goes to the GC
type Recyclable = Float32Array | Uint16Array;
// free lists by element count: float32 at key n, 16-bit at key -n - 1
const free = new Map<number, Recyclable[]>();
const keyOf = (a: Recyclable): number => (a instanceof Float32Array ? a.length : -a.length - 1);
const inFree = new WeakSet<Storage>();  // a storage is never listed twice
let freeBytes = 0;
const recorders: Set<Storage>[] = [];

/** A recycled float32 array of n elements (zero-filled if `zero`), or null. */
export function takeRecycled(n: number, zero: boolean): Float32Array | null {
  return take(n, zero) as Float32Array | null;
}

function take(key: number, zero: boolean): Recyclable | null {
  const a = free.get(key)?.pop();
  if (!a) return null;
  inFree.delete(a);
  freeBytes -= a.byteLength;
  if (zero) a.fill(0);
  return a;
}

/** Record the float32 storages allocated from now on into a new set (recorders nest); returns it. */
export function recordBirths(): Set<Storage> {
  const born = new Set<Storage>();
  recorders.push(born);
  return born;
}

/** Stop the recorder that recordBirths returned (the innermost one). */
export function stopRecordingBirths(born: Set<Storage>): void {
  if (recorders[recorders.length - 1] !== born) throw new Error("stopRecordingBirths: recorders must stop innermost first");
  recorders.pop();
}

export function noteBirth(data: Storage): void {
  for (const r of recorders) r.add(data);
}

/** Give a float32 or 16-bit storage back for reuse: the caller guarantees that nothing refers to it. */
export function recycle(data: Storage): void {
  // An enclosing tidy() scope recorded its birth too: forget it there, or a long outer scope would keep
  // every storage its inner scopes freed reachable (the pool's cap would then bound nothing) and free it twice.
  for (const r of recorders) r.delete(data);
  if (!(data instanceof Float32Array || data instanceof Uint16Array) || inFree.has(data) || freeBytes + data.byteLength > CAP_BYTES) return;
  inFree.add(data);
  const key = keyOf(data);
  let list = free.get(key);
  if (!list) free.set(key, (list = []));
  list.push(data);
  freeBytes += data.byteLength;
}

/**
 * Storage of n elements, zero-filled unless `uninitialized`: then its contents are arbitrary (like
 * torch.empty), for callers whose kernel writes every element. Skipping the zero fill matters: a
 * fresh zero-filled buffer costs a memset plus page faults, ~7 % of a small GPT's training step.
 */
export function allocStorage(dtype: DType, n: number, uninitialized = false): Storage {
  switch (dtype) {
    case "float32": {
      const a = takeRecycled(n, !uninitialized) ?? (uninitialized ? new Float32Array(unfilled(n * 4)) : new Float32Array(n));
      noteBirth(a);
      return a;
    }
    case "float64": return uninitialized ? new Float64Array(unfilled(n * 8)) : new Float64Array(n);
    case "int32": return new Int32Array(n);
    case "bfloat16": case "float16": {
      const a = (take(-n - 1, !uninitialized) as Uint16Array | null) ?? (uninitialized ? new Uint16Array(unfilled(n * 2)) : new Uint16Array(n));
      noteBirth(a);
      return a;
    }
  }
}

// Node's allocUnsafeSlow: a buffer of its own (offset 0, malloc-aligned) without the zero fill.
const unfilled = (bytes: number): ArrayBuffer => Buffer.allocUnsafeSlow(bytes).buffer as ArrayBuffer;
