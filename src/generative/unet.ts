// A small DDPM U-Net (Ho et al. 2020, "Denoising Diffusion Probabilistic Models", App. B; the reference
// is diffusion_tf/models/unet.py), scaled down for 28x28 MNIST on a CPU: one residual block per
// resolution 28 -> 14 -> 7, a middle block (optionally followed by one self-attention block at 7x7), and
// an up path that concatenates each level's skip. As in the reference:
// - residual block: GroupNorm - SiLU - conv3x3, + Dense(SiLU(temb)) per channel, GroupNorm - SiLU -
//   conv3x3, plus the input (through a 1x1 conv when the width changes);
// - timestep embedding: sinusoidal(ch) -> Dense(4 ch) - SiLU - Dense(4 ch);
// - attention block: GroupNorm, 1x1 q/k/v projections, one head softmax(q kᵀ / sqrt(C)) v, 1x1 projection, + x;
// - resampling without conv (its resamp_with_conv = False): 2x2 average pooling down, nearest 2x up.
// Class conditioning (optional) adds a label embedding to the time embedding; label index `classes` is
// the null label for classifier-free guidance (Ho & Salimans 2022, "Classifier-Free Diffusion Guidance").
// Initialization is torch's default for Conv2d / Linear (kaiming_uniform a = sqrt(5)), with the last conv
// of every residual block, the attention output and the output conv zeroed (the reference's
// init_scale = 1e-10, ADM's zero_module), so the network starts as the identity on its skip paths.

import { Conv2d, Embedding, GroupNorm, Linear } from "../nn/layers.js";
import { zeros_ } from "../nn/init-fns.js";
import { Module } from "../nn/module.js";
import * as ops from "../ops/index.js";
import type { RandomGenerator } from "../tensor/rng.js";
import { Tensor } from "../tensor/tensor.js";
import { timestepEmbedding } from "./time-mlp.js";

export interface UNetOptions {
  /** Image channels (MNIST: 1). */
  inChannels?: number;
  /** Widths at 28x28, 14x14 and 7x7 (default [32, 64, 64]). */
  channels?: readonly [number, number, number];
  /** GroupNorm groups; must divide every width (default 8). */
  groups?: number;
  /** One self-attention block after the middle residual block at the lowest resolution (default false). */
  attention?: boolean;
  /** Number of classes for label conditioning (0 = unconditional); label `classes` is the null label. */
  classes?: number;
  generator?: RandomGenerator;
}

/** A conv2d layer with torch.nn.Conv2d's default init, or zeros (the reference's zero-initialized convs); padding keeps the size. */
function conv(cin: number, cout: number, k: 1 | 3, zero: boolean, generator?: RandomGenerator): Conv2d {
  const c = new Conv2d(cin, cout, k, { padding: k === 3 ? 1 : 0, generator });
  if (zero) { zeros_(c.weight); zeros_(c.bias!); }
  return c;
}

class ResBlock extends Module {
  readonly norm1: GroupNorm;
  readonly conv1: Conv2d;
  readonly temb: Linear;
  readonly norm2: GroupNorm;
  readonly conv2: Conv2d;
  readonly skip: Conv2d | null;
  constructor(cin: number, cout: number, embDim: number, groups: number, generator?: RandomGenerator) {
    super();
    this.norm1 = this.child("norm1", new GroupNorm(groups, cin));
    this.conv1 = this.child("conv1", conv(cin, cout, 3, false, generator));
    this.temb = this.child("temb", new Linear(embDim, cout, true, { generator }));
    this.norm2 = this.child("norm2", new GroupNorm(groups, cout));
    this.conv2 = this.child("conv2", conv(cout, cout, 3, true, generator));
    this.skip = cin === cout ? null : this.child("skip", conv(cin, cout, 1, false, generator));
  }
  /** x [B, cin, H, W], embAct = SiLU(temb) [B, embDim]. */
  forward(x: Tensor, embAct: Tensor): Tensor {
    let h = this.conv1.forward(ops.silu(this.norm1.forward(x)));
    const t = this.temb.forward(embAct);
    h = ops.add(h, t.reshape(t.shape[0], t.shape[1], 1, 1));
    h = this.conv2.forward(ops.silu(this.norm2.forward(h)));
    return ops.add(this.skip ? this.skip.forward(x) : x, h);
  }
}

class AttnBlock extends Module {
  readonly norm: GroupNorm;
  readonly q: Linear;
  readonly k: Linear;
  readonly v: Linear;
  readonly proj: Linear;
  constructor(c: number, groups: number, generator?: RandomGenerator) {
    super();
    this.norm = this.child("norm", new GroupNorm(groups, c));
    [this.q, this.k, this.v] = (["q", "k", "v"] as const).map((n) => this.child(n, new Linear(c, c, true, { generator })));
    this.proj = this.child("proj", new Linear(c, c, true, { generator }));
    zeros_(this.proj.weight);
    zeros_(this.proj.bias!);
  }
  /** 1x1 convs are Linear layers over the channels of the [B, 1, HW, C] token layout. */
  forward(x: Tensor): Tensor {
    const [B, C, H, W] = x.shape;
    const tokens = ops.transpose(this.norm.forward(x).reshape(B, C, H * W), 1, 2).reshape(B, 1, H * W, C);
    const a = ops.attention(this.q.forward(tokens), this.k.forward(tokens), this.v.forward(tokens), { causal: false });
    const out = ops.transpose(this.proj.forward(a).reshape(B, H * W, C), 1, 2).reshape(B, C, H, W);
    return ops.add(x, out);
  }
}

