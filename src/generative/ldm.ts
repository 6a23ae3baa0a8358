// The second stage of latent diffusion (Rombach et al. 2022, sec. 3.2-3.3): an ε-predictor on the
// autoencoder's latent [B, c, 7, 7], class-conditioned by cross-attention
//   Attention(Q, K, V) = softmax(Q K^T / sqrt(d)) V, Q = W_Q φ(z_t), K = W_K τ(y), V = W_V τ(y)   (sec. 3.3)
// with τ(y) a learned embedding of the label (the paper's ClassEmbedder for class-conditional ImageNet:
// one token; ctxTokens > 1 gives each label several key/value tokens). Label `numClasses` is the null
// label ∅ of classifier-free guidance (Ho & Salimans 2022), trained by dropping labels to it.
// The network is a small pre-LN transformer over the 49 latent positions (one token each): self-attention,
// cross-attention to τ(y), MLP, with the timestep's sinusoidal embedding through an MLP added per block
// (as the U-Net's ResBlocks add theirs).

import { Embedding, LayerNorm, Linear } from "../nn/layers.js";
import { Module } from "../nn/module.js";
import { normal_ } from "../nn/init-fns.js";
import * as ops from "../ops/index.js";
import type { RandomGenerator } from "../tensor/rng.js";
import type { Tensor } from "../tensor/tensor.js";
import type { Denoiser } from "./ddpm.js";
import { timestepEmbedding } from "./time-mlp.js";

export interface LatentDenoiserConfig {
  latentChannels: number;
  /** Latent side (7 for MNIST's f = 4 autoencoder). */
  latentSize: number;
  dim: number;
  depth: number;
  heads: number;
  /** Key/value tokens per label in τ(y). */
  ctxTokens: number;
  numClasses: number;
}

/** [B, T, D] -> [B, H, T, D / H]. */
function splitHeads(x: Tensor, H: number): Tensor {
  const [B, T, D] = x.shape;
  return ops.permute(ops.reshape(x, [B, T, H, D / H]), [0, 2, 1, 3]);
}

/** [B, H, T, d] -> [B, T, H d]. */
function mergeHeads(x: Tensor): Tensor {
  const [B, H, T, d] = x.shape;
  return ops.reshape(ops.contiguous(ops.permute(x, [0, 2, 1, 3])), [B, T, H * d]);
}

/** Multi-head attention from x [B, T, D] to ctx [B, S, D] (ctx = x: self-attention), no mask. */
class Attention extends Module {
  private readonly q: Linear;
  private readonly k: Linear;
  private readonly v: Linear;
  private readonly o: Linear;
  constructor(dim: number, private readonly heads: number, generator?: RandomGenerator) {
    super();
    [this.q, this.k, this.v] = (["q", "k", "v"] as const).map((n) => this.child(n, new Linear(dim, dim, false, { generator })));
    this.o = this.child("o", new Linear(dim, dim, true, { generator }));
  }
  forward(x: Tensor, ctx: Tensor): Tensor {
    const [q, k, v] = [this.q.forward(x), this.k.forward(ctx), this.v.forward(ctx)].map((t) => splitHeads(t, this.heads));
    return this.o.forward(mergeHeads(ops.attention(q, k, v, { causal: false })));
  }
}

class Block extends Module {
  private readonly temb: Linear;
  private readonly norm1: LayerNorm;
  private readonly self: Attention;
  private readonly norm2: LayerNorm;
  private readonly cross: Attention;
  private readonly norm3: LayerNorm;
  private readonly fc1: Linear;
  private readonly fc2: Linear;
  constructor(dim: number, heads: number, generator?: RandomGenerator) {
    super();
    this.temb = this.child("temb", new Linear(dim, dim, true, { generator }));
    this.norm1 = this.child("norm1", new LayerNorm(dim));
    this.self = this.child("attn1", new Attention(dim, heads, generator));
    this.norm2 = this.child("norm2", new LayerNorm(dim));
    this.cross = this.child("attn2", new Attention(dim, heads, generator));
    this.norm3 = this.child("norm3", new LayerNorm(dim));
    this.fc1 = this.child("fc1", new Linear(dim, 4 * dim, true, { generator }));
    this.fc2 = this.child("fc2", new Linear(4 * dim, dim, true, { generator }));
  }
  /** h [B, T, D], e = SiLU(time embedding) [B, D], ctx = τ(y) [B, S, D]. */
  forward(h: Tensor, e: Tensor, ctx: Tensor): Tensor {
    h = ops.add(h, ops.unsqueeze(this.temb.forward(e), 1));
    const a = this.norm1.forward(h);
    h = ops.add(h, this.self.forward(a, a));
    h = ops.add(h, this.cross.forward(this.norm2.forward(h), ctx));
    return ops.add(h, this.fc2.forward(ops.silu(this.fc1.forward(this.norm3.forward(h)))));
  }
}

