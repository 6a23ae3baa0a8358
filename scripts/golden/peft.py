"""Golden fixtures for LoRA / rsLoRA / DoRA, and PEFT-layout adapters on the HF Llama fixture.

Writes test/fixtures/peft/ (run from the repo root via scripts/golden/run.sh; layout in
scripts/golden/README.md):
  * lora_cases.safetensors: single adapted Linear layers (output, gradients, merged weight);
  * llama-lora/, llama-dora/, llama-rslora/: adapter_config.json + adapter_model.safetensors as
    PEFT's PeftModel.save_pretrained writes them for test/fixtures/hf/llama, plus golden.safetensors.

PEFT is not installed: the math is written in plain torch from the papers and huggingface/peft
v0.20.0 (file + function cited where used): Hu et al. 2021 (LoRA, eq. 3: h = W0 x + (alpha/r) B A x),
Kalajdzievski 2023 (rsLoRA: alpha / sqrt(r)), Liu et al. 2024 (DoRA, eq. 5, with ||W0 + s B A|| per
output row treated as a constant in backward, §4.3). Everything is computed in float64 from the
stored float32 values.
"""

import json
import math
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_models import LLAMA, hf_linear, hf_unpermute, llama_forward, rope_interleaved  # noqa: E402
from safetensors_io import save_file  # noqa: E402

OUT_DIR = os.path.join("test", "fixtures", "peft")
HF_LLAMA = os.path.join("test", "fixtures", "hf", "llama")
# adapter_config.json's base_model_name_or_path: PeftModel.save_pretrained takes the base model's
# name_or_path, i.e. the path given to from_pretrained, which transformers resolves against the
# process's cwd (here the repo root), not against the adapter directory.
BASE_PATH = "test/fixtures/hf/llama"
PEFT_VERSION = "0.20.0"
ST_META = {"format": "pt"}  # peft_model.py save_pretrained: safe_save_file(..., metadata={"format": "pt"})
GENERATOR = "scripts/golden/peft.py"

torch.set_num_threads(1)

# ---------------------------------------------------------------- LoRA math (float64)


def lora_scaling(r, alpha, rslora):
    """tuners/lora/layer.py LoraLayer.update_layer: alpha / sqrt(r) with use_rslora, else alpha / r."""
    return alpha / math.sqrt(r) if rslora else alpha / r


def dora_weight_norm(W, A, B, s):
    """dora.py DoraLinearLayer.get_weight_norm: ||W + s B A|| along dim=1 (one norm per output row);
    forward passes lora_weight.detach() and detaches the norm, so it never gets a gradient."""
    return torch.linalg.norm(W + s * (B @ A), dim=1)


def lora_linear(x, W, b, A, B, s, m=None, detach_norm=True):
    """tuners/lora/layer.py Linear.forward with lora_dropout 0 (nn.Identity):
    result = base_layer(x) + lora_B(lora_A(x)) * scaling. With DoRA, variants.py
    DoraLinearVariant.forward passes result as base_result to dora.py DoraLinearLayer.forward, which
    removes the bias and adds (m/n - 1) * (x W^T) + (m/n) * lora_B(lora_A(x)) * scaling, so the bias
    is not rescaled. detach_norm=False gives the non-detached variant (only for the self-check)."""
    result = x @ W.T + (b if b is not None else 0.0)
    lora = (x @ A.T) @ B.T
    if m is None:
        return result + lora * s
    if detach_norm:
        n = dora_weight_norm(W, A.detach(), B.detach(), s).detach()
    else:
        n = dora_weight_norm(W, A, B, s)
    mag_norm_scale = m / n
    base_result = result - b if b is not None else result
    return result + (mag_norm_scale - 1) * base_result + mag_norm_scale * lora * s


def merged_weight(W, A, B, s, m=None):
    """layer.py Linear.get_delta_weight: s B A; merge adds it to W. DoRA (variants.py
    DoraLinearVariant.merge_safe): (m / ||W + s B A||)[:, None] * (W + s B A), paper eq. 5."""
    w = W + s * (B @ A)
    return w if m is None else (m / dora_weight_norm(W, A, B, s))[:, None] * w


