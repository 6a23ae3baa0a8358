// Memory accounting: bytes held by live tensor storage (current and peak since reset) and bytes saved
// for backward by the autograd graph. Storage is garbage-collected, so "live" ends when the storage is
// collected or explicitly disposed; saved-for-backward bytes are exact: they are released by backward().

import type { Storage } from "./dtype.js";

let live = 0;
let peak = 0;
let saved = 0;
let savedPeak = 0;

const disposed = new WeakSet<Storage>();
const liveRegistry = new FinalizationRegistry<number>((bytes) => { live -= bytes; });

/** Count a freshly allocated storage as live until it is collected or disposed. */
export function trackStorage(data: Storage): void {
  live += data.byteLength;
  if (live > peak) peak = live;
  liveRegistry.register(data, data.byteLength, data);
}

/** Stop counting a storage now (Tensor.dispose); idempotent. */
export function untrackStorage(data: Storage): void {
  if (disposed.has(data)) return;
  disposed.add(data);
  if (liveRegistry.unregister(data)) live -= data.byteLength;
}

// Saved tensors are refcounted per storage so two nodes saving the same activation count it once.
let nextId = 1;
const ids = new WeakMap<Storage, number>();
const savedCounts = new Map<number, { count: number; bytes: number }>();

function idOf(data: Storage): number {
  let id = ids.get(data);
  if (id === undefined) { id = nextId++; ids.set(data, id); }
  return id;
}

/** Mark storages as saved for backward; returns the handle to release them with. */
export function retainSaved(list: Storage[]): number[] {
  const handle: number[] = [];
  for (const data of list) {
    const id = idOf(data);
    if (handle.includes(id)) continue;
    handle.push(id);
    const e = savedCounts.get(id);
    if (e) e.count++;
    else {
      savedCounts.set(id, { count: 1, bytes: data.byteLength });
      saved += data.byteLength;
      if (saved > savedPeak) savedPeak = saved;
    }
  }
  return handle;
}

export function releaseSaved(handle: number[]): void {
  for (const id of handle) {
    const e = savedCounts.get(id);
    if (!e) continue;
    if (--e.count === 0) { savedCounts.delete(id); saved -= e.bytes; }
  }
}

export interface MemoryStats {
  /** Bytes of tensor storage currently alive (not yet collected or disposed). */
  liveBytes: number;
  /** Highest liveBytes since the last reset. */
  peakLiveBytes: number;
  /** Bytes the autograd graph currently keeps for backward. */
  savedBytes: number;
  /** Highest savedBytes since the last reset. */
  peakSavedBytes: number;
}

export function memoryStats(): MemoryStats {
  return { liveBytes: live, peakLiveBytes: peak, savedBytes: saved, peakSavedBytes: savedPeak };
}

/** Reset the peaks to the current values. */
export function resetPeakMemory(): void {
  peak = live;
  savedPeak = saved;
}
