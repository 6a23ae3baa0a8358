// Recycled float32 storage. Allocating a fresh zero-filled ArrayBuffer per op output (and collecting it)
// costs more than a memory-bound kernel that writes it: ~20 % of a small GPT's training step. JS has
// no refcounts, so storage is recycled only where its lifetime is known: gradients that the autograd
// engine created, handed from node to node and consumed (runBackward), which nobody else can hold.
// Recycled arrays are zero-filled again before reuse unless the caller asks for uninitialized storage.

import type { Storage } from "./dtype.js";

const CAP_BYTES = 256 * 2 ** 20;  // most bytes kept for reuse; beyond this, storage goes to the GC
const free = new Map<number, Float32Array[]>();
const inFree = new WeakSet<Storage>();  // a storage is never listed twice
let freeBytes = 0;
let born: Set<Storage> | null = null;

/** A recycled array of n elements (zero-filled if `zero`), or null. */
export function takeRecycled(n: number, zero: boolean): Float32Array | null {
  const a = free.get(n)?.pop();
  if (!a) return null;
  inFree.delete(a);
  freeBytes -= a.byteLength;
  if (zero) a.fill(0);
  return a;
}

/** Record storages allocated from now on (while a backward pass runs); returns the set. */
export function recordBirths(): Set<Storage> {
  born = new Set();
  return born;
}

export function stopRecordingBirths(): void {
  born = null;
}

export function noteBirth(data: Storage): void {
  born?.add(data);
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