def kaiming_a(r, fan_in, g):
    """layer.py reset_lora_parameters: kaiming_uniform_(lora_A, a=sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in))."""
    bound = 1.0 / math.sqrt(fan_in)
    return (torch.rand(r, fan_in, generator=g) * 2 - 1) * bound


def perturbed_magnitude(W, A, B, s, g, spread):
    """DoraLinearLayer.update_layer initialises m to get_weight_norm(W, B A, s); a trained m differs,
    so it is scaled by (1 + spread N(0, 1)) per row (float32, as stored)."""
    m0 = dora_weight_norm(W.double(), A.double(), B.double(), s)
    return (m0 * (1 + spread * torch.randn(m0.shape, generator=g, dtype=torch.float64))).float()


# ---------------------------------------------------------------- lora_cases.safetensors

IN_F, OUT_F, X_SHAPE = 12, 10, [2, 5, 12]
# r 6 for the rsLoRA cases: alpha/sqrt(6) is irrational and far from alpha/6.
# *_init: B = 0 as PEFT initialises it (and m = ||W|| for DoRA), so the output is the base Linear's.
CASES = [
    {"name": name, "r": r, "lora_alpha": 8, "use_rslora": rs, "use_dora": dora, "lora_B_zero": b_zero}
    for name, r, rs, dora, b_zero in [
        ("lora", 4, False, False, False), ("rslora", 6, True, False, False),
        ("dora", 4, False, True, False), ("dora_rslora", 6, True, True, False),
        ("lora_init", 4, False, False, True), ("dora_init", 4, False, True, True),
    ]
]


def lora_case(case, seed):
    g = torch.Generator().manual_seed(seed)
    r, s = case["r"], lora_scaling(case["r"], case["lora_alpha"], case["use_rslora"])
    f32 = {
        "x": torch.randn(X_SHAPE, generator=g),
        "weight": torch.randn(OUT_F, IN_F, generator=g) * 0.3,
        "bias": torch.randn(OUT_F, generator=g) * 0.1,
        "lora_A": kaiming_a(r, IN_F, g),
        "lora_B": torch.randn(OUT_F, r, generator=g) * 0.3,
        "gout": torch.randn(X_SHAPE[:-1] + [OUT_F], generator=g),
    }
    if case["lora_B_zero"]:
        f32["lora_B"] = torch.zeros(OUT_F, r)
    if case["use_dora"]:
        spread = 0.0 if case["lora_B_zero"] else 0.15
        f32["magnitude"] = perturbed_magnitude(f32["weight"], f32["lora_A"], f32["lora_B"], s, g, spread)
    t = {k: v.double().requires_grad_(k in ("x", "lora_A", "lora_B", "magnitude")) for k, v in f32.items()}
    W, b, A, B, m = t["weight"], t["bias"], t["lora_A"], t["lora_B"], t.get("magnitude")
    out = lora_linear(t["x"], W, b, A, B, s, m)
    wrt = [k for k in ("x", "lora_A", "lora_B", "magnitude") if k in t]
    grads = torch.autograd.grad((out * t["gout"]).sum(), [t[k] for k in wrt])
    with torch.no_grad():
        merged = merged_weight(W, A, B, s, m)
        err = (t["x"] @ merged.T + b - out).abs().max().item()
        assert err < 1e-12, "%s: merged-weight forward differs by %g" % (case["name"], err)
        if case["lora_B_zero"]:  # DoRA: m is ||W|| rounded to float32, so m/n is 1 only to ~1e-7
            err = (out - (t["x"] @ W.T + b)).abs().max().item()
            assert err < 1e-6, "%s: B = 0 must give the base output (%g)" % (case["name"], err)
    if case["use_dora"]:  # the fixture must tell the detached norm (DoRA §4.3) from the plain one
        plain = lora_linear(t["x"], W, b, A, B, s, m, detach_norm=False)
        g_plain = torch.autograd.grad((plain * t["gout"]).sum(), [B])[0]
        gap = (g_plain - grads[wrt.index("lora_B")]).abs().max().item()
        assert gap > 1e-2, "%s: detached vs plain norm gradients too close (%g)" % (case["name"], gap)
    tensors = {"%s.%s" % (case["name"], k): v.numpy() for k, v in f32.items()}
    f64 = {"out": out.detach(), "merged_weight": merged}
    f64.update({"grad." + k: gr for k, gr in zip(wrt, grads)})
    if m is not None:  # n of eq. 5, also what PEFT's DoRA update_layer would initialise m to
        f64["weight_norm"] = dora_weight_norm(W, A, B, s).detach()
    tensors.update({"%s.%s" % (case["name"], k): v.detach().numpy() for k, v in f64.items()})
    meta = dict(case, scaling=s, in_features=IN_F, out_features=OUT_F, x_shape=X_SHAPE, bias=True, grads=wrt)
    return tensors, meta


