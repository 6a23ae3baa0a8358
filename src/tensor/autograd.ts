// Reverse-mode autograd. Each differentiable op records one GradNode on its output: the inputs, the
// tensors it saved for backward (counted by memory accounting), and a backward closure that maps the
// output gradient to input gradients through an explicit context (torch.autograd.Function's ctx):
// ctx.saved is all the backward may read, ctx.needsInputGrad[i] says whether input i's gradient is
// wanted at all, so a frozen weight costs no weight-gradient GEMM. backward() walks the graph once in
// reverse topological order and then frees it.
//
// Higher-order gradients: with createGraph the walk runs with grad recording on and each node uses its
// graph backward, a formula written in differentiable ops (so the gradients it returns have a graph of
// their own, as in torch's create_graph=True). Ops without one throw when a createGraph walk reaches them.

import type { GradRecord, Tensor } from "./tensor.js";
import type { Storage } from "./dtype.js";
import { releaseSaved, retainSaved } from "./memory.js";
import { recordBirths, recycle, stopRecordingBirths } from "./recycle.js";
import { keep } from "./scope.js";

export interface BackwardCtx {
  /** Whether each input's gradient is wanted (torch's ctx.needs_input_grad); a null return is fine when not. */
  readonly needsInputGrad: readonly boolean[];
  /** The tensors the op saved for backward, in the order it passed them to record(). */
  readonly saved: readonly Tensor[];
}

export type BackwardFn = (gradOut: Tensor, ctx: BackwardCtx) => (Tensor | null)[];

export class GradNode implements GradRecord {
  private savedHandle: number[];
  private saved: Tensor[];
  private fn: BackwardFn | null;

  constructor(readonly op: string, readonly inputs: (Tensor | null)[], fn: BackwardFn, saved: Tensor[], private graphFn: BackwardFn | null) {
    this.fn = fn;
    this.saved = saved;
    this.savedHandle = retainSaved(saved.map((t) => t.data));
  }

  apply(gradOut: Tensor, needsInputGrad: boolean[], createGraph: boolean): (Tensor | null)[] {
    if (!this.fn) {
      throw new Error(`backward through '${this.op}' a second time: the graph was freed by the first backward() (pass retainGraph)`);
    }
    const ctx: BackwardCtx = { needsInputGrad, saved: this.saved };
    if (!createGraph) return this.fn(gradOut, ctx);
    if (!this.graphFn) throw new Error(`double backward is not implemented for ${this.op} (createGraph reached it)`);
    return this.graphFn(gradOut, ctx);
  }

  release(): void {
    releaseSaved(this.savedHandle);
    this.savedHandle = [];
    this.saved = [];
    this.fn = this.graphFn = null;
  }
}

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

function withGradMode<T>(on: boolean, fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = on;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Run fn without recording a graph (like torch.no_grad). */
export function noGrad<T>(fn: () => T): T {
  return withGradMode(false, fn);
}

/** Run fn recording a graph even inside noGrad (like torch.enable_grad). */
export function enableGrad<T>(fn: () => T): T {
  return withGradMode(true, fn);
}

/** True when an op on these inputs must record a node. */
export function needsGrad(inputs: readonly (Tensor | null | undefined)[]): boolean {
  if (!gradEnabled) return false;
  for (const t of inputs) if (t && t.requiresGrad) return true;
  return false;
}

/**
 * Attach a node to `out` when any input requires grad; returns out. `backward` may read only `saved`
 * (through ctx.saved) besides sizes and constants. `graphBackward` is the same derivative in
 * differentiable ops, used by createGraph walks; pass `backward` itself when it already is one.
 */
export function record(out: Tensor, op: string, inputs: (Tensor | null)[], backward: BackwardFn, saved: Tensor[] = [], graphBackward: BackwardFn | null = null): Tensor {
  if (!needsGrad(inputs)) return out;
  out.requiresGrad = true;
  out.node = new GradNode(op, inputs, backward, saved, graphBackward);
  return out;
}

/** record() for a backward written in differentiable ops: it serves createGraph walks as it is. */
export function recordComposite(out: Tensor, op: string, inputs: (Tensor | null)[], backward: BackwardFn, saved: Tensor[] = []): Tensor {
  return record(out, op, inputs, backward, saved, backward);
}

/**
 * Reverse topological order of the tensors requiring grad below root, and (when `targets` is given)
 * the set of those from which a target is reachable: only they need a gradient.
 */
function topoOrder(root: Tensor, targets: Set<Tensor> | null): { order: Tensor[]; reach: Set<Tensor> | null } {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const reach = targets && new Set<Tensor>();
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
      // post-order: every input of t is already decided (a DAG has no input still on the stack)
      if (reach && (targets!.has(t) || inputs.some((x) => x && reach.has(x)))) reach.add(t);
    }
  }
  return { order: order.reverse(), reach };
}

