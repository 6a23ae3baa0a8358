// Batched decoding with iteration-level scheduling (continuous batching, Yu et al. 2022 "Orca",
// sec. 3.1): every step, each active sequence contributes its pending tokens (a new one's whole
// prompt, a running one's last token) to one ragged row; the position-wise layers (projections, FFN,
// norms, the head) run once on all of them, a GEMM with one row per token instead of a GEMV per
// sequence, and attention runs per sequence against its own KV cache (SeqContext.ragged: no padding).
// Sequences join and leave between steps; each has its own sampling options, seed, stop conditions
// and output (the same OutputSink and sampleNext as generate(), so a sequence decodes as it would alone).

import { noGrad } from "../tensor/autograd.js";
import { RandomGenerator } from "../tensor/rng.js";
import * as ops from "../ops/index.js";
import type { CausalLM } from "../models/causal-lm.js";
import { SeqContext, type DecodingState } from "../nn/seq-context.js";
import { OutputSink, type OutputOptions, type StoppedBy } from "./output.js";
import { sampleNext, tokenLogprobs, validateSampling, type SamplingOptions, type TokenLogprob } from "./sampling.js";
import { checkPrompt, decodeStep } from "./generate.js";

export interface BatchRequest extends SamplingOptions, Omit<OutputOptions, "onText"> {
  prompt: number[];
  maxNewTokens: number;
  /** Seed of this sequence's sampling generator (default 0, as generate()). */
  seed?: number;
  /** Report each token's logprob with this many top alternatives (undefined: no logprobs). */
  logprobs?: number;
}

export interface TokenInfo { id: number; logprob?: number; top?: TokenLogprob[] }

export interface SequenceResult { ids: number[]; text?: string; stoppedBy: StoppedBy; tokens: TokenInfo[] }

/** What one step did to one sequence: the token it produced (none when it stopped on eos) and the text released. */
export interface StepEvent {
  seq: number;
  token?: TokenInfo;
  /** Text completed by this step; text that could still begin a stop string is held back until it cannot. */
  text: string;
  /** Set on the sequence's last event. */
  done?: SequenceResult;
}

export interface BatchEngineOptions {
  /** Context window in tokens (default: the model's maxSeqLen); a sequence that fills it stops ("length"). */
  context?: number;
}

class Sequence {
  readonly all: number[];
  readonly generated: number[] = [];
  readonly tokens: TokenInfo[] = [];
  pending: number[];
  readonly state: DecodingState;
  readonly g: RandomGenerator;
  readonly sink: OutputSink;
  /** Text from the sink not yet released (the stop-string hold-back), and the length released so far. */
  held = "";
  released = 0;

  constructor(readonly id: number, readonly req: BatchRequest, model: CausalLM, context: number, seed: number) {
    this.all = [...req.prompt];
    this.pending = req.prompt;
    // the cache holds what this sequence can reach, not the whole context (a long-context model's
    // full-length cache per sequence would dominate memory); the last sampled token is never fed back
    this.state = model.newState(Math.min(context, req.prompt.length + req.maxNewTokens - 1));
    this.g = new RandomGenerator(seed);
    this.sink = new OutputSink({ ...req, onText: (p) => { this.held += p; } }, req.prompt);
  }

  /** Releases the held text except its longest suffix that is a proper prefix of a stop string. */
  release(): string {
    let keep = 0;
    for (const s of this.req.stop ?? []) for (let n = Math.min(s.length - 1, this.held.length); n > keep; n--) if (this.held.endsWith(s.slice(0, n))) { keep = n; break; }
    const out = this.held.slice(0, this.held.length - keep);
    this.held = this.held.slice(this.held.length - keep);
    this.released += out.length;
    return out;
  }
}

/**
 * Whether the model decodes ragged batches exactly: one ragged forward of two short sequences
 * against each decoded alone. A model whose mixers refuse segments (or ignore them) decodes one
 * sequence per forward instead.
 */
function decodesRagged(model: CausalLM): boolean {
  const V = model.config.vocabSize, ids = [0, Math.min(1, V - 1), Math.min(2, V - 1)];
  const run = (toks: number[], ctx: SeqContext) => model.forward(ops.tensor(Int32Array.from(toks), { shape: [1, toks.length] }), ctx).logits.toTypedArray();
  try {
    const both = run(ids, SeqContext.ragged([model.newState(4), model.newState(4)], [1, 2]));
    const alone = [...run(ids.slice(0, 1), SeqContext.decode(model.newState(4))), ...run(ids.slice(1), SeqContext.decode(model.newState(4)))];
    let scale = 0, diff = 0;
    for (let i = 0; i < both.length; i++) { scale = Math.max(scale, Math.abs(alone[i])); diff = Math.max(diff, Math.abs(both[i] - alone[i])); }
    return both.length === alone.length && diff <= 1e-4 * Math.max(1, scale);
  } catch {
    return false;
  }
}

export class BatchEngine {
  readonly context: number;
  /** True when steps run as one ragged forward; false: one forward per sequence (the model cannot batch). */
  readonly ragged: boolean;
  private readonly seqs = new Map<number, Sequence>();
  private nextId = 0;