def write_lora_cases():
    tensors, metas = {}, []
    for i, case in enumerate(CASES):
        t, meta = lora_case(case, 300 + i)
        tensors.update(t)
        metas.append(meta)
    meta = {"generator": GENERATOR, "torch_version": torch.__version__, "cases": json.dumps(metas),
            "compute": "float64 from the stored float32 inputs; out, grad.*, merged_weight, weight_norm "
                       "stored F64"}
    save_file(tensors, os.path.join(OUT_DIR, "lora_cases.safetensors"), metadata=meta)


# ---------------------------------------------------------------- the Llama adapters


def load_safetensors(path):
    """Minimal reader for the F32 / I32 files hf_models.py wrote."""
    with open(path, "rb") as f:
        buf = f.read()
    n = struct.unpack("<Q", buf[:8])[0]
    header = json.loads(buf[8 : 8 + n])
    header.pop("__metadata__", None)
    dtypes = {"F32": "<f4", "I32": "<i4"}
    out = {}
    for name, h in header.items():
        begin, end = h["data_offsets"]
        arr = np.frombuffer(buf[8 + n + begin : 8 + n + end], dtype=dtypes[h["dtype"]])
        out[name] = torch.from_numpy(arr.reshape(h["shape"]).copy())
    return out


ATTN, MLP = ("q_proj", "k_proj", "v_proj", "o_proj"), ("gate_proj", "up_proj", "down_proj")
# target_modules: LoraConfig.__post_init__ makes the list a set and PeftConfig.save_pretrained lists
# it, so the order in adapter_config.json is Python's set order (varies with PYTHONHASHSEED); these
# are the orders PEFT writes under PYTHONHASHSEED=0. Readers must treat the list as a set.
ADAPTERS = [
    {"dir": "llama-lora", "r": 4, "lora_alpha": 8, "use_rslora": False, "use_dora": False, "seed": 201,
     "target_modules": ["k_proj", "v_proj", "o_proj", "q_proj"]},
    {"dir": "llama-dora", "r": 4, "lora_alpha": 8, "use_rslora": False, "use_dora": True, "seed": 202,
     "target_modules": ["k_proj", "v_proj", "o_proj", "q_proj"]},
    {"dir": "llama-rslora", "r": 8, "lora_alpha": 16, "use_rslora": True, "use_dora": False, "seed": 203,
     "target_modules": ["gate_proj", "v_proj", "o_proj", "k_proj", "up_proj", "down_proj", "q_proj"]},
]
B_STD = 0.05  # a "trained" B: large enough that the adapted logits differ clearly from the base


