// Chat templates from tokenizer_config.json, rendered as transformers' apply_chat_template renders them
// (utils/chat_template_utils.py: _compile_jinja_template, render_jinja_template): Jinja with
// trim_blocks and lstrip_blocks, the globals raise_exception and strftime_now, a tojson without HTML
// escaping, and the variables messages, tools, documents, add_generation_prompt and the special tokens
// map (tokenization_utils_base.py: template_kwargs = {**self.special_tokens_map, **kwargs}).
// Parsing and evaluation are @huggingface/jinja's; the globals are ours (raise_exception must be told
// apart from other failures, strftime_now must not depend on the locale), and two of its rules are
// put back to Python's (PythonInterpreter below): == / != and reading from an undefined value.
import * as jinja from "@huggingface/jinja";
import { brief, readJsonFile } from "../io/read.js";

// @huggingface/jinja's typings do not resolve under NodeNext (dist/index.d.ts imports "./runtime"
// without an extension), so its exports arrive as `any`; these are the parts used here, typed.
/** A runtime value (StringValue, ArrayValue, ...): its class name and its JS payload. */
interface Value { type: string; value: unknown }
interface Environment { set(name: string, value: unknown): Value }
interface Program { type: "Program" }
interface Interpreter { run(program: Program): Value }
const Environment = jinja.Environment as new (parent?: Environment) => Environment;
const tokenize = jinja.tokenize as (source: string, o: { lstrip_blocks: boolean; trim_blocks: boolean }) => unknown;
const parse = jinja.parse as (tokens: unknown) => Program;

export interface ChatMessage {
  role: string;
  content: string;
  /** Other fields (name, tool_calls, ...) reach the template unchanged. */
  [field: string]: unknown;
}

export interface ChatRenderOptions {
  /** Ask the template to open the assistant's turn (transformers' add_generation_prompt, default false). */
  addGenerationPrompt?: boolean;
  /** Tool JSON schemas, the template's `tools` (default none). */
  tools?: Record<string, unknown>[];
  /** More template variables; they override the special tokens, as transformers' kwargs do. */
  extra?: Record<string, unknown>;
  /** The clock of strftime_now (default: now, local time, as Python's datetime.now()). */
  now?: Date;
}

export class ChatTemplateError extends Error {
  /**
   * @param file the tokenizer_config.json (or the label given)
   * @param raised the template's own message when it called raise_exception
   */
  constructor(readonly file: string, problem: string, readonly raised?: string) {
    super(`${file}: ${problem}`);
    this.name = "ChatTemplateError";
  }
}

/** PreTrainedTokenizerBase.SPECIAL_TOKENS_ATTRIBUTES: the names the special tokens map may hold. */
const SPECIAL_TOKENS = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token", "additional_special_tokens"] as const;
/** Variables render_jinja_template sets itself; `extra` may not replace them. */
const RESERVED = new Set(["messages", "tools", "documents", "add_generation_prompt"]);

/** Thrown by the template's raise_exception (transformers raises jinja2's TemplateError). */
class TemplateRaised extends Error {}

// Bounds of one render. jinja2's sandbox caps range() only (sandbox.py safe_range, MAX_RANGE); the
// others are tsformer's: a chat prompt stays far below them, and a template that loops or grows
// without end fails with a message instead of hanging or exhausting memory.
const MAX_RANGE = 100_000;
/** Evaluated expressions plus rendered statements (loop bodies count each time they run). */
const MAX_STEPS = 2_000_000;
/** Characters of a string, items of a list (V8 refuses strings past 2^29 - 24 characters). */
const MAX_CHARS = 2 ** 25, MAX_ITEMS = 2 ** 20;

/** A render that went past one of the bounds above. */
class RenderLimit extends Error {}

/** Why a render failed, in one line: the engine's stack and string errors named by what the template did. */
function renderFailure(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  if (e instanceof RangeError && /Maximum call stack/.test(message)) return "it recurses without end (a macro or a recursive loop calling itself?)";
  if (e instanceof RangeError && /Invalid (string|array) length/.test(message)) return `its output grows past ${MAX_CHARS} characters (a loop without end?)`;
  return message;
}