  constructor(readonly model: CausalLM, o: BatchEngineOptions = {}) {
    this.context = o.context ?? model.config.maxSeqLen;
    if (!Number.isInteger(this.context) || this.context < 1) throw new RangeError(`BatchEngine: context must be a positive integer, got ${this.context}`);
    model.eval();
    this.ragged = noGrad(() => decodesRagged(model));
  }

  /** Active sequences. */
  get size(): number {
    return this.seqs.size;
  }

  /**
   * Adds n sequences decoding req (choice i draws with seed + i, so choice 0 is what generate() gives
   * with that seed); they join at the next step. Returns their ids.
   */
  add(req: BatchRequest, n = 1): number[] {
    validateSampling(req);
    checkPrompt("BatchEngine", this.model, req.prompt, this.context);
    if (!Number.isInteger(req.maxNewTokens) || req.maxNewTokens < 1) throw new RangeError(`BatchEngine: maxNewTokens must be an integer >= 1, got ${req.maxNewTokens}`);
    if (req.logprobs !== undefined && !(Number.isInteger(req.logprobs) && req.logprobs >= 0)) throw new RangeError(`BatchEngine: logprobs must be an integer >= 0, got ${req.logprobs}`);
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`BatchEngine: n must be an integer >= 1, got ${n}`);
    return Array.from({ length: n }, (_, i) => {
      const id = this.nextId++;
      this.seqs.set(id, new Sequence(id, req, this.model, this.context, (req.seed ?? 0) + i));
      return id;
    });
  }

  /** Drops a sequence (a cancelled request); false when it is not active. */
  cancel(id: number): boolean {
    return this.seqs.delete(id);
  }

  /** One decoding step of every active sequence; finished sequences leave the batch. */
  step(): StepEvent[] {
    const act = [...this.seqs.values()];
    if (!act.length) return [];
    const rows = decodeStep(act.map((s) => s.state), () => (this.ragged ? this.forwardRagged(act) : act.map((s) => this.forwardOne(s))));
    return act.map((s, i) => this.advance(s, rows[i]));
  }

  /** Steps until every active sequence is done; their results by id. */
  runToEnd(): Map<number, SequenceResult> {
    const out = new Map<number, SequenceResult>();
    while (this.size) for (const e of this.step()) if (e.done) out.set(e.seq, e.done);
    return out;
  }

  /**
   * The last row of logits of each sequence, from one ragged forward; asked as logitRows, so that a
   * joining prompt's other positions cost no head (V x D each) in a model that honours it.
   */
  private forwardRagged(act: Sequence[]): Float32Array[] {
    const lengths = act.map((s) => s.pending.length);
    const x = ops.tensor(Int32Array.from(act.flatMap((s) => s.pending)), { shape: [1, lengths.reduce((a, b) => a + b, 0)] });
    const ctx = SeqContext.ragged(act.map((s) => s.state), lengths);
    let end = 0;
    const last = lengths.map((l) => (end += l) - 1);
    const logitRows = Int32Array.from(last);
    const out = this.model.forward(x, ctx, { logitRows }).logits;
    // a model that returns all rows: pick them (equal counts mean every segment is one token, whose row is its last)
    const logits = out.shape[1] === logitRows.length ? out : ops.indexSelect(out, 1, ops.tensor(logitRows));
    const V = logits.shape[2], flat = logits.toTypedArray() as Float32Array;
    return last.map((_, i) => flat.slice(i * V, (i + 1) * V));
  }

  private forwardOne(s: Sequence): Float32Array {
    const { logits } = this.model.forward(ops.tensor(Int32Array.from(s.pending), { shape: [1, s.pending.length] }), SeqContext.decode(s.state));
    const V = logits.shape[2];
    return (logits.toTypedArray() as Float32Array).slice((s.pending.length - 1) * V);
  }

  /** Samples s's next token from its row, feeds the sink, and ends s on eos, a stop string, maxNewTokens or a full context. */
  private advance(s: Sequence, row: Float32Array): StepEvent {
    const req = s.req;
    const id = sampleNext(row, s.all, req, s.g, s.generated);
    let token: TokenInfo | undefined;
    let more = s.sink.push(id);
    if (more || s.sink.ids.length > s.generated.length) {
      token = { id };
      if (req.logprobs !== undefined) {
        const lp = tokenLogprobs(row, id, req.logprobs);
        token.logprob = lp.logprob;
        token.top = lp.top;
      }
      s.tokens.push(token);
      s.generated.push(id);
      s.all.push(id);
      s.pending = [id];
    }
    // the next step would need all.length positions: past the context there is no room
    if (more && (s.generated.length >= req.maxNewTokens || s.all.length > this.context)) more = false;
    if (more) return { seq: s.id, token, text: s.release() };
    // the final text (a stop string cut off, held-back bytes flushed) past what was released
    const r = s.sink.finish();
    this.seqs.delete(s.id);
    return { seq: s.id, token, text: (r.text ?? "").slice(s.released), done: { ...r, tokens: s.tokens } };
  }
}

/** Decodes every request to its end in one batch (n = 1 each); results in request order. */
export function generateBatch(model: CausalLM, reqs: BatchRequest[], o: BatchEngineOptions = {}): SequenceResult[] {
  const engine = new BatchEngine(model, o);
  const ids = reqs.map((r) => engine.add(r)[0]);
  const done = engine.runToEnd();
  return ids.map((id) => done.get(id)!);
}
