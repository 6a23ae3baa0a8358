// The engine side of `tsformer serve`, run in a worker thread: requests arrive as messages, are
// validated (openai.ts), templated and tokenized here, wait in a FIFO queue, and join the running
// batch between steps while it holds fewer than `parallel` sequences (continuous batching). Between
// two steps the event loop runs (setImmediate), so new requests and cancellations are taken then.
// Responses leave as messages: a JSON body, or server-sent-event records for a stream.

import { randomUUID } from "node:crypto";
import { BatchEngine, type BatchRequest, type CausalLM, type ChatMessage, type ChatTemplate, type StepEvent, type TokenInfo, type Tokenizer } from "./api.js";
import { ApiError, chatRequest, completionRequest, detokenizeRequest, parseBody, tokenizeRequest, type SamplingFields } from "./openai.js";
import { choiceLogprobs, finishReason, fullResponse, streamChunk, type Choice, type Kind } from "./responses.js";

export type HostIn = { op: "request"; rid: number; path: string; body: unknown } | { op: "cancel"; rid: number };
export type HostOut =
  | { op: "json"; rid: number; body: unknown }
  | { op: "error"; rid: number; status: number; body: unknown }
  /** The request is valid and queued: a stream's headers can go out. */
  | { op: "accept"; rid: number }
  /** One or more `data: ...\n\n` records; end: the stream is complete. */
  | { op: "sse"; rid: number; data: string; end: boolean }
  /** The messages of one decoding step, posted together (one structured clone per step, not per request). */
  | { op: "many"; msgs: HostOut[] };

export interface HostOptions {
  model: CausalLM;
  tokenizer: Tokenizer;
  chatTemplate: ChatTemplate | null;
  eosIds: number[];
  modelName: string;
  /** Most sequences decoded together. */
  parallel: number;
}

export interface Job {
  rid: number; kind: Kind; id: string; created: number; model: string; prompt: number[]; n: number; req: BatchRequest;
  stream: boolean; includeUsage: boolean; logprobs: boolean; choices: Choice[]; seqs: number[];
}

export class Host {
  readonly engine: BatchEngine;
  private readonly queue: Job[] = [];
  private readonly bySeq = new Map<number, { job: Job; index: number }>();
  private readonly running = new Map<number, Job>();
  private looping = false;
  /** Sequences dropped because their client left (reported by /health). */
  private cancelled = 0;

  constructor(private readonly o: HostOptions, private post: (m: HostOut) => void) {
    this.engine = new BatchEngine(o.model);
  }

  get context(): number {
    return this.engine.context;
  }

  handle(m: HostIn): void {
    if (m.op === "cancel") { this.cancel(m.rid); return; }
    try {
      if (m.path === "/health") this.post({ op: "json", rid: m.rid, body: { status: "ok", sequences: this.engine.size, queued: this.queue.length, cancelled: this.cancelled } });
      else if (m.path === "/tokenize") this.post({ op: "json", rid: m.rid, body: this.tokenize(m.body) });
      else if (m.path === "/detokenize") this.post({ op: "json", rid: m.rid, body: this.detokenize(m.body) });
      else {
        const job = this.job(m.rid, m.path === "/v1/chat/completions" ? "chat" : "completion", m.body);
        this.queue.push(job);
        this.post({ op: "accept", rid: m.rid });
        this.admit();
      }
    } catch (e) {
      const err = e instanceof ApiError ? e : new ApiError(500, `internal error: ${(e as Error).message}`);
      this.post({ op: "error", rid: m.rid, status: err.status, body: err.body });
    }
  }

  private checkModel(name: string | undefined): void {
    if (name !== undefined && name !== this.o.modelName) throw new ApiError(404, `The model \`${name}\` does not exist; this server serves "${this.o.modelName}" (GET /v1/models)`, "model", "model_not_found");
  }

  private render(messages: { role: string; content?: string | { text: string }[] | null }[], addGenerationPrompt = true): string {
    const t = this.o.chatTemplate;
    if (!t) throw new ApiError(400, `model "${this.o.modelName}" has no chat template: use /v1/completions, or start the server with --chat-template FILE`, "messages", "no_chat_template");
    const msgs: ChatMessage[] = messages.map((m) => ({ role: m.role, content: typeof m.content === "string" ? m.content : (m.content ?? []).map((p) => p.text).join("") }));
    try {
      return t.render(msgs, { addGenerationPrompt });
    } catch (e) {
      throw new ApiError(400, `the chat template refused the messages: ${(e as Error).message}`, "messages");
    }
  }