export class UNet extends Module {
  readonly inChannels: number;
  readonly channels: readonly [number, number, number];
  readonly classes: number;
  readonly embDim: number;
  readonly convIn: Conv2d;
  readonly temb0: Linear;
  readonly temb1: Linear;
  readonly labelEmb: Embedding | null;
  readonly down: ResBlock[];
  readonly mid: ResBlock;
  readonly attn: AttnBlock | null;
  readonly up: ResBlock[];
  readonly normOut: GroupNorm;
  readonly convOut: Conv2d;

  constructor(o: UNetOptions = {}) {
    super();
    const { inChannels = 1, channels = [32, 64, 64], groups = 8, attention = false, classes = 0, generator } = o;
    if (!Number.isSafeInteger(inChannels) || inChannels < 1) throw new RangeError(`UNet: inChannels must be a positive integer, got ${inChannels}`);
    if (!Array.isArray(channels) || channels.length !== 3 || !channels.every((c) => Number.isSafeInteger(c) && c > 0)) {
      throw new RangeError(`UNet: channels must be three positive integers (the widths at 28x28, 14x14, 7x7), got ${JSON.stringify(channels)}`);
    }
    if (!Number.isSafeInteger(groups) || groups < 1) throw new RangeError(`UNet: groups must be a positive integer, got ${groups}`);
    for (const c of channels) if (c % groups) throw new RangeError(`UNet: channels ${JSON.stringify(channels)} must all be multiples of groups (${groups}); ${c} is not`);
    if (!Number.isSafeInteger(classes) || classes < 0) throw new RangeError(`UNet: classes must be a non-negative integer (0 = unconditional), got ${classes}`);
    this.inChannels = inChannels;
    this.channels = [...channels] as unknown as [number, number, number];
    this.classes = classes;
    const [c0, c1, c2] = channels, E = 4 * c0;
    this.embDim = E;
    this.convIn = this.child("conv_in", conv(inChannels, c0, 3, false, generator));
    this.temb0 = this.child("temb0", new Linear(c0, E, true, { generator }));
    this.temb1 = this.child("temb1", new Linear(E, E, true, { generator }));
    this.labelEmb = classes ? this.child("label_emb", new Embedding(classes + 1, E, { generator })) : null;
    this.down = this.childList("down", [[c0, c0], [c0, c1], [c1, c2]].map(([a, b]) => new ResBlock(a, b, E, groups, generator)));
    this.mid = this.child("mid", new ResBlock(c2, c2, E, groups, generator));
    this.attn = attention ? this.child("attn", new AttnBlock(c2, groups, generator)) : null;
    // up[i] reads cat(h, skip of level 2 - i): widths c2 + c2 -> c2, c2 + c1 -> c1, c1 + c0 -> c0.
    this.up = this.childList("up", [[c2 + c2, c2], [c2 + c1, c1], [c1 + c0, c0]].map(([a, b]) => new ResBlock(a, b, E, groups, generator)));
    this.normOut = this.child("norm_out", new GroupNorm(groups, c0));
    this.convOut = this.child("conv_out", conv(c0, inChannels, 3, true, generator));
  }

  /** ε_θ(x, t [, y]): x [B, C, 28, 28] (H, W divisible by 4), t [B] float steps, y [B] labels (null label = classes). */
  forward(x: Tensor, t: Tensor, labels?: Int32Array): Tensor {
    if (x.ndim !== 4 || x.shape[1] !== this.inChannels || x.shape[2] % 4 || x.shape[3] % 4) {
      throw new RangeError(`UNet: x must be [B, ${this.inChannels}, H, W] with H and W multiples of 4, got [${x.shape.join(", ")}]`);
    }
    const B = x.shape[0];
    if (t.ndim !== 1 || t.shape[0] !== B) throw new RangeError(`UNet: t must be [${B}] (one step per image), got [${t.shape.join(", ")}]`);
    let emb = this.temb1.forward(ops.silu(this.temb0.forward(timestepEmbedding(t, this.channels[0]))));
    if (this.labelEmb) {
      if (!labels || labels.length !== B) throw new RangeError(`UNet: a class-conditional net (classes ${this.classes}) needs ${B} labels, got ${labels ? labels.length : "none"}`);
      for (const y of labels) if (!(Number.isInteger(y) && y >= 0 && y <= this.classes)) throw new RangeError(`UNet: labels must be integers in [0, ${this.classes}] (${this.classes} = null label), got ${y}`);
      emb = ops.add(emb, this.labelEmb.forward(new Tensor(Int32Array.from(labels), [B])));
    } else if (labels) {
      throw new RangeError("UNet: labels given to an unconditional net (classes 0)");
    }
    const e = ops.silu(emb);
    const skips: Tensor[] = [];
    let h = this.convIn.forward(x);
    this.down.forEach((blk, i) => {
      h = blk.forward(i ? ops.avgPool2d(h, 2) : h, e);
      skips.push(h);
    });
    h = this.mid.forward(h, e);
    if (this.attn) h = this.attn.forward(h);
    this.up.forEach((blk, i) => {
      if (i) h = ops.upsampleNearest2d(h, 2);
      h = blk.forward(ops.cat([h, skips.pop()!], 1), e);
    });
    return this.convOut.forward(ops.silu(this.normOut.forward(h)));
  }
}