/** ε_θ(z_t, t, y): z_t [B, c, s, s], t [B] (step indices, float), labels [B] in [0, numClasses] (numClasses = ∅). */
export class LatentDenoiser extends Module {
  private readonly inProj: Linear;
  readonly pos: Tensor;
  private readonly time1: Linear;
  private readonly time2: Linear;
  private readonly label: Embedding;
  private readonly blocks: Block[];
  private readonly normOut: LayerNorm;
  private readonly outProj: Linear;

  constructor(readonly cfg: LatentDenoiserConfig, generator?: RandomGenerator) {
    super();
    const { latentChannels: c, latentSize: s, dim: D, depth, heads, ctxTokens, numClasses } = cfg;
    this.inProj = this.child("in_proj", new Linear(c, D, true, { generator }));
    this.pos = this.param("pos", normal_(ops.zeros([s * s, D]), 0, 0.02, { generator }));
    this.time1 = this.child("time1", new Linear(D, D, true, { generator }));
    this.time2 = this.child("time2", new Linear(D, D, true, { generator }));
    this.label = this.child("label", new Embedding(numClasses + 1, ctxTokens * D, { generator }));
    this.blocks = this.childList("blocks", Array.from({ length: depth }, () => new Block(D, heads, generator)));
    this.normOut = this.child("norm_out", new LayerNorm(D));
    // zero-initialized output (DiT's final layer, the U-Net's zero_module): training starts from ε̂ = 0
    this.outProj = this.child("out_proj", new Linear(D, c, true, { generator }));
    this.outProj.weight.data.fill(0);
    this.outProj.bias?.data.fill(0);
  }

  get nullLabel(): number { return this.cfg.numClasses; }

  forward(z: Tensor, t: Tensor, labels: Int32Array): Tensor {
    const { latentChannels: c, latentSize: s, dim: D, ctxTokens } = this.cfg;
    if (z.ndim !== 4 || z.shape[1] !== c || z.shape[2] !== s || z.shape[3] !== s) throw new RangeError(`LatentDenoiser: latents must be [B, ${c}, ${s}, ${s}], got [${z.shape.join(", ")}]`);
    const B = z.shape[0];
    if (t.ndim !== 1 || t.shape[0] !== B) throw new RangeError(`LatentDenoiser: t must be [${B}], got [${t.shape.join(", ")}]`);
    if (labels.length !== B) throw new RangeError(`LatentDenoiser: ${labels.length} labels for ${B} latents`);
    for (const y of labels) if (!(Number.isInteger(y) && y >= 0 && y <= this.nullLabel)) throw new RangeError(`LatentDenoiser: labels must be integers in [0, ${this.nullLabel}] (${this.nullLabel} = the null label), got ${y}`);
    let h = ops.add(this.inProj.forward(ops.transpose(ops.reshape(z, [B, c, s * s]), 1, 2)), this.pos);
    const e = ops.silu(this.time2.forward(ops.silu(this.time1.forward(timestepEmbedding(t, D)))));
    const ctx = ops.reshape(this.label.forward(ops.tensor(labels, { dtype: "int32" })), [B, ctxTokens, D]);
    for (const b of this.blocks) h = b.forward(h, e, ctx);
    const out = this.outProj.forward(this.normOut.forward(h));
    return ops.reshape(ops.contiguous(ops.transpose(out, 1, 2)), [B, c, s, s]);
  }
}

/** Classifier-free guidance (Ho & Salimans 2022, eq. 6 rewritten): ε̃ = ε(z, ∅) + w (ε(z, y) - ε(z, ∅)). */
export function cfgCombine(epsCond: Tensor, epsUncond: Tensor, w: number): Tensor {
  return ops.add(epsUncond, ops.mul(ops.sub(epsCond, epsUncond), w));
}

/**
 * The guided ε-predictor for the samplers (ddpm.ts / ddim.ts) at labels y and scale w >= 0: w = 1 is the
 * conditional model alone, w = 0 the unconditional one (one forward each); otherwise the conditional and
 * null-label rows run as one batch of 2B.
 */
export function guidedDenoiser(model: LatentDenoiser, labels: Int32Array, w: number): Denoiser {
  if (!(w >= 0 && Number.isFinite(w))) throw new RangeError(`guidance must be a finite number >= 0, got ${w}`);
  const nul = new Int32Array(labels.length).fill(model.nullLabel);
  if (w === 1) return (z, t) => model.forward(z, t, labels);
  if (w === 0) return (z, t) => model.forward(z, t, nul);
  const both = new Int32Array(2 * labels.length);
  both.set(labels);
  both.set(nul, labels.length);
  return (z, t) => {
    const [c, u] = ops.split(model.forward(ops.cat([z, z], 0), ops.cat([t, t], 0), both), labels.length, 0);
    return cfgCombine(c, u, w);
  };
}