export interface BackwardOptions {
  /** Keep the graph for another backward (default: createGraph). */
  retainGraph?: boolean;
  /** Record the backward pass itself, so the gradients can be differentiated again. */
  createGraph?: boolean;
  /**
   * Return the gradients of these tensors (leaves or not) instead of accumulating into leaves' .grad
   * (torch.autograd.grad); only the part of the graph that leads to them is walked.
   */
  inputs?: Tensor[];
}

// Leaf gradients whose storage this module allocated during a backward pass: storage -> the one leaf
// whose .grad it is (null once a second leaf got it: add's backward hands one tensor to both inputs).
const ownedGrads = new WeakMap<Storage, { leaf: Tensor; grad: Tensor } | null>();

/**
 * t.grad = null. When backward allocated that gradient for t alone, its storage goes back for reuse
 * (as torch's caching allocator reuses a freed .grad) and the old gradient tensor is marked dead, so a
 * stale reference throws instead of reading reused memory. Without this every step would allocate
 * every weight's gradient afresh: page faults, and GC work that takes a core from the kernels.
 */
export function releaseGrad(t: Tensor): void {
  const g = t.grad;
  t.grad = null;
  if (g) release(t, g, "is a gradient that zeroGrad() released (its storage is being reused); copy it before zeroGrad() to keep it");
}

// Recycle g, a former .grad of t, if backward allocated it for t alone.
function release(t: Tensor, g: Tensor, why: string): void {
  if (g.isDead) return;
  const data = g.data, o = ownedGrads.get(data);
  if (!o || o.leaf !== t || o.grad !== g) return;
  ownedGrads.delete(data);
  g.markDead(why);
  recycle(data);
}

/**
 * Backpropagate `seed` (the gradient of root) through the graph. Without `inputs`, gradients accumulate
 * into the `.grad` of leaf tensors that require grad and [] is returned; with `inputs`, their gradients
 * are returned (null where root does not depend on one). The graph is freed unless retainGraph.
 */
export function runBackward(root: Tensor, seed: Tensor, add: (a: Tensor, b: Tensor) => Tensor, opts: BackwardOptions = {}): (Tensor | null)[] {
  const createGraph = opts.createGraph ?? false;
  const targets = opts.inputs ? new Set(opts.inputs) : null;
  const { order, reach } = topoOrder(root, targets);
  const needs = (x: Tensor | null): boolean => x !== null && x.requiresGrad && (!reach || reach.has(x));
  const grads = new Map<Tensor, Tensor>([[root, seed]]);
  const found = new Map<Tensor, Tensor>();
  // Storage of gradients pending in `grads`, counted (add's backward hands the same tensor to both
  // inputs; reshape's returns a view). A storage allocated during this pass whose count falls to 0
  // and that never became a leaf's .grad or a returned gradient has no other holder: it is recycled
  // for later allocations. Not under createGraph: there the new graph may hold any of them.
  const born = createGraph ? null : recordBirths(), escaped = new Set<Storage>(), pending = new Map<Storage, number>();
  const hold = (g: Tensor) => { pending.set(g.data, (pending.get(g.data) ?? 0) + 1); };
  const drop = (g: Tensor) => {
    const c = (pending.get(g.data) ?? 0) - 1;
    if (c > 0) { pending.set(g.data, c); return; }
    pending.delete(g.data);
    if (born && born.has(g.data) && !escaped.has(g.data)) recycle(g.data);
  };
  hold(seed);
  try {
    withGradMode(createGraph, () => {
      for (const t of order) {
        const g = grads.get(t);
        grads.delete(t);
        if (!g) continue;
        if (targets) {
          if (targets.has(t)) { found.set(t, keep(g)); escaped.add(g.data); }
          if (!t.node || !reach!.has(t)) { drop(g); continue; }
        } else if (!t.node) {
          const prev = t.grad;
          const tg = keep(prev ? add(prev, g) : g);
          t.grad = tg;
          escaped.add(tg.data);
          if (born?.has(tg.data)) {
            const o = ownedGrads.get(tg.data);
            ownedGrads.set(tg.data, o === undefined || o?.leaf === t ? { leaf: t, grad: tg } : null);
          }
          // accumulation (micro-batches): the sum replaced a gradient an earlier pass allocated for t alone
          if (prev && born) release(t, prev, "was replaced by the sum of a later backward() (its storage is being reused); read .grad again");
          drop(g);
          continue;
        }
        const node = t.node as GradNode;
        const need = node.inputs.map(needs);
        if (!need.some(Boolean)) { drop(g); continue; }
        const ins = node.apply(g, need, createGraph);
        const flowing = node.inputs.map((x, i) => (need[i] ? ins[i] ?? null : null));
        for (const gi of flowing) if (gi) hold(gi);
        node.inputs.forEach((x, i) => {
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
    if (born) stopRecordingBirths(born);
  }
  if (!(opts.retainGraph ?? createGraph)) for (const t of order) if (t.node) (t.node as GradNode).release();
  return opts.inputs ? opts.inputs.map((x) => found.get(x) ?? null) : [];
}
