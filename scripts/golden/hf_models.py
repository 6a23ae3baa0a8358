"""Golden Hugging Face model directories (GPT-2, Llama, Qwen2, Mistral), from plain PyTorch.

Writes test/fixtures/hf/<name>/ (run from the repo root via scripts/golden/run.sh): config.json,
generation_config.json and model.safetensors laid out as transformers' save_pretrained writes them,
plus golden.safetensors with the reference outputs (layout: scripts/golden/README.md).

transformers is not installed, so each forward is written by hand from its source
(src/transformers/models/<arch>/modeling_<arch>.py, cited per function). Weights are drawn in
float32 (bf16-rounded for qwen2-bf16); every forward runs in float64 from those exact values and
the logits are stored as F32.
"""

import json
import math
import os
import shutil
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import BF16, bf16_from_f32, save_file  # noqa: E402

OUT_DIR = os.path.join("test", "fixtures", "hf")
TRANSFORMERS_VERSION = "4.46.3"  # the config layout written: top-level rope_theta, "torch_dtype"
N_INPUT, N_PROMPT, N_NEW = 12, 5, 8
MIN_MARGIN = 1e-3  # greedy steps must win by this much so a float32 forward picks the same ids
ST_META = {"format": "pt"}  # what save_pretrained puts in __metadata__

torch.set_num_threads(1)

# ---------------------------------------------------------------- configs (configuration_*.py)

