// An SD3-style Diffusion Transformer (Peebles & Xie 2023, "Scalable Diffusion Models with Transformers",
// DiT; Esser et al. 2024, "Scaling Rectified Flow Transformers for High-Resolution Image Synthesis", SD3):
// patchify -> Linear patch embedding + fixed 2D sin-cos positions (MAE's get_2d_sincos_pos_embed) ->
// adaLN-Zero blocks conditioned on c = timestep embedding + class embedding -> final adaLN layer and a
// Linear to patch pixels -> unpatchify. The attention normalizes each head's q and k (QK-norm, SD3
// §5.3.2). Initialization follows DiT's initialize_weights (models.py): xavier-uniform Linear weights with
// zero biases, N(0, 0.02²) class table and timestep MLP, and every adaLN modulation Linear and the final
// Linear at zero, so each block starts as the identity and the network's output is exactly 0.

import { Embedding, LayerNorm, Linear, RMSNorm, skipInit } from "../nn/layers.js";
import { Module } from "../nn/module.js";
import { normal_, xavierUniform_ } from "../nn/init-fns.js";
import * as ops from "../ops/index.js";
import { floatData } from "../ops/util.js";
import type { RandomGenerator } from "../tensor/rng.js";
import type { Tensor } from "../tensor/tensor.js";
import { timestepEmbedding } from "./time-mlp.js";

export type QkNorm = "rmsnorm" | "layernorm" | "none";

export interface DiTOptions {
  /** Image side (square images) and channels. */
  imageSize: number;
  channels: number;
  /** Patch side p: the image becomes (imageSize / p)² tokens of channels * p² pixels. */
  patch: number;
  dim: number;
  depth: number;
  heads: number;
  /** MLP hidden width = mlpRatio * dim. */
  mlpRatio: number;
  /** Class labels 0 .. numClasses - 1, plus the null class numClasses (classifier-free guidance); 0 = unconditional. */
  numClasses: number;
  qkNorm: QkNorm;
  /** Width of the sinusoidal timestep features fed to the timestep MLP (DiT: 256). */
  freqDim: number;
  /** t in [0, 1] is multiplied by this before the sinusoidal embedding (SD3 embeds 1000 t). */
  timeScale: number;
}

/** DiT's modulate(): x (1 + scale) + shift, with shift and scale [B, d] broadcast over the tokens of x [B, T, d]. */
function modulate(x: Tensor, shift: Tensor, scale: Tensor): Tensor {
  return ops.add(ops.mul(x, ops.add(ops.unsqueeze(scale, 1), 1)), ops.unsqueeze(shift, 1));
}

/** DiT's norm1 / norm2 / norm_final: LayerNorm without affine parameters, eps 1e-6. */
const plainNorm = (x: Tensor) => ops.layerNorm(x, null, null, 1e-6);

/**
 * A Linear with a zero bias and its weight xavier-uniform (DiT's _basic_init), N(0, 0.02²) (the timestep
 * MLP) or zero (adaLN-Zero's modulation and the final Linear).
 */
function linear(inF: number, outF: number, g: RandomGenerator, init: "xavier" | "normal" | "zero" = "xavier"): Linear {
  const l = skipInit(() => new Linear(inF, outF));
  if (init === "xavier") xavierUniform_(l.weight, { generator: g });
  else if (init === "normal") normal_(l.weight, 0, 0.02, { generator: g });
  return l;
}

/**
 * [B, C, H, W] -> [B, (H/p)(W/p), C p²]: tokens row-major over the patch grid, each patch's pixels in the
 * order of a Conv2d(C, d, p, stride p) weight [d, C, p, p], so the patch embedding equals DiT's conv.
 */
export function patchify(x: Tensor, p: number): Tensor {
  const [B, C, H, W] = x.shape;
  if (x.ndim !== 4 || H % p || W % p) throw new RangeError(`patchify: x must be [B, C, H, W] with H and W divisible by the patch ${p}, got [${x.shape.join(", ")}]`);
  const h = H / p, w = W / p;
  return ops.reshape(ops.permute(ops.reshape(x, [B, C, h, p, w, p]), [0, 2, 4, 1, 3, 5]), [B, h * w, C * p * p]);
}