def adapter_config(a):
    """adapter_config.json as PEFT v0.20.0 writes it for LoraConfig(r, lora_alpha, target_modules,
    lora_dropout=0.0, bias="none", task_type="CAUSAL_LM"[, use_dora / use_rslora]): config.py
    PeftConfigMixin.save_pretrained dumps to_dict() = dataclasses.asdict (LoraConfig.to_dict drops
    runtime_config) with indent 2, sorted keys, no trailing newline; peft_model.py save_pretrained
    sets inference_mode True and base_model_name_or_path first. Every other field is its default."""
    return {
        "alora_invocation_tokens": None, "alpha_pattern": {}, "arrow_config": None, "auto_mapping": None,
        "base_model_name_or_path": BASE_PATH, "bias": "none", "corda_config": None,
        "ensure_weight_tying": False, "eva_config": None, "exclude_modules": None, "fan_in_fan_out": False,
        "inference_mode": True, "init_lora_weights": True, "layer_replication": None,
        "layers_pattern": None, "layers_to_transform": None, "loftq_config": {},
        "lora_alpha": a["lora_alpha"], "lora_bias": False, "lora_dropout": 0.0, "lora_ga_config": None,
        "megatron_config": None, "megatron_core": "megatron.core", "modules_to_save": None,
        "monteclora_config": None, "peft_type": "LORA", "peft_version": PEFT_VERSION,
        "qalora_group_size": 16, "r": a["r"], "rank_pattern": {}, "revision": None,
        "target_modules": a["target_modules"], "target_parameters": None, "task_type": "CAUSAL_LM",
        "trainable_token_indices": None, "use_bdlora": None, "use_dora": a["use_dora"], "use_qalora": False,
        "use_rslora": a["use_rslora"], "velora_config": None,
    }


def module_names(c, targets):
    """HF module paths PEFT's target_modules match (a name matches by its last component)."""
    return ["model.layers.%d.%s.%s" % (i, "self_attn" if t in ATTN else "mlp", t)
            for i in range(c["num_hidden_layers"]) for t in ATTN + MLP if t in targets]


def draw_adapter(a, P, c):
    """{module path: {"A", "B"[, "m"]}} in float32, for the HF-layout weights P."""
    g = torch.Generator().manual_seed(a["seed"])
    s = lora_scaling(a["r"], a["lora_alpha"], a["use_rslora"])
    ad = {}
    for name in module_names(c, a["target_modules"]):
        out_f, in_f = P[name + ".weight"].shape
        A = kaiming_a(a["r"], in_f, g)
        B = torch.randn(out_f, a["r"], generator=g) * B_STD
        ad[name] = {"A": A, "B": B}
        if a["use_dora"]:
            ad[name]["m"] = perturbed_magnitude(P[name + ".weight"], A, B, s, g, 0.1)
    return ad


def peft_state_dict(ad):
    """utils/save_and_load.py get_peft_model_state_dict: PeftModel keys are "base_model.model." +
    the module path + lora_A.<adapter>.weight; tuners_utils.py _remove_adapter_name_from_state_dict_key
    drops the adapter name; with DoRA, lora/model.py LoraModel._get_adapter_state_dict first strips
    ".weight" from lora_magnitude_vector.<adapter>.weight, so that key ends in lora_magnitude_vector."""
    sd = {}
    for name, t in ad.items():
        key = "base_model.model." + name
        sd[key + ".lora_A.weight"] = t["A"].numpy()
        sd[key + ".lora_B.weight"] = t["B"].numpy()
        if "m" in t:
            sd[key + ".lora_magnitude_vector"] = t["m"].numpy()
    return sd


def adapted(ad, s):
    """A `linear` for hf_models.llama_forward: lora_linear on the adapted modules, nn.Linear elsewhere."""
    def linear(P, x, p):
        t = ad.get(p)
        if t is None:
            return hf_linear(P, x, p)
        return lora_linear(x, P[p + ".weight"], P.get(p + ".bias"), t["A"], t["B"], s, t.get("m"))
    return linear


def check_merged(P, c, ad, s, ids, ref):
    """Folding each adapter into its weight (merged_weight) gives the same logits."""
    merged = dict(P)
    for name, t in ad.items():
        merged[name + ".weight"] = merged_weight(P[name + ".weight"], t["A"], t["B"], s, t.get("m"))
    err = (llama_forward(merged, c, ids) - ref).abs().max().item()
    assert err < 1e-12, "merged adapter forward differs by %g" % err