GPT2 = {
    "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1,
    "bos_token_id": 95, "embd_pdrop": 0.1, "eos_token_id": 95, "initializer_range": 0.02,
    "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_embd": 32, "n_head": 4,
    "n_inner": None,  # GPT2Block: inner_dim = n_inner or 4 * hidden_size
    "n_layer": 2, "n_positions": 64, "reorder_and_upcast_attn": False, "resid_pdrop": 0.1,
    "scale_attn_by_inverse_layer_idx": False, "scale_attn_weights": True,
    "summary_activation": None, "summary_first_dropout": 0.1, "summary_proj_to_labels": True,
    "summary_type": "cls_index", "summary_use_proj": True, "torch_dtype": "float32",
    "use_cache": True, "vocab_size": 96,
}
LLAMA = {
    "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
    "bos_token_id": 1, "eos_token_id": 2, "head_dim": 16, "hidden_act": "silu",
    "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 88,
    "max_position_embeddings": 64, "mlp_bias": False, "model_type": "llama",
    "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2,
    "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": None, "rope_theta": 10000.0,
    "tie_word_embeddings": False, "torch_dtype": "float32", "use_cache": True, "vocab_size": 128,
}
QWEN2 = {
    "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 117,
    "eos_token_id": 118, "hidden_act": "silu", "hidden_size": 32, "initializer_range": 0.02,
    "intermediate_size": 72, "max_position_embeddings": 64, "max_window_layers": 2,
    "model_type": "qwen2", "num_attention_heads": 4, "num_hidden_layers": 2,
    "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_scaling": None,
    "rope_theta": 1000000.0, "sliding_window": 64, "tie_word_embeddings": True,
    "torch_dtype": "float32", "use_cache": True,
    "use_sliding_window": False,  # Qwen2Config: no window unless use_sliding_window
    "vocab_size": 120,
}
MISTRAL = {
    "architectures": ["MistralForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1,
    "eos_token_id": 2, "head_dim": 12, "hidden_act": "silu", "hidden_size": 48,
    "initializer_range": 0.02, "intermediate_size": 112, "max_position_embeddings": 64,
    "model_type": "mistral", "num_attention_heads": 4, "num_hidden_layers": 2,
    "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 10000.0,
    "sliding_window": 4096,  # >= every length tested here, so the window never masks anything
    "tie_word_embeddings": False, "torch_dtype": "float32", "use_cache": True, "vocab_size": 104,
}

# generation_config.json bodies: GPT-2 / Mistral as derived from the model config, Llama-2-chat
# style sampling defaults, Qwen2.5-Instruct style (eos as a list).
GEN = {
    "gpt2": {"_from_model_config": True, "bos_token_id": 95, "eos_token_id": 95},
    "llama": {"bos_token_id": 1, "do_sample": True, "eos_token_id": 2, "max_length": 64,
              "pad_token_id": 0, "temperature": 0.6, "top_p": 0.9},
    "qwen2": {"bos_token_id": 117, "do_sample": True, "eos_token_id": [118, 117],
              "pad_token_id": 117, "repetition_penalty": 1.05, "temperature": 0.7, "top_k": 20,
              "top_p": 0.8},
    "mistral": {"_from_model_config": True, "bos_token_id": 1, "eos_token_id": 2},
}
SEEDS = {"gpt2": 101, "llama": 102, "qwen2": 103, "mistral": 104}

# ---------------------------------------------------------------- parameters (state-dict order)


def gpt2_shapes(c):
    """GPT2LMHeadModel state dict; Conv1D weights are [in, out] (pytorch_utils.Conv1D)."""
    D, V, inner = c["n_embd"], c["vocab_size"], c["n_inner"] or 4 * c["n_embd"]
    s = {"transformer.wte.weight": ([V, D], "emb"), "transformer.wpe.weight": ([c["n_positions"], D], "emb")}
    for i in range(c["n_layer"]):
        p = "transformer.h.%d." % i
        for name, shape, kind in [
            ("ln_1.weight", [D], "norm"), ("ln_1.bias", [D], "bias"),
            ("attn.c_attn.weight", [D, 3 * D], "w"), ("attn.c_attn.bias", [3 * D], "bias"),
            ("attn.c_proj.weight", [D, D], "w"), ("attn.c_proj.bias", [D], "bias"),
            ("ln_2.weight", [D], "norm"), ("ln_2.bias", [D], "bias"),
            ("mlp.c_fc.weight", [D, inner], "w"), ("mlp.c_fc.bias", [inner], "bias"),
            ("mlp.c_proj.weight", [inner, D], "w"), ("mlp.c_proj.bias", [D], "bias"),
        ]:
            s[p + name] = (shape, kind)
    s["transformer.ln_f.weight"] = ([D], "norm")
    s["transformer.ln_f.bias"] = ([D], "bias")
    return s  # lm_head.weight is tied to wte and save_pretrained drops it


def llama_shapes(c):
    """LlamaForCausalLM / Qwen2ForCausalLM / MistralForCausalLM state dict; nn.Linear is [out, in]."""
    D, V, FF = c["hidden_size"], c["vocab_size"], c["intermediate_size"]
    H, Hkv = c["num_attention_heads"], c["num_key_value_heads"]
    Dh = c.get("head_dim") or D // H
    qkv_bias = c["model_type"] == "qwen2"  # Qwen2Attention: q/k/v bias=True, o_proj bias=False
    s = {"model.embed_tokens.weight": ([V, D], "emb")}
    for i in range(c["num_hidden_layers"]):
        p = "model.layers.%d." % i
        for proj, out_f in [("q_proj", H * Dh), ("k_proj", Hkv * Dh), ("v_proj", Hkv * Dh)]:
            s[p + "self_attn.%s.weight" % proj] = ([out_f, D], "w")
            if qkv_bias:
                s[p + "self_attn.%s.bias" % proj] = ([out_f], "bias")
        s[p + "self_attn.o_proj.weight"] = ([D, H * Dh], "w")
        for name, shape in [("gate_proj", [FF, D]), ("up_proj", [FF, D]), ("down_proj", [D, FF])]:
            s[p + "mlp.%s.weight" % name] = (shape, "w")
        for name in ("input_layernorm", "post_attention_layernorm"):
            s[p + name + ".weight"] = ([D], "norm")
    s["model.norm.weight"] = ([D], "norm")
    if not c["tie_word_embeddings"]:
        s["lm_head.weight"] = ([V, D], "w")
    return s


def draw_params(shapes, seed):
    """float32 weights: N(0, 0.08) matrices, N(0, 0.1) embeddings, 1 + 0.1 N norms, 0.05 N biases."""
    g = torch.Generator().manual_seed(seed)
    scale = {"w": 0.08, "emb": 0.1, "norm": 0.1, "bias": 0.05}
    return {name: torch.randn(shape, generator=g) * scale[kind] + (1.0 if kind == "norm" else 0.0)
            for name, (shape, kind) in shapes.items()}


# ---------------------------------------------------------------- forwards (float64)


def causal_attention(q, k, v, window=None):
    """q [H,T,Dh], k/v [H,T,Dh] (already repeated): softmax(q k^T / sqrt(Dh) + mask) v.

    modeling_llama.py eager_attention_forward / modeling_gpt2.py GPT2Attention._attn: scale
    1/sqrt(head_dim), key j visible to query i iff j <= i (and i - j < sliding_window, as
    masking_utils' sliding-window mask, when a window is given); HF adds finfo.min, -inf here.
    """
    T = q.shape[1]
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    visible = j <= i
    if window is not None:
        visible = visible & (i - j < window)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~visible, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def gelu_new(x):
    """activations.py NewGELUActivation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def gpt2_forward(P, c, ids):
    """modeling_gpt2.py GPT2LMHeadModel: learned wpe, pre-LN blocks, ln_f, tied lm_head = wte."""
    D, H, eps = c["n_embd"], c["n_head"], c["layer_norm_epsilon"]
    T, Dh = len(ids), D // H

    def ln(x, p):  # nn.LayerNorm(hidden, eps=layer_norm_epsilon)
        return F.layer_norm(x, (D,), P[p + ".weight"], P[p + ".bias"], eps)

    def conv1d(x, p):  # pytorch_utils.Conv1D: y = x @ W + b with W stored [in, out]
        return x @ P[p + ".weight"] + P[p + ".bias"]

    h = P["transformer.wte.weight"][ids] + P["transformer.wpe.weight"][torch.arange(T)]
    for li in range(c["n_layer"]):
        p = "transformer.h.%d." % li
        # GPT2Attention.forward: c_attn(x).split(split_size=D) gives q, k, v in that order
        q, k, v = conv1d(ln(h, p + "ln_1"), p + "attn.c_attn").split(D, dim=-1)
        q, k, v = (t.view(T, H, Dh).transpose(0, 1) for t in (q, k, v))
        a = causal_attention(q, k, v).transpose(0, 1).reshape(T, D)
        h = h + conv1d(a, p + "attn.c_proj")
        # GPT2MLP: c_proj(act(c_fc(x))), act = ACT2FN["gelu_new"]
        h = h + conv1d(gelu_new(conv1d(ln(h, p + "ln_2"), p + "mlp.c_fc")), p + "mlp.c_proj")
    return ln(h, "transformer.ln_f") @ P["transformer.wte.weight"].T


def rms_norm(x, w, eps):
    """modeling_llama.py LlamaRMSNorm: weight * (h * rsqrt(mean(h^2, -1) + eps)), h upcast to fp32."""
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def inv_freq(Dh, theta):
    """LlamaRotaryEmbedding: inv_freq = 1 / theta^(arange(0, Dh, 2) / Dh)."""
    return 1.0 / (theta ** (torch.arange(0, Dh, 2, dtype=torch.float64) / Dh))


def rope_rotate_half(x, theta):
    """modeling_llama.py apply_rotary_pos_emb: x cos + rotate_half(x) sin, where cos/sin are of
    emb = cat(freqs, freqs) and rotate_half(x) = cat(-x[Dh/2:], x[:Dh/2]); x is [H, T, Dh]."""
    T, Dh = x.shape[1], x.shape[2]
    freqs = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq(Dh, theta))
    emb = torch.cat((freqs, freqs), dim=-1)
    x1, x2 = x[..., : Dh // 2], x[..., Dh // 2 :]
    return x * emb.cos().to(x.dtype) + torch.cat((-x2, x1), dim=-1) * emb.sin().to(x.dtype)


def rope_interleaved(x, theta):
    """Meta llama model.py apply_rotary_emb: pairs (2j, 2j+1) as complex numbers times e^{i t f_j}.
    Used only by the self-check (with Meta-layout q/k weights)."""
    T, Dh = x.shape[1], x.shape[2]
    cis = torch.polar(torch.ones(T, Dh // 2, dtype=torch.float64),
                      torch.outer(torch.arange(T, dtype=torch.float64), inv_freq(Dh, theta)))
    xc = torch.view_as_complex(x.reshape(*x.shape[:-1], Dh // 2, 2).contiguous())
    return torch.view_as_real(xc * cis).flatten(-2)


def hf_linear(P, x, p):
    """nn.Linear: y = x W^T (+ b), from P["<p>.weight"] (and P["<p>.bias"] when present)."""
    y = x @ P[p + ".weight"].T
    return y + P[p + ".bias"] if p + ".bias" in P else y


def llama_forward(P, c, ids, rope=rope_rotate_half, linear=hf_linear):
    """modeling_llama.py LlamaForCausalLM (Qwen2 / Mistral share the layout): pre-RMSNorm blocks,
    RoPE on q/k, repeat_kv for GQA, SwiGLU MLP down(silu(gate(x)) * up(x)), final norm, lm_head.
    `linear(P, x, prefix)` computes every projection (scripts/golden/peft.py adds LoRA there)."""
    D, H, Hkv = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
    Dh = c.get("head_dim") or D // H
    eps, theta, T = c["rms_norm_eps"], c["rope_theta"], len(ids)
    window = c["sliding_window"] if c["model_type"] == "mistral" else None
    if c["model_type"] == "qwen2" and c["use_sliding_window"]:
        raise ValueError("qwen2 fixtures assume use_sliding_window false")

    h = P["model.embed_tokens.weight"][ids]
    for li in range(c["num_hidden_layers"]):
        p = "model.layers.%d." % li
        x = rms_norm(h, P[p + "input_layernorm.weight"], eps)
        q = linear(P, x, p + "self_attn.q_proj").view(T, H, Dh).transpose(0, 1)
        k = linear(P, x, p + "self_attn.k_proj").view(T, Hkv, Dh).transpose(0, 1)
        v = linear(P, x, p + "self_attn.v_proj").view(T, Hkv, Dh).transpose(0, 1)
        q, k = rope(q, theta), rope(k, theta)
        # repeat_kv: kv head g serves query heads g*n_rep .. g*n_rep + n_rep - 1
        k, v = k.repeat_interleave(H // Hkv, dim=0), v.repeat_interleave(H // Hkv, dim=0)
        a = causal_attention(q, k, v, window).transpose(0, 1).reshape(T, H * Dh)
        h = h + linear(P, a, p + "self_attn.o_proj")
        x = rms_norm(h, P[p + "post_attention_layernorm.weight"], eps)
        gate, up = linear(P, x, p + "mlp.gate_proj"), linear(P, x, p + "mlp.up_proj")
        h = h + linear(P, F.silu(gate) * up, p + "mlp.down_proj")
    h = rms_norm(h, P["model.norm.weight"], eps)
    head = P["model.embed_tokens.weight"] if c["tie_word_embeddings"] else P["lm_head.weight"]
    return h @ head.T


# ---------------------------------------------------------------- self-checks


def hf_permute(w, n_heads, dim1, dim2):
    """convert_llama_weights_to_hf.py permute: Meta (interleaved) rows -> HF (rotate-half) rows."""
    return w.view(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(1, 2).reshape(dim1, dim2)


def hf_unpermute(w, n_heads, dim1, dim2):
    return w.view(n_heads, 2, dim1 // n_heads // 2, dim2).transpose(1, 2).reshape(dim1, dim2)


def check_rope_permute(P, c, ids):
    """HF rotate-half forward == Meta interleaved forward on the un-permuted q/k weights."""
    D, H, Hkv = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
    Dh = c["head_dim"]
    meta = dict(P)
    for name, w in P.items():
        if name.endswith(("q_proj.weight", "k_proj.weight")):
            n = H if "q_proj" in name else Hkv
            meta[name] = hf_unpermute(w, n, n * Dh, D)
            assert torch.equal(hf_permute(meta[name], n, n * Dh, D), w)
            assert not torch.equal(meta[name], w)
    ref = llama_forward(P, c, ids)
    alt = llama_forward(meta, c, ids, rope=rope_interleaved)
    err = (ref - alt).abs().max().item()
    assert err < 1e-12, "rotate-half vs interleaved RoPE differ by %g" % err


def check_primitives():
    x = torch.linspace(-6, 6, 241, dtype=torch.float64)
    assert torch.allclose(gelu_new(x), F.gelu(x, approximate="tanh"), rtol=0, atol=1e-14)
    f = torch.randn(1000, generator=torch.Generator().manual_seed(7), dtype=torch.float32) * 3
    torch_bits = f.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    assert np.array_equal(bf16_from_f32(f.numpy()).bits, torch_bits), "bf16 rounding != torch"


# ---------------------------------------------------------------- goldens


def greedy(forward, eos, gen, candidates=64):
    """Greedy decoding of N_NEW tokens (full forward on the growing sequence, no cache, no eos
    stop). Of `candidates` random prompts, keep those whose every step wins by >= MIN_MARGIN and
    never emits an eos id, and return the one with the most distinct new tokens (tiny random
    models tend to repeat one token, which tests little)."""
    V = forward([0]).shape[-1]
    best = None
    for _ in range(candidates):
        seq = torch.randint(0, V, (N_PROMPT,), generator=gen).tolist()
        prompt, margins = list(seq), []
        for _ in range(N_NEW):
            top = torch.topk(forward(seq)[-1], 2)
            margins.append((top.values[0] - top.values[1]).item())
            seq.append(int(top.indices[0]))
        new = seq[N_PROMPT:]
        if min(margins) < MIN_MARGIN or any(t in eos for t in seq):
            continue
        if best is None or len(set(new)) > len(set(best[1])):
            best = (prompt, new, margins)
    if best is None:
        raise RuntimeError("no prompt with clear greedy margins found")
    return best


def goldens(forward, c, gen_cfg, seed):
    eos = gen_cfg["eos_token_id"]
    eos = set(eos if isinstance(eos, list) else [eos]) | {c["eos_token_id"]}
    gen = torch.Generator().manual_seed(seed + 1000)
    ids = torch.randint(0, c["vocab_size"], (N_INPUT,), generator=gen).tolist()
    prompt, new, margins = greedy(forward, eos, gen)
    return {
        "input_ids": np.array(ids, dtype=np.int32),
        "logits": forward(ids).numpy().astype(np.float32),
        "prompt_ids": np.array(prompt, dtype=np.int32),
        "greedy_ids": np.array(new, dtype=np.int32),
        "greedy_margins": np.array(margins, dtype=np.float32),
    }


# ---------------------------------------------------------------- writing


def write_json(path, obj):
    """As PretrainedConfig.to_json_file: indent 2, sorted keys, trailing newline; atomic."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def np_params(P, bf16):
    """Stored tensors: float32 as is, or rounded to bfloat16 (torch's cast, round to nearest even)."""
    if bf16:
        return {k: BF16(v.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)) for k, v in P.items()}
    return {k: v.numpy() for k, v in P.items()}


