// Mutators for Hugging Face files beyond the generic JSON ones: the chat template inside
// tokenizer_config.json (Jinja source edits: real templates' blocks spliced in, broken syntax, and
// constructs that recurse, loop or grow without bound) and the shard index (weight_map entries
// pointing at the wrong shard, outside the directory, or at files that are not shards).

import { mutateJson, type Mutant, type Rng } from "./mutators.js";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Template text a user (or a bad merge) could leave in a chat template; some must be refused, not run. */
const HOSTILE = [
  "{{", "{%", "}}", "%}", "{% endfor %}", "{% endif %}", "{% if %}", "{% for %}", "{% set %}", "{% raw %}", "{# unclosed",
  "{{ messages[1000]['content'] }}", "{{ message.nope.deeper }}", "{{ none.x }}", "{{ tools[0] }}", "{{ bos_token.nope() }}",
  "{{ raise_exception('fuzz') }}", "{{ 1 / 0 }}", "{{ 1 // 0 }}", "{{ 1 % 0 }}", "{{ 99999999999999999999999 }}", "{{ 1e999 }}",
  "{{ strftime_now('%Q') }}", "{{ strftime_now(1) }}", "{{ range(0, 10, 0) }}", "{{ range(1.5) }}",
  "{% for i in range(1000000000) %}x{% endfor %}", "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
  "{{ 'ab' * 1000000000 }}", "{{ 'x' | indent(1000000000) }}", "{{ messages | tojson(indent=1000000000) }}", "{{ 'x' | center(1000000000) }}",
  "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "{% for m in messages recursive %}{{ loop(messages) }}{% endfor %}",
  "{{ messages[0]['content'][::-1] }}", "{{ messages | map(attribute='role') | join(', ') }}", "{{ messages | length }}",
  "{% include 'other.jinja' %}", "{% extends 'base' %}", "{{ lipsum() }}", "{{ namespace(a=1).b }}", "{{ ''.__class__ }}",
  "{{ messages.__len__() }}", "{{ '\\u' }}", "{{ x | unknown_filter }}", "{% generation %}x{% endgeneration %}",
];

/** One edit of a chat template's source. */
function editTemplate(src: string, fragments: readonly string[], r: Rng): { desc: string; text: string } {
  const at = r.int(src.length + 1);
  switch (r.int(5)) {
    case 0: { const f = r.pick(HOSTILE); return { desc: `insert ${JSON.stringify(f)} at ${at}`, text: src.slice(0, at) + f + src.slice(at) }; }
    case 1: { const f = r.pick(fragments); return { desc: `splice a real template's ${JSON.stringify(f.slice(0, 40))} at ${at}`, text: src.slice(0, at) + f + src.slice(at) }; }
    case 2: { const n = 1 + r.int(40); return { desc: `delete ${n} characters at ${at}`, text: src.slice(0, at) + src.slice(at + n) }; }
    case 3: return { desc: `truncate to ${at} characters`, text: src.slice(0, at) };
    default: {
      // one {{ }} / {% %} block replaced by another
      const blocks = [...src.matchAll(/\{[{%][\s\S]*?[%}]\}/g)];
      if (!blocks.length) return { desc: "append a hostile block", text: src + r.pick(HOSTILE) };
      const b = r.pick(blocks), f = r.next() < 0.5 ? r.pick(HOSTILE) : r.pick(fragments);
      return { desc: `replace ${JSON.stringify(b[0].slice(0, 40))} with ${JSON.stringify(f.slice(0, 40))}`, text: src.slice(0, b.index) + f + src.slice(b.index + b[0].length) };
    }
  }
}

/** tokenizer_config.json: half the time an edit of chat_template's source (fragments: blocks of real templates), else a JSON mutation. */
export function chatTemplateMutator(fragments: readonly string[]): (bytes: Uint8Array, r: Rng) => Mutant {
  return (bytes, r) => {
    if (r.next() < 0.5) return mutateJson(bytes, r);
    const cfg = JSON.parse(dec.decode(bytes)) as Record<string, unknown>;
    if (typeof cfg.chat_template !== "string") return mutateJson(bytes, r);
    const { desc, text } = editTemplate(cfg.chat_template, fragments.length ? fragments : HOSTILE, r);
    return { desc: `chat_template: ${desc}`, bytes: enc.encode(JSON.stringify({ ...cfg, chat_template: text }, null, 2)) };
  };
}

// weight_map values that are not a shard of the directory: outside it, a device, another kind of file, absent.
const NOT_SHARDS = ["../hf/model.safetensors", "/dev/zero", "model.safetensors", "tokenizer.json", "config.json", "model-00009-of-00009.safetensors", "", ".", "model.safetensors.index.json"];

/** model.safetensors.index.json: a weight_map edit (a tensor moved to another shard or to a non-shard, a shard's tensors dropped, a tensor added), or a JSON / byte mutation. */
export function mutateShardIndex(bytes: Uint8Array, r: Rng): Mutant {
  if (r.next() < 0.5) return mutateJson(bytes, r);
  const idx = JSON.parse(dec.decode(bytes)) as { weight_map: Record<string, string> };
  const map = idx.weight_map, names = Object.keys(map), shards = [...new Set(Object.values(map))];
  const name = r.pick(names);
  let desc: string;
  switch (r.int(4)) {
    case 0: { const s = r.pick(shards); desc = `${name} -> ${s} (was ${map[name]})`; map[name] = s; break; }
    case 1: { const s = r.pick(NOT_SHARDS); desc = `${name} -> ${JSON.stringify(s)}`; map[name] = s; break; }
    case 2: {
      const s = r.pick(shards);
      for (const n of names) if (map[n] === s) delete map[n];
      desc = `every tensor of ${s} dropped from weight_map`;
      break;
    }
    default: { const extra = r.pick(["model.layers.7.mlp.up_proj.weight", "lm_head.weight", "model.rotary_emb.inv_freq", "x"]); map[extra] = r.pick(shards); desc = `extra entry ${extra} -> ${map[extra]}`; }
  }
  return { desc: `index: ${desc}`, bytes: enc.encode(JSON.stringify(idx, null, 2)) };
}