  private encodeText(text: string, special = true): number[] {
    const tok = this.o.tokenizer;
    return tok.encode(text, special && tok.bosId !== undefined ? { bos: true } : {});
  }

  private checkIds(ids: number[], param: string): void {
    const V = this.o.model.config.vocabSize, bad = ids.find((i) => i >= V);
    if (bad !== undefined) throw new ApiError(400, `${param}: token id ${bad} is outside the vocabulary (0 .. ${V - 1})`, param);
  }

  private job(rid: number, kind: Kind, body: unknown): Job {
    let prompt: number[], f: SamplingFields & { max_completion_tokens?: number | null }, logprobs: number | undefined;
    if (kind === "chat") {
      const r = parseBody(chatRequest, body);
      this.checkModel(r.model);
      if (r.top_logprobs != null && !r.logprobs) throw new ApiError(400, "top_logprobs: needs logprobs: true", "top_logprobs");
      prompt = this.encodeText(this.render(r.messages), false);
      f = r;
      logprobs = r.logprobs ? r.top_logprobs ?? 0 : undefined;
    } else {
      const r = parseBody(completionRequest, body);
      this.checkModel(r.model);
      prompt = typeof r.prompt === "string" ? this.encodeText(r.prompt) : r.prompt;
      this.checkIds(prompt, "prompt");
      if (prompt.length === 0) throw new ApiError(400, "prompt: empty, and the tokenizer has no BOS token to start from", "prompt");
      f = r;
      logprobs = r.logprobs ?? undefined;
    }
    const C = this.context, P = prompt.length;
    if (P >= C) throw new ApiError(400, `This model's maximum context length is ${C} tokens; the prompt has ${P} tokens, leaving no room for a completion`, kind === "chat" ? "messages" : "prompt", "context_length_exceeded");
    const max = f.max_completion_tokens ?? f.max_tokens ?? C - P;
    if (P + max > C) {
      const param = f.max_completion_tokens != null ? "max_completion_tokens" : "max_tokens";
      throw new ApiError(400, `This model's maximum context length is ${C} tokens. However, you requested ${P + max} tokens (${P} in the prompt, ${max} for the completion). Please reduce the prompt or ${param}.`, param, "context_length_exceeded");
    }
    const n = f.n ?? 1;
    if (n > this.o.parallel) throw new ApiError(400, `n: ${n} choices exceed the server's --parallel ${this.o.parallel}`, "n");
    const bias = new Map(Object.entries(f.logit_bias ?? {}).map(([k, v]) => [Number(k), v]));
    this.checkIds([...bias.keys()], "logit_bias");
    const stop = f.stop == null ? undefined : [f.stop].flat();
    const req: BatchRequest = {
      prompt, maxNewTokens: max, temperature: f.temperature ?? 1, topP: f.top_p === 0 ? 1 : f.top_p ?? 1,
      topK: f.top_p === 0 ? 1 : Math.max(0, f.top_k ?? 0), minP: f.min_p ?? 0, typicalP: f.typical_p ?? 1,
      repetitionPenalty: f.repetition_penalty ?? 1, frequencyPenalty: f.frequency_penalty ?? 0, presencePenalty: f.presence_penalty ?? 0,
      logitBias: bias, seed: f.seed ?? Math.floor(Math.random() * 2 ** 31), logprobs, stop, eosId: this.o.eosIds, tokenizer: this.o.tokenizer,
    };
    return {
      rid, kind, id: `${kind === "chat" ? "chatcmpl" : "cmpl"}-${randomUUID()}`, created: Math.floor(Date.now() / 1000), model: this.o.modelName, prompt, n, req,
      stream: f.stream ?? false, includeUsage: f.stream_options?.include_usage ?? false, logprobs: logprobs !== undefined,
      choices: Array.from({ length: n }, () => ({ text: "", tokens: [], finish: null, started: false })), seqs: [],
    };
  }

  private tokenize(body: unknown): unknown {
    const r = parseBody(tokenizeRequest, body);
    this.checkModel(r.model);
    const tokens = "prompt" in r ? this.encodeText(r.prompt, r.add_special_tokens ?? true) : this.encodeText(this.render(r.messages, r.add_generation_prompt ?? true), false);
    return { count: tokens.length, max_model_len: this.context, tokens };
  }