/** The inverse of patchify: [B, h w, C p²] -> [B, C, h p, w p] for an h x w patch grid. */
export function unpatchify(x: Tensor, p: number, C: number, h: number, w: number): Tensor {
  const B = x.shape[0];
  if (x.ndim !== 3 || x.shape[1] !== h * w || x.shape[2] !== C * p * p) throw new RangeError(`unpatchify: x must be [B, ${h * w}, ${C * p * p}], got [${x.shape.join(", ")}]`);
  return ops.reshape(ops.permute(ops.reshape(x, [B, h, w, C, p, p]), [0, 3, 1, 4, 2, 5]), [B, C, h * p, w * p]);
}

/**
 * MAE's get_2d_sincos_pos_embed (He et al. 2022; used by DiT) for an h x w grid -> [h w, dim]: the first
 * dim/2 channels embed the column index and the last dim/2 the row index, each as [sin(pos ω_k), cos(pos ω_k)],
 * ω_k = 10000^(-k / (dim/4)), k < dim/4 (MAE's meshgrid(grid_w, grid_h) puts the column first).
 */
export function sincos2d(dim: number, h: number, w: number): Tensor {
  if (!Number.isSafeInteger(dim) || dim % 4) throw new RangeError(`sincos2d: dim must be a multiple of 4, got ${dim}`);
  const q = dim / 4, out = new Float32Array(h * w * dim);
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      const row = out.subarray((i * w + j) * dim);
      for (let k = 0; k < q; k++) {
        const om = Math.pow(10000, -k / q);
        row[k] = Math.sin(j * om); row[q + k] = Math.cos(j * om);
        row[2 * q + k] = Math.sin(i * om); row[3 * q + k] = Math.cos(i * om);
      }
    }
  }
  return ops.tensor(out, { shape: [h * w, dim] });
}

/** Bidirectional multi-head self-attention with QK-norm over each head's features. */
export class DiTAttention extends Module {
  readonly qkv: Linear;
  readonly proj: Linear;
  readonly qNorm: RMSNorm | LayerNorm | null;
  readonly kNorm: RMSNorm | LayerNorm | null;

  constructor(readonly dim: number, readonly heads: number, qkNorm: QkNorm, g: RandomGenerator) {
    super();
    const hd = dim / heads;
    this.qkv = this.child("qkv", linear(dim, 3 * dim, g));
    // SD3 §5.3.2 normalizes q and k with RMSNorm (learnable scale, eps 1e-6); LayerNorm is the other choice there
    const norm = () => (qkNorm === "rmsnorm" ? new RMSNorm(hd, 1e-6) : new LayerNorm(hd, 1e-6));
    this.qNorm = qkNorm === "none" ? null : this.child("qNorm", norm());
    this.kNorm = qkNorm === "none" ? null : this.child("kNorm", norm());
    this.proj = this.child("proj", linear(dim, dim, g));
  }

  forward(x: Tensor): Tensor {
    const [B, T] = x.shape, H = this.heads, hd = this.dim / H;
    const [q, k, v] = ops.split(ops.reshape(this.qkv.forward(x), [B, T, 3, H, hd]), 1, 2).map((t) => ops.reshape(t, [B, T, H, hd]));
    const qn = this.qNorm ? this.qNorm.forward(q) : q, kn = this.kNorm ? this.kNorm.forward(k) : k;
    const heads = (t: Tensor) => ops.transpose(t, 1, 2);
    const o = ops.flashAttention(heads(qn), heads(kn), heads(v), { causal: false });
    return this.proj.forward(ops.reshape(ops.transpose(o, 1, 2), [B, T, this.dim]));
  }
}

/** One adaLN-Zero block (DiT Fig. 3): shift, scale and gate for attention and MLP from the conditioning. */
export class DiTBlock extends Module {
  readonly attn: DiTAttention;
  readonly fc1: Linear;
  readonly fc2: Linear;
  readonly adaLN: Linear;

  constructor(readonly dim: number, heads: number, mlpRatio: number, qkNorm: QkNorm, g: RandomGenerator) {
    super();
    this.attn = this.child("attn", new DiTAttention(dim, heads, qkNorm, g));
    this.fc1 = this.child("fc1", linear(dim, mlpRatio * dim, g));
    this.fc2 = this.child("fc2", linear(mlpRatio * dim, dim, g));
    this.adaLN = this.child("adaLN", linear(dim, 6 * dim, g, "zero"));
  }

