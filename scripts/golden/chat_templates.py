"""Golden renders of chat templates with Python's jinja2, in the environment transformers uses.

Reads the tokenizer_config.json fixtures in test/fixtures/chat-templates/ and writes
test/fixtures/chat-templates/expected.json: for each case the messages, the options and either the
rendered string or the message the template raised.

The environment follows transformers' utils/chat_template_utils.py (_compile_jinja_template and
render_jinja_template): ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with the
loopcontrols extension, `raise_exception` raising TemplateError, `tojson` overridden by
json.dumps(ensure_ascii=False, ...) (no HTML escaping, keys unsorted), `strftime_now`; the template
sees messages, tools, documents (None), add_generation_prompt and the special tokens map
(tokenization_utils_base.apply_chat_template: template_kwargs = {**self.special_tokens_map, **kwargs}).
strftime_now reads a fixed clock here so the output is deterministic; the test passes the same clock.
"""

import json
from datetime import datetime
from pathlib import Path

import jinja2
import jinja2.ext
from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "test" / "fixtures" / "chat-templates"
CLOCK = datetime(2024, 7, 26, 9, 5, 3)

# PreTrainedTokenizerBase.SPECIAL_TOKENS_ATTRIBUTES; special_tokens_map keeps the truthy ones, as strings.
SPECIAL_TOKENS = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token",
                  "additional_special_tokens"]


def token_text(t):
    return t["content"] if isinstance(t, dict) else t


def special_tokens_map(config):
    out = {}
    for attr in SPECIAL_TOKENS:
        v = config.get(attr)
        v = [token_text(t) for t in v] if isinstance(v, list) else (token_text(v) if v is not None else None)
        if v:
            out[attr] = v
    return out


class Raised(TemplateError):
    """What raise_exception raises (transformers raises TemplateError itself); other TemplateErrors are
    jinja2's own (UndefinedError, ...), whose wording the test does not compare."""


def environment():
    def raise_exception(message):
        raise Raised(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return CLOCK.strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


# Not a model's template: it pins the rest of the environment (tojson and its options, tools, extra
# variables, special tokens incl. additional_special_tokens, undefined bos_token, loop controls,
# strftime_now, namespace, Python string methods and == / != between types). Booleans are printed
# through `if`, string lengths are taken of ASCII only and pairs are unpacked from lists, not tuples:
# @huggingface/jinja differs there (see the README in the fixtures folder).
ENVIRONMENT_TEMPLATE = """\
{%- set ns = namespace(users=0) %}
{%- for m in messages %}
  {%- if m.role == 'user' %}{% set ns.users = ns.users + 1 %}{% endif %}
{{ loop.index }}. {{ m.role | upper }} {{ m.content | tojson }} [{{ m['content'].strip() }}] {{ m.content.split('\\n') | length }}
{% endfor %}
users={{ ns.users }} n={{ messages | length }} last={{ messages[-1].role }} title={{ messages[0].role.title() }}
{% if tools is not none %}
tools={{ tools | tojson }}
{{ tools[0] | tojson(indent=2) }}
{{ tools[0].function | tojson(sort_keys=true, separators=(',', ':')) }}
{% for t in tools %}{{ t.function.name }}{% if not loop.last %},{% endif %}{% endfor %}

{% endif %}
bos={{ 'defined' if bos_token is defined else 'undefined' }} eos={{ eos_token }} pad={{ pad_token }} extra={{ additional_special_tokens | join('|') }}
{% if custom is defined %}custom={{ custom | tojson }}{% endif %}

{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}

date={{ strftime_now('%Y-%m-%d %H:%M:%S %b %B %a %A %j %y %I %p %%') }}
{% for a, b in [['', false], ['0', 0], [0, false], [1, 1.0], [none, false], [[], false], ['a', 'a'], [[1, 'x'], [1, 'x']], [(1, 'x'), [1, 'x']], [{'k': 1}, {'k': 1.0}]] %}
{{- 'T' if a == b else 'F' }}{{ 'T' if a != b else 'F' }} {% endfor %}

{{ 'ok' if add_generation_prompt else 'no-prompt' }}
"""

CHATS = {
    "one_user": [{"role": "user", "content": "Hello, how are you?"}],
    "system_multi": [
        {"role": "system", "content": "You are a friendly chatbot who always responds in the style of a pirate"},
        {"role": "user", "content": "Hello, how are you?"},
        {"role": "assistant", "content": "I'm doing great. How can I help you today?"},
        {"role": "user", "content": "I'd like to show off how chat templating works!"},
    ],
    "multi_no_system": [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3+3?"},
        {"role": "assistant", "content": "6"},
    ],
    "unicode_newlines": [
        {"role": "system", "content": "Réponds en français.\nSois bref.  "},
        {"role": "user", "content": "  Привет 👋 — 你好\n\nsecond line\twith tab  "},
        {"role": "assistant", "content": "\nBonjour ! 🎉 <b>&</b> \"quotes\" \\ backslash\n"},
        {"role": "user", "content": "Ça va ?\r\n"},
    ],
    "empty_content": [
        {"role": "system", "content": ""},
        {"role": "user", "content": ""},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "still there?"},
    ],
    "zero_system": [
        {"role": "system", "content": "0"},
        {"role": "user", "content": "0"},
    ],
}

TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Météo <now> & 'later'",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer", "maximum": 7},
                                                         "scale": {"type": "number", "default": 1.5}},
                       "required": ["city"]}}},
    {"type": "function", "function": {"name": "noop", "description": "", "parameters": {"type": "object", "properties": {}}}},
]

# The real templates, each a fixture folder holding its model's tokenizer_config.json.
MODEL_TEMPLATES = ["llama-2-7b-chat-hf", "qwen2-0.5b-instruct", "mistral-7b-instruct-v0.2"]

# (template, case name, chat, add_generation_prompt, extra kwargs)
CASES = []
for tpl in MODEL_TEMPLATES:
    CASES += [
        (tpl, "one_user_prompt", "one_user", True, None),
        (tpl, "system_multi", "system_multi", False, None),
        (tpl, "system_multi_prompt", "system_multi", True, None),
        (tpl, "multi_no_system", "multi_no_system", False, None),
        (tpl, "unicode_newlines_prompt", "unicode_newlines", True, None),
        (tpl, "empty_content", "empty_content", False, None),
        (tpl, "zero_system_prompt", "zero_system", True, None),
    ]
ERROR_CHATS = {
    "user_user": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
    "assistant_first": [{"role": "assistant", "content": "hi"}, {"role": "user", "content": "b"}],
    "system_in_middle": [{"role": "user", "content": "a"}, {"role": "system", "content": "s"}],
    "empty_chat": [],
}
CHATS.update(ERROR_CHATS)
CASES += [
    ("mistral-7b-instruct-v0.2", "error_user_user", "user_user", True, None),
    ("mistral-7b-instruct-v0.2", "error_assistant_first", "assistant_first", False, None),
    ("mistral-7b-instruct-v0.2", "error_system_in_middle", "system_in_middle", False, None),
    ("llama-2-7b-chat-hf", "error_user_user", "user_user", False, None),
    ("llama-2-7b-chat-hf", "error_assistant_first", "assistant_first", False, None),
    ("qwen2-0.5b-instruct", "permissive_user_user", "user_user", True, None),
    ("qwen2-0.5b-instruct", "empty_chat_prompt", "empty_chat", True, None),
    ("llama-2-7b-chat-hf", "error_empty_chat", "empty_chat", True, None),
    ("mistral-7b-instruct-v0.2", "error_empty_chat", "empty_chat", True, None),
    ("environment", "no_tools", "system_multi", False, None),
    ("environment", "tools_extra", "unicode_newlines", True, {"tools": TOOLS, "custom": {"k": [1, 2.5, None, True], "s": "é<>"}}),
]


def main():
    env = environment()
    templates = {}
    for name in MODEL_TEMPLATES:
        config_path = f"{name}/tokenizer_config.json"
        config = json.loads((FIXTURES / config_path).read_text(encoding="utf-8"))
        templates[name] = {"config": config_path, "source": config["chat_template"], "config_json": config}
    # the environment template renders with Qwen2's special tokens
    templates["environment"] = {**templates["qwen2-0.5b-instruct"], "source": ENVIRONMENT_TEMPLATE}

    cases = []
    for tpl, name, chat, agp, extra in CASES:
        t = templates[tpl]
        kwargs = dict(extra or {})
        tools = kwargs.pop("tools", None)
        case = {"template": tpl, "name": name, "messages": CHATS[chat], "add_generation_prompt": agp}
        if tools is not None:
            case["tools"] = tools
        if kwargs:
            case["extra"] = kwargs
        try:
            case["output"] = env.from_string(t["source"]).render(
                messages=CHATS[chat], tools=tools, documents=None, add_generation_prompt=agp,
                **{**special_tokens_map(t["config_json"]), **kwargs})
        except TemplateError as e:
            case["error"] = str(e)
            case["raised"] = isinstance(e, Raised)
        cases.append(case)

    out = {
        "generator": "scripts/golden/chat_templates.py",
        "reference": "Python jinja2 in transformers' chat-template environment (utils/chat_template_utils.py)",
        "jinja2_version": jinja2.__version__,
        "clock": CLOCK.isoformat(),
        "templates": {k: {"config": v["config"]} | ({"source": v["source"]} if k == "environment" else {})
                      for k, v in templates.items()},
        "cases": cases,
    }
    path = FIXTURES / "expected.json"
    path.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT)}: {len(cases)} cases")


if __name__ == "__main__":
    main()
