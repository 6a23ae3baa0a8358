// The response bodies of /v1/chat/completions and /v1/completions, whole and streamed, in OpenAI's
// shapes (openai-openapi: CreateChatCompletionResponse, CreateChatCompletionStreamResponse,
// CreateCompletionResponse; a completion stream's chunks are text_completion objects).

import type { TokenInfo } from "./api.js";

export type Kind = "chat" | "completion";

export interface Choice { text: string; tokens: TokenInfo[]; finish: string | null; started: boolean }

interface JobView { kind: Kind; id: string; created: number; model: string; stream: boolean; includeUsage: boolean; logprobs: boolean; choices: Choice[] }

/** OpenAI's finish_reason: eos and stop strings are "stop", max_tokens and a full context "length". */
export function finishReason(stoppedBy: string): string {
  return stoppedBy === "length" ? "length" : "stop";
}

/**
 * logprobs of tokens in the kind's format: chat's { content: [{ token, logprob, bytes, top_logprobs }] },
 * the legacy completion's { tokens, token_logprobs, top_logprobs, text_offset } (offset: where the
 * first token's text starts in the choice's text).
 */
export function choiceLogprobs(kind: Kind, tokens: readonly TokenInfo[], decode: (id: number) => string, offset: number): unknown {
  const str = (id: number) => decode(id);
  if (kind === "chat") {
    const entry = (id: number, logprob: number) => ({ token: str(id), logprob, bytes: [...Buffer.from(str(id))] });
    return { content: tokens.map((t) => ({ ...entry(t.id, t.logprob!), top_logprobs: (t.top ?? []).map((a) => entry(a.id, a.logprob)) })) };
  }
  const text_offset: number[] = [];
  for (const t of tokens) { text_offset.push(offset); offset += str(t.id).length; }
  return {
    tokens: tokens.map((t) => str(t.id)), token_logprobs: tokens.map((t) => t.logprob!),
    top_logprobs: tokens.map((t) => Object.fromEntries((t.top ?? []).map((a) => [str(a.id), a.logprob]))), text_offset,
  };
}

/** One streamed chunk for choice `index`: its new text, the logprobs of its token, its finish reason when it ended. */
export function streamChunk(job: JobView, index: number, text: string, logprobs: unknown, finish: string | null): unknown {
  const c = job.choices[index];
  const usage = job.includeUsage ? { usage: null } : {};
  if (job.kind === "completion") {
    return { id: job.id, object: "text_completion", created: job.created, model: job.model, choices: [{ index, text, logprobs, finish_reason: finish }], ...usage };
  }
  const delta = !c.started ? { role: "assistant", content: text } : text ? { content: text } : {};
  c.started = true;
  return { id: job.id, object: "chat.completion.chunk", created: job.created, model: job.model, system_fingerprint: null, choices: [{ index, delta, logprobs, finish_reason: finish }], ...usage };
}

/** The whole response of a non-streamed request. */
export function fullResponse(job: JobView, usage: unknown, decode: (id: number) => string): unknown {
  const lp = (c: Choice) => (job.logprobs ? choiceLogprobs(job.kind, c.tokens, decode, 0) : null);
  if (job.kind === "completion") {
    return { id: job.id, object: "text_completion", created: job.created, model: job.model, choices: job.choices.map((c, index) => ({ index, text: c.text, logprobs: lp(c), finish_reason: c.finish })), usage };
  }
  return {
    id: job.id, object: "chat.completion", created: job.created, model: job.model, system_fingerprint: null,
    choices: job.choices.map((c, index) => ({ index, message: { role: "assistant", content: c.text }, logprobs: lp(c), finish_reason: c.finish })), usage,
  };
}