export class ChatTemplate {
  private readonly program: Program;

  private constructor(
    /** The template's name: "default" unless the config holds several and another was asked for. */
    readonly name: string,
    /** The template's Jinja source. */
    readonly source: string,
    /** The special tokens map the template sees (bos_token, eos_token, ...), as strings. */
    readonly specialTokens: Readonly<Record<string, string | string[]>>,
    /** How errors name the file. */
    readonly file: string,
  ) {
    try {
      // transformers: ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).
      this.program = parse(tokenize(source, { lstrip_blocks: true, trim_blocks: true }));
    } catch (e) {
      // The library's parser reads past its last token (a TypeError) when the source ends inside a block.
      const why = e instanceof TypeError ? "unexpected end of the template (an unfinished {% ... %} or {{ ... }})" : (e as Error).message;
      throw new ChatTemplateError(file, `${this.field} does not parse: ${why}`);
    }
  }

  /**
   * The chat template of a parsed tokenizer_config.json. `chat_template` is a string, or a list of
   * {name, template} from which "default" is taken unless `name` is given. `file` names the source
   * in errors (default "tokenizer_config.json").
   */
  static fromConfig(config: unknown, opts: { name?: string; file?: string } = {}): ChatTemplate {
    const file = opts.file ?? "tokenizer_config.json";
    if (typeof config !== "object" || config === null || Array.isArray(config)) {
      throw new ChatTemplateError(file, `is ${brief(config)}; expected a tokenizer_config.json object`);
    }
    const cfg = config as Record<string, unknown>;
    if (!("chat_template" in cfg) || cfg.chat_template === null) {
      throw new ChatTemplateError(file, `has no "chat_template" field: this tokenizer has no chat template (a base model has none; chat and instruct models ship one)`);
    }
    const [name, source] = pickTemplate(cfg.chat_template, opts.name, file);
    return new ChatTemplate(name, source, specialTokensMap(cfg, file), file);
  }

  /** The chat template of a tokenizer_config.json file (read with the bounded JSON reader). */
  static fromFile(path: string, opts: { name?: string } = {}): ChatTemplate {
    return ChatTemplate.fromConfig(readJsonFile(path), { ...opts, file: path });
  }

  private get field(): string {
    return `field "chat_template" (template "${this.name}")`;
  }

  /** The prompt text of a conversation, exactly as transformers' apply_chat_template(tokenize=False) gives it. */
  render(messages: readonly ChatMessage[], opts: ChatRenderOptions = {}): string {
    checkMessages(messages);
    const tools = opts.tools ?? null;
    if (tools !== null && (!Array.isArray(tools) || !tools.every((t) => typeof t === "object" && t !== null && !Array.isArray(t)))) {
      throw new TypeError(`tools is ${brief(tools)}; expected a list of JSON schema objects`);
    }
    const extra = opts.extra ?? {};
    for (const key of Object.keys(extra)) {
      if (RESERVED.has(key)) throw new TypeError(`extra.${key}: "${key}" is set by render itself; pass it through its own option`);
    }
    const scope = new Environment(pythonGlobals(opts.now));
    const vars: Record<string, unknown> = {
      ...this.specialTokens, ...extra, messages, tools, documents: null, add_generation_prompt: opts.addGenerationPrompt ?? false,
    };
    try {
      for (const [k, v] of Object.entries(vars)) scope.set(k, v);
      return new PythonInterpreter(scope).run(this.program).value as string;
    } catch (e) {
      if (e instanceof TemplateRaised) throw new ChatTemplateError(this.file, `${this.field} raised: ${e.message}`, e.message);
      throw new ChatTemplateError(this.file, `${this.field} failed to render: ${renderFailure(e)}`);
    }
  }
}

