// Reverse-mode autograd. Each differentiable op records one GradNode on its output: the inputs, a
// backward closure mapping the output gradient to input gradients, and the storages it saved (counted
// by memory accounting). backward() walks the graph once in reverse topological order and then frees it.

import type { Tensor } from "./tensor.js";
import type { Storage } from "./dtype.js";
import { releaseSaved, retainSaved } from "./memory.js";
import { recordBirths, recycle, stopRecordingBirths } from "./recycle.js";
import { keep } from "./scope.js";

export type BackwardFn = (gradOut: Tensor) => (Tensor | null)[];

export class GradNode {
  private savedHandle: number[];
  private fn: BackwardFn | null;

  constructor(readonly op: string, readonly inputs: (Tensor | null)[], fn: BackwardFn, saved: Tensor[]) {
    this.fn = fn;
    this.savedHandle = retainSaved(saved.map((t) => t.data));
  }

  apply(gradOut: Tensor): (Tensor | null)[] {
    if (!this.fn) {
      throw new Error(`backward through '${this.op}' a second time: the graph was freed by the first backward()`);
    }
    return this.fn(gradOut);
  }

  release(): void {
    releaseSaved(this.savedHandle);
    this.savedHandle = [];
    this.fn = null;
  }
}

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Run fn without recording a graph (like torch.no_grad). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** True when an op on these inputs must record a node. */
export function needsGrad(inputs: readonly (Tensor | null | undefined)[]): boolean {
  if (!gradEnabled) return false;
  for (const t of inputs) if (t && t.requiresGrad) return true;
  return false;
}

/** Attach a node to `out` when any input requires grad. Returns out for chaining. */
export function record(out: Tensor, op: string, inputs: (Tensor | null)[], fn: BackwardFn, saved: Tensor[] = []): Tensor {
  if (!needsGrad(inputs)) return out;
  out.requiresGrad = true;
  out.node = new GradNode(op, inputs, fn, saved);
  return out;
}

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Iterative DFS: deep graphs (long sequences of ops) must not overflow the JS stack.
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.node ? t.node.inputs : [];
    if (i < inputs.length) {
      top[1]++;
      const x = inputs[i];
      if (x && x.requiresGrad && !seen.has(x)) { seen.add(x); stack.push([x, 0]); }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order.reverse();
}

/**
 * Backpropagate from `root` (seed defaults to ones for a scalar). Gradients accumulate into the
 * `.grad` of leaf tensors that require grad; the graph is freed unless retainGraph.
 */
export function runBackward(root: Tensor, seed: Tensor, add: (a: Tensor, b: Tensor) => Tensor, retainGraph = false): void {
  const order = topoOrder(root);
  const grads = new Map<Tensor, Tensor>([[root, seed]]);
  // Storage of gradients pending in `grads`, counted (add's backward hands the same tensor to both
  // inputs; reshape's returns a view). A storage allocated during this pass whose count falls to 0
  // and that never became a leaf's .grad has no other holder: it is recycled for later allocations.
  const born = recordBirths(), escaped = new Set<Storage>(), pending = new Map<Storage, number>();
  const hold = (g: Tensor) => { pending.set(g.data, (pending.get(g.data) ?? 0) + 1); };
  const drop = (g: Tensor) => {
    const c = (pending.get(g.data) ?? 0) - 1;
    if (c > 0) { pending.set(g.data, c); return; }
    pending.delete(g.data);
    if (born.has(g.data) && !escaped.has(g.data)) recycle(g.data);
  };
  hold(seed);
  try {
    noGrad(() => {
      for (const t of order) {
        const g = grads.get(t);
        grads.delete(t);
        if (!g) continue;
        if (!t.node) {
          t.grad = keep(t.grad ? add(t.grad, g) : g);
          escaped.add(t.grad.data);
          drop(g);
          continue;
        }
        const ins = t.node.apply(g);
        const flowing = t.node.inputs.map((x, i) => (x && x.requiresGrad ? ins[i] ?? null : null));
        for (const gi of flowing) if (gi) hold(gi);
        t.node.inputs.forEach((x, i) => {
          const gi = flowing[i];
          if (!x || !gi) return;
          const prev = grads.get(x);
          if (!prev) { grads.set(x, gi); return; }
          const sum = add(prev, gi);
          hold(sum);
          grads.set(x, sum);
          drop(prev);
          drop(gi);
        });
        drop(g);
      }
    });
  } finally {
    stopRecordingBirths(born);
  }
  if (!retainGraph) for (const t of order) if (t.node) t.node.release();
}