def check_rope_layout(P, c, ad, s, ids, ref):
    """The note for loaders: with q/k rows un-permuted to interleaved order (hf_models.py
    hf_unpermute) the rows of lora_B and of the DoRA magnitude of q_proj/k_proj must move the same
    way, lora_A stays; then the interleaved forward equals the HF one. Without it, it does not."""
    Dh, D = c["head_dim"], c["hidden_size"]
    meta_P, meta_ad, stale = dict(P), {}, {}
    for name, w in P.items():
        if name.endswith(("q_proj.weight", "k_proj.weight")):
            meta_P[name] = hf_unpermute(w, w.shape[0] // Dh, w.shape[0], D)
    for name, t in ad.items():
        stale[name] = t
        if not name.endswith(("q_proj", "k_proj")):
            meta_ad[name] = t
            continue
        n = t["B"].shape[0] // Dh
        meta_ad[name] = dict(t, B=hf_unpermute(t["B"], n, n * Dh, t["B"].shape[1]))
        if "m" in t:
            meta_ad[name]["m"] = hf_unpermute(t["m"][:, None], n, n * Dh, 1)[:, 0]
    alt = llama_forward(meta_P, c, ids, rope=rope_interleaved, linear=adapted(meta_ad, s))
    err = (alt - ref).abs().max().item()
    assert err < 1e-12, "interleaved forward with permuted lora_B differs by %g" % err
    wrong = llama_forward(meta_P, c, ids, rope=rope_interleaved, linear=adapted(stale, s))
    assert (wrong - ref).abs().max().item() > 1e-3, "un-permuted lora_B should change the logits"


def write_json_peft(path, obj):
    """config.py PeftConfigMixin.save_pretrained: json.dumps(indent=2, sort_keys=True), no newline."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(obj, indent=2, sort_keys=True))
    os.replace(tmp, path)


def write_adapter(a, P32, c, ids, base_golden):
    d = os.path.join(OUT_DIR, a["dir"])
    os.makedirs(d, exist_ok=True)
    s = lora_scaling(a["r"], a["lora_alpha"], a["use_rslora"])
    ad32 = draw_adapter(a, P32, c)
    write_json_peft(os.path.join(d, "adapter_config.json"), adapter_config(a))
    save_file(peft_state_dict(ad32), os.path.join(d, "adapter_model.safetensors"), metadata=ST_META)

    P = {k: v.double() for k, v in P32.items()}
    ad = {name: {k: v.double() for k, v in t.items()} for name, t in ad32.items()}
    base = llama_forward(P, c, ids)
    assert torch.equal(base.float(), base_golden), "base logits differ from hf/llama/golden.safetensors"
    logits = llama_forward(P, c, ids, linear=adapted(ad, s))
    check_merged(P, c, ad, s, ids, logits)
    check_rope_layout(P, c, ad, s, ids, logits)
    golden = {"input_ids": ids.numpy().astype(np.int32), "logits": logits.numpy().astype(np.float32),
              "base_logits": base.numpy().astype(np.float32)}
    meta = {"generator": GENERATOR, "compute": "float64, stored F32", "base": BASE_PATH, "scaling": repr(s)}
    save_file(golden, os.path.join(d, "golden.safetensors"), metadata=meta)
    P32f = {k: v.float() for k, v in P.items()}
    ad32f = {name: {k: v.float() for k, v in t.items()} for name, t in ad.items()}
    f32 = llama_forward(P32f, c, ids, linear=adapted(ad32f, s)).numpy()
    print("%-13s scaling %.4f, |logits - base| max %.3f, |f32 forward - f64| max %.2e, |logits| max %.2f" % (
        a["dir"], s, (logits - base).abs().max().item(), np.abs(f32 - golden["logits"]).max(),
        np.abs(golden["logits"]).max()))


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    write_lora_cases()
    with open(os.path.join(HF_LLAMA, "config.json")) as f:
        c = json.load(f)
    assert all(c[k] == v for k, v in LLAMA.items() if k != "torch_dtype"), "hf/llama/config.json changed"
    P32 = load_safetensors(os.path.join(HF_LLAMA, "model.safetensors"))
    g = load_safetensors(os.path.join(HF_LLAMA, "golden.safetensors"))
    ids = g["input_ids"].long()
    for a in ADAPTERS:
        write_adapter(a, P32, c, ids, g["logits"])
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(OUT_DIR) for f in fs)
    print("%s: %d bytes" % (OUT_DIR, total))
    assert total < 300_000, "test/fixtures/peft too large"


if __name__ == "__main__":
    main()