function pickTemplate(field: unknown, name: string | undefined, file: string): [string, string] {
  if (typeof field === "string") {
    if (name !== undefined && name !== "default") throw new ChatTemplateError(file, `field "chat_template" is a single template; there is no template named "${name}"`);
    return ["default", field];
  }
  const ok = Array.isArray(field) && field.every((t) => typeof t === "object" && t !== null && typeof t.name === "string" && typeof t.template === "string");
  if (!ok) throw new ChatTemplateError(file, `field "chat_template" is ${brief(field)}; expected a string or a list of {"name", "template"}`);
  const list = field as { name: string; template: string }[];
  const wanted = name ?? "default";
  const found = list.find((t) => t.name === wanted);
  if (found === undefined) {
    const names = list.map((t) => `"${t.name}"`).join(", ");
    const hint = name === undefined ? "; ask for one by name" : "";
    throw new ChatTemplateError(file, `field "chat_template" has no template named "${wanted}" (it has ${names || "none"})${hint}`);
  }
  return [found.name, found.template];
}

/** A special token as the config spells it: a string, or an AddedToken object {content, ...}. */
function tokenText(v: unknown, field: string, file: string): string {
  if (typeof v === "string") return v;
  if (typeof v === "object" && v !== null && typeof (v as { content?: unknown }).content === "string") return (v as { content: string }).content;
  throw new ChatTemplateError(file, `field "${field}" is ${brief(v)}; expected a string or an AddedToken object with a string "content"`);
}

/** transformers' special_tokens_map: the special tokens that are set (truthy), as strings. */
function specialTokensMap(cfg: Record<string, unknown>, file: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const attr of SPECIAL_TOKENS) {
    const v = cfg[attr];
    if (v === undefined || v === null) continue;
    if (attr === "additional_special_tokens") {
      if (!Array.isArray(v)) throw new ChatTemplateError(file, `field "${attr}" is ${brief(v)}; expected a list of tokens`);
      const list = v.map((t, i) => tokenText(t, `${attr}[${i}]`, file));
      if (list.length > 0) out[attr] = list;
    } else {
      const text = tokenText(v, attr, file);
      if (text !== "") out[attr] = text;
    }
  }
  return out;
}

function checkMessages(messages: readonly ChatMessage[]): void {
  if (!Array.isArray(messages)) throw new TypeError(`messages is ${brief(messages)}; expected a list of {role, content}`);
  messages.forEach((m: unknown, i) => {
    if (typeof m !== "object" || m === null || Array.isArray(m)) throw new TypeError(`messages[${i}] is ${brief(m)}; expected {role, content}`);
    const { role, content } = m as Record<string, unknown>;
    if (typeof role !== "string") throw new TypeError(`messages[${i}].role is ${brief(role)}; expected a string`);
    if (typeof content !== "string") throw new TypeError(`messages[${i}].content is ${brief(content)}; expected a string`);
  });
}

// ---- the environment: globals, and the interpreter with Python's rules ----

/** The globals transformers' environment has (jinja2's constants, range, raise_exception, strftime_now). */
function pythonGlobals(now: Date | undefined): Environment {
  const env = new Environment();
  for (const [k, v] of [["true", true], ["false", false], ["none", null], ["True", true], ["False", false], ["None", null]] as const) env.set(k, v);
  env.set("range", pyRange);
  env.set("raise_exception", (message: unknown) => {
    throw new TemplateRaised(String(message));
  });
  env.set("strftime_now", (format: unknown) => strftime(now ?? new Date(), String(format)));
  return env;
}

