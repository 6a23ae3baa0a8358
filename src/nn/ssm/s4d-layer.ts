// The S4D layer as a model's sequence mixer (the state-spaces repo's models/s4/s4d.py S4D module):
//   y = GLU(output_linear(GELU(S4D(u))))     (S4D(u) = kernel conv + D u, s4d.py's forward)
// output_linear is s4d.py's 1x1 Conv1d(H, 2H) as a Linear [2H, H]; GLU(a, b) = a * sigmoid(b) over the
// last dim. A linear time-invariant (LTI) SSM: the kernel does not depend on the input, the contrast
// with Mamba's selection. Training runs the convolution form; as a model's mixer with a decoding state,
// a prefill from the empty state runs the convolution and computes the state (S4D.stateAfter), every
// later call runs the recurrence (one token: one O(H N) step).

import * as ops from "../../ops/index.js";
import type { RandomGenerator } from "../../tensor/rng.js";
import type { Tensor } from "../../tensor/tensor.js";
import { kaimingUniform_, uniform_ } from "../init-fns.js";
import { Linear, skipInit } from "../layers.js";
import { Module } from "../module.js";
import { SeqContext } from "../seq-context.js";
import { S4D, type S4DInit, type S4DState } from "./s4d.js";
import { SSMState, ssmState, type SelfInit } from "./state.js";

export interface S4DLayerOptions {
  /** State size N (even, default 64 as s4d.py). */
  dState?: number;
  init?: S4DInit;
  generator?: RandomGenerator;
  deferInit?: boolean;
}

export class S4DLayer extends Module implements SelfInit {
  readonly s4d: S4D;
  readonly outputLinear: Linear;

  constructor(readonly dModel: number, o: S4DLayerOptions = {}) {
    super();
    this.s4d = this.child("s4d", new S4D(dModel, o.dState ?? 64, { init: o.init, deferInit: true }));
    this.outputLinear = this.child("output_linear", skipInit(() => new Linear(dModel, 2 * dModel)));
    if (!o.deferInit) this.initParameters(o.generator);
  }

  /** s4d.py's draws, then torch's Conv1d default for output_linear (U(+-1/sqrt(fan_in)) weight and bias). */
  initParameters(g?: RandomGenerator): void {
    this.s4d.initParameters(g);
    kaimingUniform_(this.outputLinear.weight, { a: Math.sqrt(5), generator: g });
    const b = 1 / Math.sqrt(this.dModel);
    uniform_(this.outputLinear.bias!, -b, b, { generator: g });
  }

  newState(_capacity?: number): SSMState<S4DState> {
    return new SSMState<S4DState>("s4d");
  }

  /** x [B, L, H] -> [B, L, H]; with a decoding state in ctx, continues it and updates it. */
  forward(x: Tensor, ctx = SeqContext.causal()): Tensor {
    const st = ssmState<S4DState>("s4d", ctx);
    let y: Tensor;
    if (!st) {
      y = this.s4d.forward(x);
    } else {
      if (st.value && st.value.re.shape[0] !== x.shape[0]) throw new RangeError(`s4d: the decoding state holds ${st.value.re.shape[0]} sequences, the input ${x.shape[0]}`);
      let next: S4DState;
      if (st.value) ({ y, state: next } = this.s4d.forwardRecurrent(x, st.value));
      else [y, next] = [this.s4d.forward(x), this.s4d.stateAfter(x)];
      st.value = { re: next.re.detach(), im: next.im.detach() };
      st.length += x.shape[1];
    }
    const [a, b] = ops.chunk(this.outputLinear.forward(ops.gelu(y)), 2, -1);
    return ops.mul(a, ops.sigmoid(b));
  }
}
