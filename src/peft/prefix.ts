// Prefix tuning (Li & Liang 2021, "Prefix-Tuning: Optimizing Continuous Prompts for Generation", §4):
// p trainable key/value positions in front of every layer's keys and values, seen by every query.
// During training they are reparameterized, P[i,:] = MLP(P'[i,:]) (§4.3), as PEFT's PrefixEncoder
// (huggingface/peft src/peft/tuners/prefix_tuning/model.py): embedding P' [p, kvDim] -> Linear(kvDim, h)
// -> tanh -> Linear(h, L * 2 * kvDim), kvDim = Hkv * headDim (PEFT's token_dim for GQA models); without
// the MLP (projectionHidden 0) the embedding is P itself, [p, L * 2 * kvDim].
// Row i of P holds layer 0's key, layer 0's value, layer 1's key, ... each [Hkv, headDim]
// (peft_model.py get_prompt: view [p, 2L, Hkv, d], permute, split by 2): the layout of the
// "prompt_embeddings" tensor PEFT saves, which exportPromptEmbeddings gives.
// Positions, as HF models with a past of length p: the tokens take positions p .. p + T - 1 (RoPE and
// learned), the prefix keys are used as they are (no rotation). The decoding state holds the tokens'
// keys and values only; the attention puts the prefix in front at every call (SeqContext.prefix).

import * as ops from "../ops/index.js";
import { noGrad } from "../tensor/autograd.js";
import { RandomGenerator } from "../tensor/rng.js";
import { fmtShape } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";
import { Embedding, Linear } from "../nn/layers.js";
import { Sequential } from "../nn/containers.js";
import { Tanh } from "../nn/activations.js";
import { SelfAttention } from "../nn/attention/softmax.js";
import { LayerStates, SeqContext, type DecodingState, type KVPrefix } from "../nn/seq-context.js";
import type { CausalLMOutput, ForwardOptions } from "../models/causal-lm.js";
import type { TransformerLM } from "../models/transformer.js";
import { VirtualTokenLM } from "./virtual-tokens.js";

export interface PrefixTuningOptions {
  /** Prefix length p. */
  numVirtualTokens: number;
  /** Hidden size of the reparameterization MLP; 0: no MLP, the prefixes are the parameters. Default kvDim (PEFT's encoder_hidden_size). */
  projectionHidden?: number;
  /** Draws the initial parameters (torch's defaults: embedding N(0, 1), Linear U(+-1/sqrt(in))); default RandomGenerator(0). */
  generator?: RandomGenerator;
}

/** A prefix-tuned model's decoding state: the base's KV caches and the prefixes, computed once per decoding. */
export class PrefixState implements DecodingState {
  constructor(readonly layers: LayerStates, readonly prefixes: readonly KVPrefix[]) {}
  get length(): number {
    return this.layers.length;
  }
  canTruncate(n: number): boolean {
    return this.layers.canTruncate(n);
  }
  truncate(n: number): void {
    this.layers.truncate(n);
  }
}

/**
 * A CausalLM: the base (frozen by the caller) with trained prefixes. Parameters: embedding.weight, and
 * with the MLP transform.0.{weight,bias} and transform.2.{weight,bias} (PEFT's PrefixEncoder names).
 */
export class PrefixTuning extends VirtualTokenLM {
  readonly embedding: Embedding;
  /** The reparameterization MLP, null without one. */
  readonly transform: Sequential | null;
  private readonly kvDim: number;