def write_model_dir(name, c, gen_cfg, P32, forward, seed, bf16=False):
    d = os.path.join(OUT_DIR, name)
    os.makedirs(d, exist_ok=True)
    cfg = dict(c, torch_dtype="bfloat16" if bf16 else "float32", transformers_version=TRANSFORMERS_VERSION)
    write_json(os.path.join(d, "config.json"), cfg)
    gen_json = dict(gen_cfg, transformers_version=TRANSFORMERS_VERSION)
    write_json(os.path.join(d, "generation_config.json"), gen_json)
    save_file(np_params(P32, bf16), os.path.join(d, "model.safetensors"), metadata=ST_META)
    # the float64 reference starts from exactly the stored values (bf16 -> fp32 -> fp64 is exact)
    stored = {k: (v.to(torch.bfloat16) if bf16 else v).to(torch.float64) for k, v in P32.items()}
    fwd = lambda ids: forward(stored, c, torch.tensor(ids))  # noqa: E731
    g = goldens(fwd, c, gen_cfg, seed)
    meta = {"generator": "scripts/golden/hf_models.py", "compute": "float64, stored F32",
            "weights": "bfloat16 upcast" if bf16 else "float32"}
    save_file(g, os.path.join(d, "golden.safetensors"), metadata=meta)
    f32 = forward({k: v.float() for k, v in stored.items()}, c, torch.tensor(g["input_ids"].tolist()))
    print("%-12s min greedy margin %.4f, |f32 forward - f64| max %.2e, |logits| max %.2f" % (
        name, g["greedy_margins"].min(), np.abs(f32.numpy() - g["logits"]).max(), np.abs(g["logits"]).max()))