  private detokenize(body: unknown): unknown {
    const r = parseBody(detokenizeRequest, body);
    this.checkModel(r.model);
    this.checkIds(r.tokens, "tokens");
    return { prompt: this.o.tokenizer.decode(r.tokens) };
  }

  /** A client left: its job leaves the queue or the batch. */
  private cancel(rid: number): void {
    const q = this.queue.findIndex((j) => j.rid === rid);
    if (q >= 0) this.queue.splice(q, 1);
    this.cancelled += this.drop(rid);
  }

  /** Takes a running job's sequences out of the batch; returns how many were still decoding. */
  private drop(rid: number): number {
    const job = this.running.get(rid);
    if (!job) return 0;
    this.running.delete(rid);
    return job.seqs.filter((s) => this.bySeq.delete(s) && this.engine.cancel(s)).length;
  }

  /** Moves queued jobs into the batch while it has room (a job's n choices join together), then keeps the step loop going. */
  private admit(): void {
    while (this.queue.length && (this.engine.size === 0 || this.engine.size + this.queue[0].n <= this.o.parallel)) {
      const job = this.queue.shift()!;
      job.seqs = this.engine.add(job.req, job.n);
      job.seqs.forEach((s, index) => this.bySeq.set(s, { job, index }));
      this.running.set(job.rid, job);
    }
    if (this.engine.size && !this.looping) {
      this.looping = true;
      setImmediate(() => this.loop());
    }
  }

  private loop(): void {
    this.looping = false;
    let events: StepEvent[];
    try {
      events = this.engine.step();
    } catch (e) {
      this.failAll(e as Error);
      return;
    }
    const touched = new Map<Job, string>();
    const out: HostOut[] = [], post = this.post;
    this.post = (m) => out.push(m);
    for (const e of events) {
      const at = this.bySeq.get(e.seq);
      if (!at) continue;
      const { job, index } = at, c = job.choices[index];
      const offset = c.text.length;
      c.text += e.text;
      if (e.token) c.tokens.push(e.token);
      if (e.done) { c.finish = finishReason(e.done.stoppedBy); this.bySeq.delete(e.seq); }
      if (job.stream && (e.text || e.done || (job.logprobs && e.token))) {
        touched.set(job, (touched.get(job) ?? "") + sse(streamChunk(job, index, e.text, this.logprobsOf(job, e.token, offset), c.finish)));
      } else touched.set(job, touched.get(job) ?? "");
    }
    for (const [job, data] of touched) this.flush(job, data);
    this.post = post;
    if (out.length) post(out.length === 1 ? out[0] : { op: "many", msgs: out });
    this.admit();
  }

  private logprobsOf(job: Job, t: TokenInfo | undefined, offset: number): unknown {
    if (!job.logprobs || !t) return null;
    return choiceLogprobs(job.kind, [t], (id) => this.o.tokenizer.decode([id]), offset);
  }

  /** Posts a stream's records of this step, and the end of a job whose choices are all done. */
  private flush(job: Job, data: string): void {
    const done = job.choices.every((c) => c.finish !== null);
    const usage = { prompt_tokens: job.prompt.length, completion_tokens: job.choices.reduce((a, c) => a + c.tokens.length, 0) };
    const u = { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens };
    if (done) this.running.delete(job.rid);
    if (!job.stream) {
      if (done) this.post({ op: "json", rid: job.rid, body: fullResponse(job, u, (id) => this.o.tokenizer.decode([id])) });
      return;
    }
    if (done && job.includeUsage) data += sse({ id: job.id, object: job.kind === "chat" ? "chat.completion.chunk" : "text_completion", created: job.created, model: job.model, choices: [], usage: u });
    if (done) data += "data: [DONE]\n\n";
    if (data) this.post({ op: "sse", rid: job.rid, data, end: done });
  }

  private failAll(e: Error): void {
    const err = new ApiError(500, `decoding failed: ${e.message}`);
    for (const job of [...this.running.values()]) {
      this.drop(job.rid);
      if (job.stream) this.post({ op: "sse", rid: job.rid, data: sse(err.body), end: true });
      else this.post({ op: "error", rid: job.rid, status: 500, body: err.body });
    }
  }
}

const sse = (o: unknown): string => `data: ${JSON.stringify(o)}\n\n`;
