// The OpenAI request bodies the server accepts (zod), checked at the boundary, and the error body
// OpenAI returns: { error: { message, type, param, code } } (platform.openai.com/docs/api-reference,
// "Error codes"; the shapes follow openai-openapi's CreateChatCompletionRequest / CreateCompletionRequest).
// Fields OpenAI defines that change the output and that tsformer cannot honour (tools, echo, suffix,
// response_format other than text) are refused by name rather than ignored. top_k, min_p, typical_p
// and repetition_penalty are accepted as vLLM's extra sampling parameters.

import { z } from "zod";

export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly param: string | null = null, readonly code: string | null = null,
    readonly type = status === 401 ? "authentication_error" : status === 404 ? "not_found_error" : status >= 500 ? "server_error" : "invalid_request_error") {
    super(message);
  }

  get body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

const stop = z.union([z.string().min(1), z.array(z.string().min(1)).max(4)], { error: "expected a non-empty string or a list of at most 4" }).nullish();

const sampling = {
  model: z.string(),
  max_tokens: z.number().int().min(1).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  n: z.number().int().min(1).max(16).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  stop,
  seed: z.number().int().nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  logit_bias: z.record(z.string().regex(/^\d+$/, "keys must be token ids"), z.number().min(-100).max(100)).nullish(),
  user: z.string().nullish(),
  // vLLM's extra sampling parameters
  top_k: z.number().int().min(-1).nullish(),
  min_p: z.number().min(0).max(1).nullish(),
  typical_p: z.number().gt(0).max(1).nullish(),
  repetition_penalty: z.number().gt(0).nullish(),
};

const part = z.object({ type: z.literal("text"), text: z.string() });
const message = z.object({
  role: z.enum(["system", "developer", "user", "assistant", "tool"]),
  content: z.union([z.string(), z.array(part)], { error: "expected a string or a list of {type: \"text\", text} parts" }).nullish(),
  name: z.string().nullish(),
});

export const chatRequest = z.object({
  ...sampling,
  messages: z.array(message).min(1),
  max_completion_tokens: z.number().int().min(1).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
  tools: z.array(z.unknown()).max(0, "tools are not supported by tsformer serve").nullish(),
  response_format: z.object({ type: z.literal("text") }).nullish(),
});

export const completionRequest = z.object({
  ...sampling,
  prompt: z.union([z.string(), z.array(z.number().int().min(0)).min(1)], { error: "expected a string or a non-empty array of token ids (one prompt per request)" }),
  logprobs: z.number().int().min(0).max(5).nullish(),
  echo: z.literal(false).nullish(),
  suffix: z.null().optional(),
});

export const tokenizeRequest = z.union([
  z.object({ model: z.string().optional(), prompt: z.string(), add_special_tokens: z.boolean().optional() }),
  z.object({ model: z.string().optional(), messages: z.array(message).min(1), add_generation_prompt: z.boolean().optional() }),
], { error: "expected {prompt: string} or {messages: [...]}" });

export const detokenizeRequest = z.object({ model: z.string().optional(), tokens: z.array(z.number().int().min(0)) });

export type ChatRequest = z.infer<typeof chatRequest>;
export type CompletionRequest = z.infer<typeof completionRequest>;
const samplingObject = z.object(sampling);
export type SamplingFields = z.infer<typeof samplingObject>;

/** body parsed by schema, or a 400 naming the first offending field and what was expected. */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new ApiError(400, "the request body must be a JSON object");
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const param = issue.path.join(".") || null;
  throw new ApiError(400, `${param ?? "body"}: ${issue.message}`, param, issue.code === "invalid_type" ? "invalid_type" : "invalid_value");
}