def write_sharded(src, name, P, split_prefix):
    """model.safetensors split as save_pretrained(max_shard_size=...) does: state-dict order, a new
    shard at the first `split_prefix` tensor; index total_size = sum of tensor bytes."""
    d = os.path.join(OUT_DIR, name)
    os.makedirs(d, exist_ok=True)
    for f in ("config.json", "generation_config.json", "golden.safetensors"):
        shutil.copyfile(os.path.join(OUT_DIR, src, f), os.path.join(d, f + ".tmp"))
        os.replace(os.path.join(d, f + ".tmp"), os.path.join(d, f))
    names = list(P)
    cut = next(i for i, n in enumerate(names) if n.startswith(split_prefix))
    shards = [names[:cut], names[cut:]]
    weight_map = {}
    for i, part in enumerate(shards):
        fname = "model-%05d-of-%05d.safetensors" % (i + 1, len(shards))
        save_file({n: P[n].numpy() for n in part}, os.path.join(d, fname), metadata=ST_META)
        weight_map.update({n: fname for n in part})
    total = sum(v.numel() * v.element_size() for v in P.values())
    write_json(os.path.join(d, "model.safetensors.index.json"),
               {"metadata": {"total_size": total}, "weight_map": weight_map})


def main():
    check_primitives()
    for arch, c, shapes, fwd in [("gpt2", GPT2, gpt2_shapes, gpt2_forward),
                                 ("llama", LLAMA, llama_shapes, llama_forward),
                                 ("qwen2", QWEN2, llama_shapes, llama_forward),
                                 ("mistral", MISTRAL, llama_shapes, llama_forward)]:
        P32 = draw_params(shapes(c), SEEDS[arch])
        if arch == "llama":
            check_rope_permute({k: v.double() for k, v in P32.items()}, c, torch.arange(N_INPUT))
        write_model_dir(arch, c, GEN[arch], P32, fwd, SEEDS[arch])
        if arch == "llama":
            write_sharded("llama", "llama-sharded", P32, "model.layers.1.")
        if arch == "qwen2":
            write_model_dir("qwen2-bf16", c, GEN[arch], P32, fwd, SEEDS[arch], bf16=True)
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(OUT_DIR) for f in fs)
    print("%s: %d bytes" % (OUT_DIR, total))
    assert total < 1.5e6, "test/fixtures/hf too large"


if __name__ == "__main__":
    main()