/** Python's range(stop) / range(start, stop[, step]). */
function pyRange(a: number, b?: number, step = 1): number[] {
  const [start, stop] = b === undefined ? [0, a] : [a, b];
  if (![start, stop, step].every(Number.isInteger)) throw new TypeError("range() arguments must be integers");
  if (step === 0) throw new RangeError("range() arg 3 must not be zero");
  const n = Math.max(0, Math.ceil((stop - start) / step));
  if (n > MAX_RANGE) throw new RenderLimit(`range(${start}, ${stop}, ${step}) has ${n} items; the sandbox allows at most ${MAX_RANGE} (jinja2's MAX_RANGE)`);
  const out: number[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
  return out;
}

const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

/** datetime.strftime in the C locale (Python never calls setlocale, so names are English). */
function strftime(d: Date, format: string): string {
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  const dayOfYear = Math.round((Date.UTC(d.getFullYear(), d.getMonth(), d.getDate()) - Date.UTC(d.getFullYear(), 0, 1)) / 86400000) + 1;
  return format.replace(/%(.)/gs, (whole, c: string) => {
    switch (c) {
      case "Y": return String(d.getFullYear());
      case "y": return pad(d.getFullYear() % 100);
      case "m": return pad(d.getMonth() + 1);
      case "d": return pad(d.getDate());
      case "H": return pad(d.getHours());
      case "I": return pad(d.getHours() % 12 || 12);
      case "M": return pad(d.getMinutes());
      case "S": return pad(d.getSeconds());
      case "f": return pad(d.getMilliseconds() * 1000, 6);
      case "p": return d.getHours() < 12 ? "AM" : "PM";
      case "a": return DAYS[d.getDay()]!.slice(0, 3);
      case "A": return DAYS[d.getDay()]!;
      case "b": return MONTHS[d.getMonth()]!.slice(0, 3);
      case "B": return MONTHS[d.getMonth()]!;
      case "j": return pad(dayOfYear, 3);
      case "w": return String(d.getDay());
      case "%": return "%";
      default: throw new Error(`strftime_now: directive ${whole} is not supported`);
    }
  });
}

const NUMERIC = new Set(["IntegerValue", "FloatValue", "BooleanValue"]);

/** Python's == on template values: bool is an int, containers compare by content, other types differ. */
function pyEquals(a: Value, b: Value): boolean {
  if (NUMERIC.has(a.type) && NUMERIC.has(b.type)) return Number(a.value) === Number(b.value);
  if (a.type !== b.type) return false;
  switch (a.type) {
    case "StringValue": return a.value === b.value;
    case "NullValue": case "UndefinedValue": return true;
    case "ArrayValue": case "TupleValue": {
      const x = a.value as Value[], y = b.value as Value[];
      return x.length === y.length && x.every((v, i) => pyEquals(v, y[i]!));
    }
    case "ObjectValue": {
      const x = a.value as Map<string, Value>, y = b.value as Map<string, Value>;
      return x.size === y.size && [...x].every(([k, v]) => y.has(k) && pyEquals(v, y.get(k)!));
    }
    default: return a === b; // functions, namespaces: identity, as in Python
  }
}

// The library's interpreter with two Python rules put back, in its public hook, evaluate():
// - == and != compare as Python does (the library uses JavaScript's loose `==`: '' == false, '0' == 0);
// - reading an attribute or item of an undefined value raises, as jinja2's default Undefined does
//   (the library yields undefined again, so `messages[0]['role']` on an empty chat renders silently).
// The library evaluates a member expression's object first thing; the value computed here for the
// check is handed back to that call (`held`), so nothing is evaluated twice.
// evaluate() and renderBlock() (which runs loop bodies, even pure text ones) also count the steps
// and check the size of every value against the render's bounds (MAX_STEPS, MAX_CHARS, MAX_ITEMS).
interface Node { type: string }
interface BinaryNode extends Node { operator: { value: string }; left: Node; right: Node }
interface MemberNode extends Node { object: Node; property: Node & { value?: unknown }; computed: boolean }
interface CallNode extends Node { callee: Node }
/** The library's value classes by their Python names, for errors. */
const PY_TYPES: Record<string, string> = {
  StringValue: "a string", IntegerValue: "an integer", FloatValue: "a float", BooleanValue: "a boolean", ArrayValue: "a list", TupleValue: "a tuple", ObjectValue: "a dict", NullValue: "None",
};
interface InterpreterBase extends Interpreter {
  evaluate(node: Node | undefined, env: Environment): Value;
  /** Renders a block's statements (a template, a loop body each time it runs, an if branch). */
  renderBlock(statements: Node[], env: Environment): string;
}
// The library's BooleanValue class (not exported): the class of a converted `true`.
const BooleanValue = new Environment().set("b", true).constructor as new (v: boolean) => Value;

class PythonInterpreter extends (jinja.Interpreter as new (env: Environment) => InterpreterBase) {
  private held: { node: Node; value: Value } | undefined;
  private steps = 0;

  private count(n: number): void {
    this.steps += n;
    if (this.steps > MAX_STEPS) throw new RenderLimit(`it did not finish within ${MAX_STEPS} steps (loops nested without bound?)`);
  }

  override renderBlock(statements: Node[], env: Environment): string {
    this.count(1 + statements.length);
    return sized(super.renderBlock(statements, env));
  }

  override evaluate(node: Node | undefined, env: Environment): Value {
    this.count(1);
    const out = this.evaluatePython(node, env);
    sized(out.value);
    return out;
  }

  private evaluatePython(node: Node | undefined, env: Environment): Value {
    if (node !== undefined && node === this.held?.node) {
      const { value } = this.held;
      this.held = undefined;
      return value;
    }
    if (node?.type === "BinaryExpression") {
      const { operator, left, right } = node as BinaryNode;
      if (operator.value === "==" || operator.value === "!=") {
        return new BooleanValue(pyEquals(this.evaluate(left, env), this.evaluate(right, env)) === (operator.value === "=="));
      }
    } else if (node?.type === "MemberExpression") {
      const { object, property, computed } = node as MemberNode;
      const value = this.evaluate(object, env);
      if (value.type === "UndefinedValue") {
        const key = computed && property.type !== "StringLiteral" && property.type !== "IntegerLiteral" ? "an item" : JSON.stringify(property.value);
        throw new Error(`${describe(object)} is undefined (reading ${key} of it)`);
      }
      this.held = { node: object, value };
      const out = super.evaluate(node, env);
      if (this.held !== undefined) throw new Error("@huggingface/jinja no longer evaluates a member's object first; chat-template.ts needs updating");
      return out;
    } else if (node?.type === "CallExpression" || node?.type === "CallStatement") {
      // The library names only the type of what was called ("Cannot call something that is not a function: got UndefinedValue").
      const { callee } = node.type === "CallExpression" ? node as CallNode : (node as Node & { call: CallNode }).call;
      try {
        return super.evaluate(node, env);
      } catch (e) {
        const got = /^Cannot call something that is not a function: got (\w+)$/.exec((e as Error).message)?.[1];
        if (got === undefined) throw e;
        throw new Error(got === "UndefinedValue" ? `${describe(callee)} is undefined (calling it)` : `cannot call ${describe(callee)}: it is ${PY_TYPES[got] ?? got}; only functions and macros can be called`);
      }
    }
    return super.evaluate(node, env);
  }
}

/** v, unless it is a string or list past the render's bounds. */
function sized<T>(v: T): T {
  if (typeof v === "string" && v.length > MAX_CHARS) throw new RenderLimit(`a value grows to ${v.length} characters; the limit is ${MAX_CHARS} (a loop without end?)`);
  if (Array.isArray(v) && v.length > MAX_ITEMS) throw new RenderLimit(`a list grows to ${v.length} items; the limit is ${MAX_ITEMS} (a loop without end?)`);
  return v;
}

/** A short source-like name of an expression, for errors: `messages[0]`, `message.role`. */
function describe(node: Node): string {
  const n = node as Node & { value?: unknown } & Partial<MemberNode>;
  if (n.type === "Identifier") return String(n.value);
  if (n.type === "MemberExpression" && n.object && n.property) {
    const p = n.property as Node & { value?: unknown };
    if (!n.computed) return `${describe(n.object)}.${String(p.value)}`;
    if (p.type === "IntegerLiteral" || p.type === "StringLiteral") return `${describe(n.object)}[${JSON.stringify(p.value)}]`;
    return `${describe(n.object)}[...]`;
  }
  return "a value";
}