  constructor(base: TransformerLM, o: PrefixTuningOptions) {
    super(base, o.numVirtualTokens, "addPrefixTuning");
    const c = base.config, p = o.numVirtualTokens, g = o.generator ?? new RandomGenerator(0);
    const bad = base.blocks.find((b) => !(b.attn instanceof SelfAttention && b.attn.acceptsPrefix));
    if (bad) throw new Error(`addPrefixTuning: attention "${c.attention}" cannot take key/value prefixes (the "softmax" and "flash" variants can)`);
    this.kvDim = (c.nKvHeads ?? c.nHeads) * (c.dModel / c.nHeads);
    const h = o.projectionHidden ?? this.kvDim, out = c.nLayers * 2 * this.kvDim;
    if (!Number.isSafeInteger(h) || h < 0) throw new RangeError(`addPrefixTuning: projectionHidden must be an integer >= 0 (0: no MLP), got ${h}`);
    this.embedding = this.child("embedding", new Embedding(p, h ? this.kvDim : out, { generator: g }));
    this.transform = h ? this.child("transform", new Sequential(new Linear(this.kvDim, h, true, { generator: g }), new Tanh(), new Linear(h, out, true, { generator: g }))) : null;
  }

  /** P [p, L * 2 * kvDim]: the MLP's output, or the embedding itself. */
  private table(): Tensor {
    const w = this.embedding.weight;
    return this.transform ? this.transform.forward(w) : w;
  }

  /** Every layer's prefix: k and v [Hkv, p, headDim], differentiable in the parameters. */
  prefixes(): KVPrefix[] {
    const c = this.base.config, p = this.numVirtualTokens, L = c.nLayers, hkv = c.nKvHeads ?? c.nHeads;
    const kv = ops.permute(ops.reshape(this.table(), [p, 2 * L, hkv, c.dModel / c.nHeads]), [1, 2, 0, 3]);  // [2L, Hkv, p, d]
    const pick = (j: number) => ops.squeeze(ops.narrow(kv, 0, j, 1), 0);
    return Array.from({ length: L }, (_, i) => ({ k: pick(2 * i), v: pick(2 * i + 1) }));
  }

  /** The prefixes are computed once here: decoding does not change the parameters. */
  newState(capacity = this.config.maxSeqLen): PrefixState {
    return new PrefixState(this.base.newState(capacity), noGrad(() => this.prefixes()));
  }

  /** The tokens at positions p + (their positions in ctx); the prefixes from ctx's state, or computed now. */
  forward(ids: Tensor, ctx = SeqContext.causal(), o: ForwardOptions = {}): CausalLMOutput {
    const s = ctx.state, p = this.numVirtualTokens;
    if (s && !(s instanceof PrefixState)) throw new TypeError("prefix tuning: the decoding state must come from this model's newState()");
    const T = ids.shape[1] ?? 0, positions = new Int32Array(ctx.positions?.length ?? T);
    for (let i = 0; i < positions.length; i++) positions[i] = p + (ctx.positions ? ctx.positions[i] : ctx.start + i);
    const prefixes = s ? s.prefixes : this.prefixes();
    return this.base.forward(ids, new SeqContext({ positions, causal: ctx.causal, cuSeqlens: ctx.cuSeqlens, mask: ctx.mask, state: s?.layers ?? null, prefixes }), o);
  }

  /** P [p, L * 2 * kvDim], detached: PEFT's "prompt_embeddings" for prefix tuning. */
  exportPromptEmbeddings(): Tensor {
    return noGrad(() => this.table().clone());
  }

  /** Loads an exported P; only without the MLP (it cannot be inverted), as PEFT's load_prompt_embeddings. */
  importPromptEmbeddings(t: Tensor): void {
    if (this.transform) throw new Error("prefix tuning: exported prefixes load into a model without the MLP (addPrefixTuning with projectionHidden: 0)");
    const w = this.embedding.weight;
    if (t.ndim !== 2 || t.shape[0] !== w.shape[0] || t.shape[1] !== w.shape[1]) throw new RangeError(`prefix tuning: prompt_embeddings must be ${fmtShape(w.shape)} ([numVirtualTokens, nLayers * 2 * kvDim]), got ${fmtShape(t.shape)}`);
    this.loadStateDict({ "embedding.weight": t });
  }
}

/** Prefix tuning of a TransformerLM whose attention is "softmax" or "flash": train and generate with the result. */
export function addPrefixTuning(model: TransformerLM, o: PrefixTuningOptions): PrefixTuning {
  return new PrefixTuning(model, o);
}
