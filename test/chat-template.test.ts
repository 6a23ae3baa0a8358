import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChatTemplate, ChatTemplateError, type ChatMessage } from "../src/tokenizers/chat-template.js";

// Expected strings come from Python's jinja2 in transformers' environment (scripts/golden/chat_templates.py).
const DIR = "test/fixtures/chat-templates";
interface Case {
  template: string; name: string; messages: ChatMessage[]; add_generation_prompt: boolean;
  tools?: Record<string, unknown>[]; extra?: Record<string, unknown>;
  output?: string; error?: string; raised?: boolean;
}
const golden = JSON.parse(readFileSync(join(DIR, "expected.json"), "utf8")) as {
  clock: string; templates: Record<string, { config: string; source?: string }>; cases: Case[];
};
const clock = new Date(golden.clock); // no zone: local time, as Python's naive datetime

function templateOf(name: string): ChatTemplate {
  const t = golden.templates[name]!;
  const path = join(DIR, t.config);
  if (t.source === undefined) return ChatTemplate.fromFile(path);
  const config = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  return ChatTemplate.fromConfig({ ...config, chat_template: t.source }, { file: `${path} (+ environment template)` });
}

test("chat templates: renders equal Python jinja2's, errors where it raises", () => {
  const byTemplate = new Map<string, ChatTemplate>();
  let rendered = 0, raised = 0;
  for (const c of golden.cases) {
    if (!byTemplate.has(c.template)) byTemplate.set(c.template, templateOf(c.template));
    const tpl = byTemplate.get(c.template)!;
    const run = () => tpl.render(c.messages, { addGenerationPrompt: c.add_generation_prompt, tools: c.tools, extra: c.extra, now: clock });
    const label = `${c.template} / ${c.name}`;
    if (c.output !== undefined) {
      assert.equal(run(), c.output, label);
      rendered++;
    } else {
      assert.throws(run, (e: unknown) => {
        assert.ok(e instanceof ChatTemplateError, `${label}: ${String(e)}`);
        assert.ok(e.message.startsWith(`${tpl.file}: field "chat_template" (template "default")`), `${label}: ${e.message}`);
        assert.equal(e.raised, c.raised ? c.error : undefined, label); // jinja2's own errors: wording not compared
        return true;
      }, label);
      raised++;
    }
  }
  assert.equal(rendered + raised, golden.cases.length);
  assert.ok(rendered >= 20 && raised >= 5, `${rendered} rendered, ${raised} errors`);
});

test("chat templates: a raise_exception is one clear error naming file, field, template and message", () => {
  const path = join(DIR, "mistral-7b-instruct-v0.2/tokenizer_config.json");
  const tpl = ChatTemplate.fromFile(path);
  assert.throws(() => tpl.render([{ role: "user", content: "a" }, { role: "user", content: "b" }]), {
    name: "ChatTemplateError",
    message: `${path}: field "chat_template" (template "default") raised: After the optional system message, conversation roles must alternate user/assistant/user/assistant/...`,
  });
});

