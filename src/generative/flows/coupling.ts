// Affine coupling (Dinh et al. 2017, "Density estimation using Real NVP", sec. 3.3-3.4): with a binary mask b,
//   y = b ⊙ x + (1 - b) ⊙ (x ⊙ exp(s(b ⊙ x)) + t(b ⊙ x))                          (eq. 9)
// whose Jacobian is triangular (eq. 6-8), so log|det| = Σ (1 - b) ⊙ s, and the inverse is
//   x = b ⊙ y + (1 - b) ⊙ ((y - t(b ⊙ y)) ⊙ exp(-s(b ⊙ y))).
// Masks (sec. 3.4, fig. 3): "checkerboard" (b = 1 where (h + w + parity) is even) or "channel" (b = 1 on the
// first half of the channels, the second for parity 1). s is bounded as RealNVP's code does: scale ⊙ tanh(·)
// with a learned per-channel scale (tensorflow/models real_nvp). s and t come from one small conv net
// (Glow's NN(): 3x3 conv, ReLU, 1x1 conv, ReLU, zero-initialized 3x3 conv, so each coupling starts as the identity).

import { Module } from "../../nn/module.js";
import { kaimingUniform_ } from "../../nn/init-fns.js";
import * as ops from "../../ops/index.js";
import type { Tensor } from "../../tensor/tensor.js";
import { checkImage, perExample, positiveInt, type FlowLayer, type FlowOptions, type FlowOutput } from "./flow.js";

/** conv3x3 -> ReLU -> conv1x1 -> ReLU -> conv3x3 (zero init): [B, cin, H, W] -> [B, cout, H, W]. */
export class CouplingNet extends Module {
  private readonly w: Tensor[];
  private readonly b: Tensor[];
  constructor(cin: number, hidden: number, cout: number, o: FlowOptions = {}) {
    super();
    const dtype = o.dtype ?? "float32";
    const shapes = [[hidden, cin, 3, 3], [hidden, hidden, 1, 1], [cout, hidden, 3, 3]];
    this.w = shapes.map((s, i) => this.param(`conv${i}.weight`, ops.zeros(s, { dtype })));
    this.b = shapes.map((s, i) => this.param(`conv${i}.bias`, ops.zeros([s[0]], { dtype })));
    for (const w of this.w.slice(0, 2)) kaimingUniform_(w, { a: Math.sqrt(5), generator: o.generator });
  }

  forward(x: Tensor): Tensor {
    let h = x;
    this.w.forEach((w, i) => {
      h = ops.conv2d(h, w, this.b[i], { padding: w.shape[2] === 3 ? 1 : 0 });
      if (i < this.w.length - 1) h = ops.relu(h);
    });
    return h;
  }
}

export type CouplingMask = "checkerboard" | "channel";

export interface CouplingOptions extends FlowOptions {
  mask: CouplingMask;
  /** Which half is transformed: 0 or 1 (alternate between consecutive couplings). */
  parity?: 0 | 1;
  /** Hidden channels of the s, t net (default 64). */
  hidden?: number;
}

export class AffineCoupling extends Module implements FlowLayer {
  readonly mask: CouplingMask;
  readonly parity: 0 | 1;
  readonly net: CouplingNet;
  readonly scale: Tensor;

  constructor(readonly channels: number, o: CouplingOptions) {
    super();
    positiveInt("AffineCoupling", "channels", channels);
    if (o.mask !== "checkerboard" && o.mask !== "channel") throw new RangeError(`AffineCoupling: mask must be "checkerboard" or "channel", got ${JSON.stringify(o.mask)}`);
    if (o.mask === "channel" && channels % 2) throw new RangeError(`AffineCoupling: a channel mask splits the channels in halves and needs an even channel count, got ${channels}`);
    if (o.parity !== undefined && o.parity !== 0 && o.parity !== 1) throw new RangeError(`AffineCoupling: parity must be 0 or 1, got ${o.parity}`);
    this.mask = o.mask;
    this.parity = o.parity ?? 0;
    const hidden = positiveInt("AffineCoupling", "hidden", o.hidden ?? 64);
    const out = o.mask === "channel" ? channels / 2 : channels;
    this.net = this.child("net", new CouplingNet(o.mask === "channel" ? channels / 2 : channels, hidden, 2 * out, o));
    this.scale = this.param("scale", ops.ones([1, out, 1, 1], { dtype: o.dtype ?? "float32" }));
  }

  /** s (bounded) and t from the conditioning input. */
  private st(cond: Tensor): [Tensor, Tensor] {
    const h = this.net.forward(cond), c = h.shape[1] / 2;
    return [ops.mul(this.scale, ops.tanh(h.narrow(1, 0, c))), h.narrow(1, c, c)];
  }

  /** The checkerboard b [1, 1, H, W] for this parity. */
  private board(H: number, W: number, dtype: Tensor["dtype"]): Tensor {
    const v = Array.from({ length: H * W }, (_, k) => ((Math.floor(k / W) + (k % W) + this.parity) % 2 === 0 ? 1 : 0));
    return ops.tensor(v, { dtype, shape: [1, 1, H, W] });
  }

  private halves(x: Tensor): { cond: Tensor; moved: Tensor; join: (m: Tensor) => Tensor } {
    const c = this.channels / 2, [a, b] = [x.narrow(1, 0, c), x.narrow(1, c, c)];
    return this.parity === 0 ? { cond: a, moved: b, join: (m) => ops.cat([a, m], 1) } : { cond: b, moved: a, join: (m) => ops.cat([m, b], 1) };
  }

  forward(x: Tensor): FlowOutput {
    checkImage("AffineCoupling", x, this.channels);
    if (this.mask === "channel") {
      const { cond, moved, join } = this.halves(x), [s, t] = this.st(cond);
      return { y: join(ops.add(ops.mul(moved, ops.exp(s)), t)), logdet: perExample(s) };
    }
    const b = this.board(x.shape[2], x.shape[3], x.dtype), nb = ops.sub(1, b);
    const [s0, t0] = this.st(ops.mul(x, b)), s = ops.mul(s0, nb), t = ops.mul(t0, nb);
    // where b = 1, s = t = 0: y = x there
    return { y: ops.add(ops.mul(x, ops.exp(s)), t), logdet: perExample(s) };
  }

  inverse(y: Tensor): Tensor {
    checkImage("AffineCoupling.inverse", y, this.channels);
    if (this.mask === "channel") {
      const { cond, moved, join } = this.halves(y), [s, t] = this.st(cond);
      return join(ops.mul(ops.sub(moved, t), ops.exp(ops.neg(s))));
    }
    const b = this.board(y.shape[2], y.shape[3], y.dtype), nb = ops.sub(1, b);
    const [s0, t0] = this.st(ops.mul(y, b)), s = ops.mul(s0, nb), t = ops.mul(t0, nb);
    return ops.mul(ops.sub(y, t), ops.exp(ops.neg(s)));
  }
}
