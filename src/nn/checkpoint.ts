// Gradient checkpointing (Chen et al. 2016, "Training Deep Nets with Sublinear Memory Cost"; torch's
// torch.utils.checkpoint): the forward of fn runs without recording a graph, and one node keeps only
// fn's input. Its backward replays fn from that input with grad on, after putting back the random
// streams and the module buffers fn may update (so dropout draws the same masks, a Performer the same
// projection), and backpropagates the incoming gradient through the replay. The replayed ops are the
// forward's ops, walked in the same order, so every gradient comes out bit-identical to a run without
// checkpointing; parameter gradients are returned to the outer walk as inputs of the node (not
// accumulated into .grad from inside), so a leaf's .grad is summed where and in the order it would be.
//
// Like torch's reentrant checkpoint, the replay must see the same tensors that require grad: fn's input
// and the parameters of `modules`. A replay that reaches any other one (a tensor fn closes over) throws,
// because its gradient would be lost. Gradients of gradients (createGraph) are refused.

import * as ops from "../ops/index.js";
import { enableGrad, noGrad, record, runBackward, type BackwardCtx } from "../tensor/autograd.js";
import type { Storage } from "../tensor/dtype.js";
import { defaultGenerator, type RandomGenerator, type RngState } from "../tensor/rng.js";
import { tidy } from "../tensor/scope.js";
import type { Tensor } from "../tensor/tensor.js";
import type { Module } from "./module.js";

export interface CheckpointOptions {
  /**
   * The modules fn runs: their trainable parameters get their gradients through the checkpoint, and
   * their buffers (state a forward may update in place) are restored for the replay and back after it.
   */
  modules?: readonly Module[];
  /** The random streams fn draws from besides the global defaultGenerator (e.g. a model's dropout stream). */
  generators?: readonly RandomGenerator[];
}

/** Copies of the buffers' contents, to put back later. */
function snapshot(buffers: readonly Tensor[]): Storage[] {
  return buffers.map((b) => b.data.slice());
}

function restore(buffers: readonly Tensor[], copies: readonly Storage[]): void {
  buffers.forEach((b, i) => (b.data as Float32Array).set(copies[i] as Float32Array));
}

/** Throws when the replay's graph reaches a tensor that requires grad besides `allowed` (see above). */
function checkClosure(y: Tensor, allowed: ReadonlySet<Tensor>): void {
  const seen = new Set<Tensor>(), stack = [y];
  while (stack.length) {
    for (const t of stack.pop()!.node?.inputs ?? []) {
      if (!t || !t.requiresGrad || allowed.has(t) || seen.has(t)) continue;
      if (!t.node) {
        throw new Error(`checkpoint: the checkpointed function reads ${t}, which requires grad but is neither its input nor a parameter of the given modules; its gradient would be lost (pass its module in modules, or do not checkpoint this function)`);
      }
      seen.add(t);
      stack.push(t);
    }
  }
}

/**
 * fn(x) without keeping fn's activations for backward: backward recomputes them (see above). fn must
 * not keep tensors outside (a KV cache): its intermediate storage is recycled as soon as it returns.
 */
export function checkpoint(fn: (x: Tensor) => Tensor, x: Tensor, o: CheckpointOptions = {}): Tensor {
  const modules = o.modules ?? [];
  const params = [...new Set(modules.flatMap((m) => m.parameters()))].filter((p) => p.requiresGrad);
  const buffers = modules.flatMap((m) => [...m.namedBuffers()].map(([, b]) => b));
  const gens = [...new Set([defaultGenerator, ...(o.generators ?? [])])];
  const rng: RngState[] = gens.map((g) => g.getState());
  const before = snapshot(buffers);
  const out = noGrad(() => tidy(() => fn(x))).detach();  // a tensor of its own: fn may return x or a view of it
  const backward = (g: Tensor, ctx: BackwardCtx): (Tensor | null)[] => {
    const [xs] = ctx.saved;
    const xd = xs.detach().requiresGrad_(ctx.needsInputGrad[0]);
    const now = gens.map((r) => r.getState()), after = snapshot(buffers);
    gens.forEach((r, i) => r.setState(rng[i]));
    restore(buffers, before);
    try {
      return tidy(() => {
        const y = enableGrad(() => fn(xd));
        checkClosure(y, new Set([xd, ...params]));
        const wanted = [xd, ...params].filter((_, i) => ctx.needsInputGrad[i]);
        const got = y.requiresGrad ? runBackward(y, g, ops.add, { inputs: wanted }) : [];
        const grads = new Map(wanted.map((t, i) => [t, got[i] ?? null]));
        return [xd, ...params].map((t) => grads.get(t) ?? null);
      });
    } finally {
      gens.forEach((r, i) => r.setState(now[i]));
      restore(buffers, after);
    }
  };
  const refuse = (): never => {
    throw new Error("checkpoint: gradients of gradients (createGraph) cannot go through a checkpointed function; run it without checkpointing");
  };
  return record(out, "checkpoint", [x, ...params], backward, [x], refuse);
}

/**
 * Runs `layers` in order (run(layer, x, index) -> x), checkpointing each run of `every` consecutive
 * layers as one function (every = 1: each layer on its own). Unlike torch's checkpoint_sequential the
 * last run is checkpointed too: runBackward frees saved tensors when the whole walk ends, not node by
 * node, so a last run kept whole would still be held while the run before it is recomputed.
 */
export function checkpointSequential<M extends Module>(layers: readonly M[], x: Tensor, every: number, run: (layer: M, x: Tensor, index: number) => Tensor, o: Omit<CheckpointOptions, "modules"> = {}): Tensor {
  if (!Number.isSafeInteger(every) || every < 1) throw new RangeError(`checkpointSequential: every must be an integer >= 1, got ${every}`);
  for (let i = 0; i < layers.length; i += every) {
    const seg = layers.slice(i, i + every);
    x = checkpoint((h) => seg.reduce((y, l, j) => run(l, y, i + j), h), x, { ...o, modules: seg });
  }
  return x;
}