test("chat templates: special tokens from strings and AddedToken objects", () => {
  const llama = ChatTemplate.fromFile(join(DIR, "llama-2-7b-chat-hf/tokenizer_config.json"));
  assert.deepEqual(llama.specialTokens, { bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>" });
  const qwen = ChatTemplate.fromFile(join(DIR, "qwen2-0.5b-instruct/tokenizer_config.json"));
  assert.deepEqual(qwen.specialTokens, { eos_token: "<|im_end|>", pad_token: "<|endoftext|>", additional_special_tokens: ["<|im_start|>", "<|im_end|>"] });
  // extra overrides a special token, as transformers' kwargs do
  const t = ChatTemplate.fromConfig({ chat_template: "{{ bos_token }}|{{ eos_token }}", bos_token: { content: "<B>" }, eos_token: "<E>" });
  assert.equal(t.render([], { extra: { eos_token: "<X>" } }), "<B>|<X>");
});

test("chat templates: named templates (list of {name, template})", () => {
  const config = { chat_template: [{ name: "default", template: "D{{ messages|length }}" }, { name: "tool_use", template: "T{{ tools|length }}" }] };
  assert.equal(ChatTemplate.fromConfig(config).render([{ role: "user", content: "x" }]), "D1");
  const tool = ChatTemplate.fromConfig(config, { name: "tool_use" });
  assert.equal(tool.name, "tool_use");
  assert.equal(tool.render([], { tools: [{ a: 1 }, { b: 2 }] }), "T2");
  assert.throws(() => ChatTemplate.fromConfig(config, { name: "rag" }), /field "chat_template" has no template named "rag" \(it has "default", "tool_use"\)/);
  assert.throws(() => ChatTemplate.fromConfig({ chat_template: [{ name: "tool_use", template: "" }] }), /no template named "default" .*ask for one by name/);
  assert.throws(() => ChatTemplate.fromConfig({ chat_template: "x" }, { name: "tool_use" }), /single template; there is no template named "tool_use"/);
});

test("chat templates: bad configs and messages get clear errors", async () => {
  const dir = await mkdtemp(join(tmpdir(), "tsformer-chat-"));
  try {
    const base = join(dir, "tokenizer_config.json");
    await writeFile(base, JSON.stringify({ bos_token: "<s>", eos_token: "</s>", tokenizer_class: "LlamaTokenizer" }));
    assert.throws(() => ChatTemplate.fromFile(base), (e: unknown) =>
      e instanceof ChatTemplateError && e.message === `${base}: has no "chat_template" field: this tokenizer has no chat template (a base model has none; chat and instruct models ship one)`);
    const broken = join(dir, "broken.json");
    await writeFile(broken, JSON.stringify({ chat_template: "{% for m in messages %}{{ m.content }}" }));
    assert.throws(() => ChatTemplate.fromFile(broken), (e: unknown) =>
      e instanceof ChatTemplateError && e.message.startsWith(`${broken}: field "chat_template" (template "default") does not parse: `));
    await writeFile(broken, "{ not json");
    assert.throws(() => ChatTemplate.fromFile(broken), new RegExp(`${broken.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: is not valid JSON`));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  assert.throws(() => ChatTemplate.fromConfig({ chat_template: 7 }), /field "chat_template" is 7; expected a string or a list of \{"name", "template"\}/);
  assert.throws(() => ChatTemplate.fromConfig({ chat_template: "x", eos_token: 2 }), /field "eos_token" is 2; expected a string or an AddedToken object/);
  assert.throws(() => ChatTemplate.fromConfig([]), /tokenizer_config.json: is \[\]; expected a tokenizer_config.json object/);
  const t = ChatTemplate.fromConfig({ chat_template: "{{ messages[0].content.nope() }}" });
  assert.throws(() => t.render([{ role: "user", content: "x" }]), /field "chat_template" \(template "default"\) failed to render: /);
  // jinja2 raises on reading from an undefined value (the library alone would render "")
  const first = ChatTemplate.fromConfig({ chat_template: "{{ messages[0]['role'] }}" });
  assert.throws(() => first.render([]), /failed to render: messages\[0\] is undefined \(reading "role" of it\)$/);
  const ok = ChatTemplate.fromConfig({ chat_template: "{{ messages|length }}" });
  assert.throws(() => ok.render([{ role: "user", content: 5 } as unknown as ChatMessage]), /^TypeError: messages\[0\]\.content is 5; expected a string$/);
  assert.throws(() => ok.render([{ content: "x" } as unknown as ChatMessage]), /messages\[0\]\.role is missing; expected a string/);
  assert.throws(() => ok.render("hi" as unknown as ChatMessage[]), /messages is "hi"; expected a list/);
  assert.throws(() => ok.render([], { extra: { messages: [] } }), /extra\.messages: "messages" is set by render itself/);
  assert.throws(() => ok.render([], { tools: [1] as unknown as Record<string, unknown>[] }), /tools is \[1\]; expected a list of JSON schema objects/);
});

// Fuzz finds (scripts/fuzz): a template cut short inside a block, recursion and oversized output gave
// engine messages ("Cannot read properties of undefined", "Maximum call stack size exceeded", "Invalid
// string length"); range(10**9) ran out of memory and nested loops ran for hours.
test("chat templates: broken or runaway templates fail with one clear message", () => {
  const fails = (source: string, re: RegExp) => {
    const t = ChatTemplate.fromConfig({ chat_template: source });
    assert.throws(() => t.render([{ role: "user", content: "hi" }]), (e: unknown) => e instanceof ChatTemplateError && re.test(e.message) && !e.message.includes("\n"));
  };
  assert.throws(() => ChatTemplate.fromConfig({ chat_template: "{% if messages %}x{% endif %}{%" }),
    /field "chat_template" \(template "default"\) does not parse: unexpected end of the template \(an unfinished \{% \.\.\. %\} or \{\{ \.\.\. \}\}\)$/);
  // jinja2's sandbox (sandbox.py safe_range, MAX_RANGE = 100000): range(100000) renders, range(100001) raises OverflowError
  assert.equal(ChatTemplate.fromConfig({ chat_template: "{{ range(100000)|length }}" }).render([]), "100000");
  fails("{{ range(100001)|length }}", /range\(0, 100001, 1\) has 100001 items; the sandbox allows at most 100000/);
  fails("{% for i in range(1000000000) %}x{% endfor %}", /the sandbox allows at most 100000/);
  fails("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}", /failed to render: it did not finish within 2000000 steps/);
  fails("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", /failed to render: it recurses without end/);
  fails("{{ 'x' | indent(1000000000) }}", /failed to render: its output grows past 33554432 characters/);
  fails("{% set ns = namespace(s='xy') %}{% for i in range(100) %}{% set ns.s = ns.s + ns.s %}{% endfor %}", /failed to render: a value grows to 67108864 characters; the limit is 33554432/);
  fails("{% set ns = namespace(l=[1]) %}{% for i in range(100) %}{% set ns.l = ns.l + ns.l %}{% endfor %}", /failed to render: a list grows to 2097152 items; the limit is 1048576/);
  // calling a name the environment lacks (jinja2 has lipsum; transformers' templates never call it) or a non-function
  fails("{{ lipsum() }}", /failed to render: lipsum is undefined \(calling it\)$/);
  fails("{% call nope() %}x{% endcall %}", /failed to render: nope is undefined \(calling it\)$/);
  fails("{{ messages() }}", /failed to render: cannot call messages: it is a list; only functions and macros can be called$/);
});
