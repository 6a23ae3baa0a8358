// tidy(fn): a memory scope, as in TensorFlow.js. The float32 storage that fn allocates goes back to the
// recycle pool when fn ends, except what escapes: the tensors fn returns, gradients that backward()
// leaves on leaf tensors, parameters and buffers a Module registers, and anything passed to keep().
// Reusing storage this way is what makes a small model's training step fast in JS (recently freed
// buffers are in cache and need no page faults or GC); it is how PyTorch's caching allocator wins too.
//
// Safety: a tensor whose storage was recycled is dead; reading it throws an error that says why. So a
// tensor that fn stashes somewhere else (a cache, an outer variable) without keep() fails loudly on
// its next use instead of silently seeing another tensor's values.

import type { Storage } from "./dtype.js";
import { recordBirths, recycle, stopRecordingBirths } from "./recycle.js";

/** What a scope needs of a tensor (tensor.ts imports this module, so it cannot import Tensor back). */
export interface ScopedTensor {
  readonly data: Storage;
  readonly isDead: boolean;
  markDead(): void;
}

// The Tensor class, registered by tensor.ts when it loads: collect() recognizes returned tensors by it.
let tensorClass: abstract new (...args: never[]) => ScopedTensor = class {} as never;
export function registerTensorClass(cls: abstract new (...args: never[]) => ScopedTensor): void {
  tensorClass = cls;
}

interface Scope {
  born: Set<Storage>;
  tensors: ScopedTensor[];
  kept: Set<Storage>;
}

const scopes: Scope[] = [];

/** Called by every Tensor constructor: the innermost scope may have to kill it. */
export function noteTensor(t: ScopedTensor): void {
  if (scopes.length > 0) scopes[scopes.length - 1].tensors.push(t);
}

/** Let this tensor's storage outlive every enclosing tidy() scope. Returns t. */
export function keep<T extends ScopedTensor>(t: T): T {
  for (const s of scopes) s.kept.add(t.data);
  return t;
}

/**
 * The storages in a value: tensors in it, or arrays / plain objects of them, nested; `deep` also walks
 * class instances and Maps and takes bare float storages (a decoding state's buffers, keepReachable).
 */
function collect(v: unknown, out: Set<Storage>, seen: Set<unknown>, deep = false): void {
  if (v === null || typeof v !== "object" || seen.has(v)) return;
  seen.add(v);
  if (v instanceof tensorClass) { if (!v.isDead) out.add(v.data); return; }
  if (deep && (v instanceof Float32Array || v instanceof Uint16Array)) { out.add(v); return; }
  if (Array.isArray(v)) { for (const x of v) collect(x, out, seen, deep); return; }
  if (deep && v instanceof Map) { for (const x of v.values()) collect(x, out, seen, deep); return; }
  if (deep || Object.getPrototypeOf(v) === Object.prototype) for (const x of Object.values(v)) collect(x, out, seen, deep);
}

/**
 * Let every tensor and float storage reachable from root (through properties, arrays and Maps) outlive
 * the enclosing tidy() scopes: for objects that fn fills and that live on, such as a decoding state
 * whose KV cache or recurrent sums a forward pass allocated.
 */
export function keepReachable(root: unknown): void {
  if (scopes.length === 0) return;
  const found = new Set<Storage>();
  collect(root, found, new Set(), true);
  for (const s of scopes) for (const d of found) s.kept.add(d);
}

/**
 * Run fn and recycle the float32 storage it allocated that does not escape (see above). fn must be
 * synchronous. Scopes nest: what escapes an inner scope belongs to the outer one.
 */
export function tidy<T>(fn: () => T): T {
  const scope: Scope = { born: recordBirths(), tensors: [], kept: new Set() };
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
    if (result instanceof Promise) throw new TypeError("tidy: fn must be synchronous (it returned a Promise)");
    collect(result, scope.kept, new Set());
  } finally {
    scopes.pop();
    stopRecordingBirths(scope.born);
    const freed = new Set<Storage>();
    for (const s of scope.born) if (!scope.kept.has(s)) { freed.add(s); recycle(s); }
    const outer = scopes[scopes.length - 1];
    for (const t of scope.tensors) {
      if (t.isDead) continue;  // zeroGrad gave its storage back already
      if (freed.has(t.data)) t.markDead();
      else outer?.tensors.push(t);
    }
  }
  return result;
}
