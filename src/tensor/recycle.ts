// Recycled float32 storage. Allocating a fresh ArrayBuffer per op output (and collecting it) costs more
// than a memory-bound kernel that writes it: page faults on fresh memory, GC, and cache misses that a
// recently freed buffer would not have (measured: ~20 % of a small GPT's training step). JS has no
// refcounts, so storage is recycled only where its lifetime is known: gradients that the autograd
// engine created and consumed (runBackward), and whatever a tidy() scope allocated and did not let
// escape (scope.ts). Recycled arrays are zero-filled again before reuse unless the caller asks for
// uninitialized storage.

import type { Storage } from "./dtype.js";

const CAP_BYTES = 1024 * 2 ** 20;  // most bytes kept for reuse; beyond this, storage goes to the GC
const free = new Map<number, Float32Array[]>();
const inFree = new WeakSet<Storage>();  // a storage is never listed twice
let freeBytes = 0;
const recorders: Set<Storage>[] = [];

/** A recycled array of n elements (zero-filled if `zero`), or null. */
export function takeRecycled(n: number, zero: boolean): Float32Array | null {
  const a = free.get(n)?.pop();
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

/** Give a float32 storage back for reuse: the caller guarantees that nothing refers to it. */
export function recycle(data: Storage): void {
  if (!(data instanceof Float32Array) || inFree.has(data) || freeBytes + data.byteLength > CAP_BYTES) return;
  inFree.add(data);
  let list = free.get(data.length);
  if (!list) free.set(data.length, (list = []));
  list.push(data);
  freeBytes += data.byteLength;
}