  /** x [B, T, d]; sc = SiLU(c) [B, d], the input of every adaLN modulation Linear. */
  forward(x: Tensor, sc: Tensor): Tensor {
    const [shA, scA, gA, shM, scM, gM] = ops.split(this.adaLN.forward(sc), this.dim, 1);
    const a = this.attn.forward(modulate(plainNorm(x), shA, scA));
    x = ops.add(x, ops.mul(ops.unsqueeze(gA, 1), a));
    // DiT's Mlp: fc1, GELU (tanh approximation), fc2
    const m = this.fc2.forward(ops.gelu(this.fc1.forward(modulate(plainNorm(x), shM, scM)), "tanh"));
    return ops.add(x, ops.mul(ops.unsqueeze(gM, 1), m));
  }
}

export class DiT extends Module {
  readonly xEmbed: Linear;
  readonly tEmbed1: Linear;
  readonly tEmbed2: Linear;
  readonly yEmbed: Embedding | null;
  readonly blocks: DiTBlock[];
  readonly finalAdaLN: Linear;
  readonly finalLinear: Linear;
  readonly grid: number;
  private readonly pos: Tensor;

  constructor(readonly o: DiTOptions, g: RandomGenerator) {
    super();
    const { channels: C, patch: p, dim: d } = o;
    this.grid = o.imageSize / p;
    this.pos = sincos2d(d, this.grid, this.grid);
    this.xEmbed = this.child("xEmbed", linear(C * p * p, d, g));
    this.tEmbed1 = this.child("tEmbed1", linear(o.freqDim, d, g, "normal"));
    this.tEmbed2 = this.child("tEmbed2", linear(d, d, g, "normal"));
    this.yEmbed = o.numClasses > 0 ? this.child("yEmbed", skipInit(() => new Embedding(o.numClasses + 1, d))) : null;
    if (this.yEmbed) normal_(this.yEmbed.weight, 0, 0.02, { generator: g });
    this.blocks = this.childList("blocks", Array.from({ length: o.depth }, () => new DiTBlock(d, o.heads, o.mlpRatio, o.qkNorm, g)));
    this.finalAdaLN = this.child("finalAdaLN", linear(d, 2 * d, g, "zero"));
    this.finalLinear = this.child("finalLinear", linear(d, C * p * p, g, "zero"));
  }

  /** The null class (classifier-free guidance's unconditional label). */
  get nullClass(): number {
    return this.o.numClasses;
  }

  /** c = MLP(sinusoid(timeScale t)) + class embedding (DiT's TimestepEmbedder + LabelEmbedder). */
  conditioning(t: Tensor, labels: Int32Array | null): Tensor {
    // timeScale t in float64: rounded to float32, 1000 t would move the sinusoids' phases by up to 3e-5
    const scaled = ops.tensor(Float64Array.from(floatData(t, "DiT"), (v) => v * this.o.timeScale), { shape: [t.shape[0]], dtype: "float64" });
    const te = this.tEmbed2.forward(ops.silu(this.tEmbed1.forward(ops.cast(timestepEmbedding(scaled, this.o.freqDim), t.dtype))));
    if (!this.yEmbed) return te;
    if (!labels || labels.length !== t.shape[0]) throw new RangeError(`DiT: ${t.shape[0]} class labels expected, got ${labels ? labels.length : "none"}`);
    for (const l of labels) if (!Number.isInteger(l) || l < 0 || l > this.nullClass) throw new RangeError(`DiT: class label ${l} out of range [0, ${this.nullClass}] (${this.nullClass} = the null class)`);
    return ops.add(te, this.yEmbed.forward(ops.tensor(labels, { shape: [labels.length] })));
  }

  /** The velocity for images x [B, C, H, W] at times t [B] in [0, 1] with class labels [B] (null class allowed). */
  forward(x: Tensor, t: Tensor, labels: Int32Array | null = null): Tensor {
    const { imageSize: S, channels: C, patch: p, dim: d } = this.o;
    if (x.ndim !== 4 || x.shape[1] !== C || x.shape[2] !== S || x.shape[3] !== S) throw new RangeError(`DiT: x must be [B, ${C}, ${S}, ${S}], got [${x.shape.join(", ")}]`);
    if (t.ndim !== 1 || t.shape[0] !== x.shape[0]) throw new RangeError(`DiT: t must be [${x.shape[0]}], got [${t.shape.join(", ")}]`);
    let h = ops.add(this.xEmbed.forward(patchify(x, p)), this.pos);
    const sc = ops.silu(this.conditioning(t, labels));
    for (const b of this.blocks) h = b.forward(h, sc);
    const [shift, scale] = ops.split(this.finalAdaLN.forward(sc), d, 1);
    return unpatchify(this.finalLinear.forward(modulate(plainNorm(h), shift, scale)), p, C, this.grid, this.grid);
  }
}
