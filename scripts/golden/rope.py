"""Golden fixtures for RoPE scaling schemes and ReRoPE / Leaky ReRoPE attention.

Writes (run from the repo root via scripts/golden/run.sh):
  test/fixtures/rope/rope.json           inv_freq + attention_factor per scheme, and log-n query scales
  test/fixtures/rope/rerope.safetensors  naive ReRoPE / Leaky ReRoPE attention: outputs and gradients

Formulas are written here from their definitions, in float64 (transformers is not installed):
  HF src/transformers/modeling_rope_utils.py: _compute_default_rope_parameters, _compute_linear_scaling_rope_parameters,
    _compute_dynamic_ntk_parameters, _compute_yarn_parameters (get_mscale, find_correction_dim/range, truncate,
    linear_ramp_factor), _compute_llama3_parameters; "ntk" = static NTK-aware b * s^(d/(d-2)) (bloc97, Su
    https://kexue.fm/archives/9675).
  mixed_base: Su https://kexue.fm/archives/9706, lambda_1..lambda_m = exp(a m^b), a (d/2)^b = ln s.
  logn: Su https://kexue.fm/archives/9706 eq. plogn: q_n *= max(1, log_train_len(n)), n = position + 1
    (github.com/bojone/rerope ntk_patch.py); "unclipped" = pretraining scale log_train_len(n) (kexue.fm/archives/8823).
  ReRoPE / Leaky ReRoPE: Su https://kexue.fm/archives/9708, relative position rr = r if r < w else w + (r - w) * leak.
See scripts/golden/README.md ("RoPE scaling and ReRoPE") for the file layouts.
"""

import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import save_file  # noqa: E402

OUT_DIR = os.path.join("test", "fixtures", "rope")
JSON_PATH = os.path.join(OUT_DIR, "rope.json")
ST_PATH = os.path.join(OUT_DIR, "rerope.safetensors")


# ---------------------------------------------------------------- inv_freq schemes (float64, Python floats)

def default_inv(d, base):
    return [base ** (-2.0 * j / d) for j in range(d // 2)]


def linear_inv(d, base, factor):
    return [f / factor for f in default_inv(d, base)]


def dynamic_inv(d, base, factor, max_pos, seq_len):
    # HF: n = max(seq_len, max_position_embeddings); base' = base * (s n / M - (s - 1))^(d/(d-2))
    n = max(seq_len, max_pos)
    b2 = base * ((factor * n / max_pos) - (factor - 1)) ** (d / (d - 2))
    return default_inv(d, b2)


def ntk_inv(d, base, factor):
    return default_inv(d, base * factor ** (d / (d - 2)))


def get_mscale(scale, mscale=1.0):
    return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0


def yarn(d, base, p):
    factor, orig = p["factor"], p["original_max_position_embeddings"]
    af = p.get("attention_factor")
    if af is None:
        ms, msa = p.get("mscale"), p.get("mscale_all_dim")
        af = get_mscale(factor, ms) / get_mscale(factor, msa) if (ms and msa) else get_mscale(factor)
    beta_fast = p.get("beta_fast") or 32
    beta_slow = p.get("beta_slow") or 1

    def corr(rot):  # pair index whose wavelength 2 pi base^(2j/d) equals orig / rot
        return d * math.log(orig / (rot * 2 * math.pi)) / (2 * math.log(base))

    low, high = corr(beta_fast), corr(beta_slow)
    if p.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, d - 1)
    if low == high:
        high += 0.001
    inv0 = default_inv(d, base)
    out = []
    for j, f in enumerate(inv0):
        ramp = min(max((j - low) / (high - low), 0.0), 1.0)  # 0: extrapolate (keep f), 1: interpolate (f / s)
        out.append((f / factor) * ramp + f * (1.0 - ramp))
    return out, af, (low, high)


def llama3_inv(d, base, p):
    factor, lo, hi, orig = p["factor"], p["low_freq_factor"], p["high_freq_factor"], p["original_max_position_embeddings"]
    lo_wl, hi_wl = orig / lo, orig / hi
    out, bands = [], []
    for f in default_inv(d, base):
        wl = 2 * math.pi / f
        if wl < hi_wl:
            band, g = "high", f
        elif wl > lo_wl:
            band, g = "low", f / factor
        else:
            t = (orig / wl - lo) / (hi - lo)
            band, g = "mid", (1 - t) * f / factor + t * f
        out.append(g)
        bands.append(band)
    return out, bands


def mixed_base_inv(d, base, factor, b):
    a = math.log(factor) / (d / 2) ** b
    return [f * math.exp(-a * (j + 1) ** b) for j, f in enumerate(default_inv(d, base))]


def logn_scale(n, train_len, clip=True):
    s = math.log(n) / math.log(train_len)
    return max(1.0, s) if clip else s


# ---------------------------------------------------------------- float32 HF-style cross-check

def llama3_hf_f32_gap(d, base, ours, p):
    """Recompute llama3 as HF does (torch float32, its band tests) and return the max relative gap to ours: a pair
    whose wavelength sat on a band edge would land in another band in float32 and show up here."""
    inv0 = 1.0 / (torch.tensor(base, dtype=torch.float32) ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
    factor, lo, hi, orig = p["factor"], p["low_freq_factor"], p["high_freq_factor"], p["original_max_position_embeddings"]
    wl = 2 * math.pi / inv0
    r = torch.where(wl > orig / lo, inv0 / factor, inv0)
    t = (orig / wl - lo) / (hi - lo)
    mid = ~(wl < orig / hi) * ~(wl > orig / lo)
    hf = torch.where(mid, (1 - t) * r / factor + t * r, r).double()
    o = torch.tensor(ours, dtype=torch.float64)
    return float(((hf - o).abs() / o).max())


# ---------------------------------------------------------------- rope.json cases

def build_rope_cases():
    cases = []

    def add(name, typ, params, d, base, inv, af=1.0, **extra):
        c = {"name": name, "type": typ, "params": params, "d": d, "base": base}
        c.update(extra)
        c["inv_freq"] = inv
        c["attention_factor"] = af
        cases.append(c)

    for d in (8, 64, 128):
        for base in (10000.0, 500000.0):
            add("default_d%d_b%d" % (d, base), "default", {"rope_type": "default"}, d, base, default_inv(d, base))
    for factor, d, base in ((2.0, 64, 10000.0), (4.5, 128, 500000.0)):
        add("linear_f%s_d%d" % (factor, d), "linear", {"rope_type": "linear", "factor": factor}, d, base,
            linear_inv(d, base, factor))
    for factor in (2.0, 8.0):
        for seq_len in (256, 512, 1024, 4096):
            p = {"rope_type": "dynamic", "factor": factor, "original_max_position_embeddings": 512}
            add("dynamic_f%d_n%d" % (factor, seq_len), "dynamic", p, 64, 10000.0,
                dynamic_inv(64, 10000.0, factor, 512, seq_len), seq_len=seq_len, max_position_embeddings=512)
    for factor in (2.0, 8.0):
        add("ntk_f%d" % factor, "ntk", {"rope_type": "ntk", "factor": factor}, 64, 10000.0,
            ntk_inv(64, 10000.0, factor))

    yarn_specs = [("yarn_f%d_o%d" % (f, o), 64, 10000.0, {"factor": float(f), "original_max_position_embeddings": o})
                  for f in (4, 8, 16) for o in (512, 4096)]
    yarn_specs += [
        ("yarn_f8_o512_af", 64, 10000.0, {"factor": 8.0, "original_max_position_embeddings": 512, "attention_factor": 1.25}),
        ("yarn_deepseek_f40", 64, 10000.0, {"factor": 40.0, "original_max_position_embeddings": 4096,
                                            "mscale": 1.0, "mscale_all_dim": 0.8}),
        ("yarn_f8_o512_notrunc", 64, 10000.0, {"factor": 8.0, "original_max_position_embeddings": 512, "truncate": False}),
        ("yarn_f16_o4096_notrunc", 64, 10000.0, {"factor": 16.0, "original_max_position_embeddings": 4096, "truncate": False}),
        ("yarn_f4_o4096_betas_d128", 128, 500000.0, {"factor": 4.0, "original_max_position_embeddings": 4096,
                                                     "beta_fast": 16.0, "beta_slow": 2.0}),
    ]
    for name, d, base, p in yarn_specs:
        p = dict({"rope_type": "yarn"}, **p)
        inv, af, (low, high) = yarn(d, base, p)
        # max_position_embeddings = factor * original: HF 4.4x / 4.5x / 5.x then all use the same factor and length
        add(name, "yarn", p, d, base, inv, af, max_position_embeddings=int(p["factor"] * p["original_max_position_embeddings"]),
            ramp_low=low, ramp_high=high)

    for name, d, base, orig in (("llama3_d128", 128, 500000.0, 8192), ("llama3_d8_o512", 8, 500000.0, 512)):
        p = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
             "original_max_position_embeddings": orig}
        inv, bands = llama3_inv(d, base, p)
        assert {"high", "mid", "low"} <= set(bands), (name, bands)
        gap = llama3_hf_f32_gap(d, base, inv, p)
        assert gap < 1e-6, (name, gap)  # HF's float32 band decisions agree with ours (no pair on a boundary)
        add(name, "llama3", p, d, base, inv, bands=bands)

    for d, factor, b in ((64, 8.0, 0.625), (128, 12.0, 0.75)):
        inv = mixed_base_inv(d, 10000.0, factor, b)
        assert abs(inv[-1] - default_inv(d, 10000.0)[-1] / factor) < 1e-18  # last pair divided by exactly s
        add("mixed_base_d%d_f%d" % (d, factor), "mixed_base", {"rope_type": "mixed_base", "factor": factor, "mixed_b": b},
            d, 10000.0, inv)

    logn = []
    for n in (256, 512, 1024, 4096):
        logn.append({"name": "logn_n%d" % n, "train_len": 512, "n": n,
                     "q_scale": logn_scale(n, 512), "q_scale_unclipped": logn_scale(n, 512, clip=False)})
    per_pos = [logn_scale(pos + 1, 8) for pos in range(20)]
    logn.append({"name": "logn_positions_train8", "train_len": 8, "positions": list(range(20)), "q_scale": per_pos})
    return cases, logn


# ---------------------------------------------------------------- ReRoPE attention (naive, float64)

def rot_pairs(a, b, ang):
    """Interleaved-pair RoPE rotation by angle ang of (a, b) = (x[2t], x[2t+1])."""
    c, s = torch.cos(ang), torch.sin(ang)
    return a * c - b * s, a * s + b * c


def rr_matrix(T, w, leak):
    r = torch.arange(T, dtype=torch.float64)[:, None] - torch.arange(T, dtype=torch.float64)[None, :]
    return torch.where(r < w, r, w + (r - w) * leak)


def rerope_naive(q, k, v, w, leak, base):
    """q [B,T,H,d], k/v [B,T,Hkv,d] -> out [B,T,H,d]; score_ij = <Rot(q_i, rr_ij), k_j> / sqrt(d), causal softmax."""
    B, T, H, d = q.shape
    g = H // k.shape[2]
    inv = base ** (-2.0 * torch.arange(d // 2, dtype=torch.float64) / d)
    ang = rr_matrix(T, w, leak)[:, :, None] * inv  # [T(i), T(j), d/2]
    kk = k.repeat_interleave(g, dim=2).permute(0, 2, 1, 3)  # [B,H,T,d], head h reads kv head h // g
    vv = v.repeat_interleave(g, dim=2).permute(0, 2, 1, 3)
    qq = q.permute(0, 2, 1, 3)
    qa, qb = qq[..., 0::2][:, :, :, None, :], qq[..., 1::2][:, :, :, None, :]  # [B,H,T,1,d/2]
    ra, rb = rot_pairs(qa, qb, ang)  # [B,H,T,T,d/2]: q_i rotated by rr_ij
    scores = (ra * kk[..., 0::2][:, :, None] + rb * kk[..., 1::2][:, :, None]).sum(-1) / math.sqrt(d)
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    p = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    return (p @ vv).permute(0, 2, 1, 3)


def rope_rotate(x, pos, base):
    """x [B,H,T,d] rotated by absolute positions pos [T] (interleaved pairs)."""
    d = x.shape[-1]
    inv = base ** (-2.0 * torch.arange(d // 2, dtype=torch.float64) / d)
    a, b = rot_pairs(x[..., 0::2], x[..., 1::2], pos[:, None] * inv)
    return torch.stack([a, b], dim=-1).reshape(x.shape)


def rerope_two_matrix(q, k, w, leak, base):
    """Su's implementation (kexue.fm/archives/9708): standard-RoPE scores inside the window, shifted ones outside."""
    B, T, H, d = q.shape
    g = H // k.shape[2]
    qq = q.permute(0, 2, 1, 3)
    kk = k.repeat_interleave(g, dim=2).permute(0, 2, 1, 3)
    pos = torch.arange(T, dtype=torch.float64)
    a1 = rope_rotate(qq, pos, base) @ rope_rotate(kk, pos, base).transpose(-1, -2)
    a2 = rope_rotate(qq, (pos - w) * leak + w, base) @ rope_rotate(kk, pos * leak, base).transpose(-1, -2)
    inside = (pos[:, None] - pos[None, :]) < w
    return torch.where(inside, a1, a2) / math.sqrt(d)


def rerope_cases(gen):
    base = 10000.0
    tensors, meta = {}, []

    def draw(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float32)

    def run(prefix, inputs, name, w, leak, out_dtype):
        q, k, v, dout = (inputs[n].double().requires_grad_(n != "dout") for n in ("q", "k", "v", "dout"))
        out = rerope_naive(q, k, v, w, leak, base)
        # independent check of the naive form against Su's two-matrix construction (pre-softmax scores)
        B, T, H, d = q.shape
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        two = torch.softmax(rerope_two_matrix(q, k, w, leak, base).masked_fill(~mask, float("-inf")), -1)
        vv = v.repeat_interleave(H // k.shape[2], dim=2).permute(0, 2, 1, 3)
        assert torch.allclose((two @ vv).permute(0, 2, 1, 3), out, atol=1e-12, rtol=0), name
        (out * dout).sum().backward()
        for key, t in (("out", out), ("dq", q.grad), ("dk", k.grad), ("dv", v.grad)):
            tensors["%s.%s" % (name, key)] = t.detach().numpy().astype(out_dtype)
        meta.append({"name": name, "inputs": prefix, "B": B, "T": T, "H": H, "Hkv": k.shape[2], "d": d,
                     "w": w, "leak": leak, "base": base, "scale": 1.0 / math.sqrt(d),
                     "outputs_dtype": "F64" if out_dtype == np.float64 else "F32"})

    def make_inputs(prefix, B, T, H, Hkv, d):
        inputs = {"q": draw(B, T, H, d), "k": draw(B, T, Hkv, d), "v": draw(B, T, Hkv, d), "dout": draw(B, T, H, d)}
        for n, t in inputs.items():
            tensors["%s.%s" % (prefix, n)] = t.numpy()
        return inputs

    small = make_inputs("in37", 2, 37, 4, 2, 16)
    for w in (5, 16):
        for leak, tag in ((0.0, "0"), (0.25, "0p25"), (2.0, "2")):
            run("in37", small, "t37_w%d_leak%s" % (w, tag), w, leak, np.float64)
    # w >= T: plain RoPE attention (rr = i - j everywhere), a sanity anchor for the convention
    run("in37", small, "t37_w37_plain", 37, 0.0, np.float64)
    big = make_inputs("in200", 1, 200, 4, 2, 16)
    run("in200", big, "t200_w64_leak0", 64, 0.0, np.float32)
    return tensors, meta


def check_plain_rope(tensors):
    """The w >= T case must equal ordinary RoPE attention computed from absolute rotations."""
    q, k, v = (torch.from_numpy(tensors["in37." + n]).double() for n in ("q", "k", "v"))
    B, T, H, d = q.shape
    pos = torch.arange(T, dtype=torch.float64)
    qq = rope_rotate(q.permute(0, 2, 1, 3), pos, 10000.0)
    kk = rope_rotate(k.repeat_interleave(2, dim=2).permute(0, 2, 1, 3), pos, 10000.0)
    s = (qq @ kk.transpose(-1, -2) / math.sqrt(d)).masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    ref = (torch.softmax(s, -1) @ v.repeat_interleave(2, dim=2).permute(0, 2, 1, 3)).permute(0, 2, 1, 3)
    assert np.allclose(ref.numpy(), tensors["t37_w37_plain.out"], atol=1e-12, rtol=0)


def main():
    torch.manual_seed(0)
    cases, logn = build_rope_cases()
    doc = {
        "generator": "scripts/golden/rope.py",
        "compute": "float64",
        "conventions": "inv_freq[j] for pair j = 0..d/2-1 (pair (2j, 2j+1) interleaved, or (j, j + d/2) rotate-half); "
                       "attention_factor multiplies cos and sin as in HF (logits scale attention_factor^2); "
                       "logn q_scale multiplies queries once, n = position + 1",
        "cases": cases,
        "logn": logn,
    }
    os.makedirs(OUT_DIR, exist_ok=True)
    tmp = JSON_PATH + ".tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(doc, indent=1) + "\n")
    os.replace(tmp, JSON_PATH)

    tensors, meta = rerope_cases(torch.Generator().manual_seed(1234))
    check_plain_rope(tensors)
    save_file(tensors, ST_PATH, metadata={
        "generator": "scripts/golden/rope.py",
        "torch_version": torch.__version__,
        "compute": "float64 from float32 inputs",
        "convention": "score_ij = <Rot(q_i, rr_ij), k_j> * scale, Rot(x, p) = standard interleaved RoPE at position p "
                      "(inv_freq[t] = base^(-2t/d)), rr_ij = r if r < w else w + (r - w) * leak, r = i - j; "
                      "causal softmax over j <= i; query head h uses kv head h // (H / Hkv); grads of sum(out * dout)",
        "cases": json.dumps(meta),
    })
    print("wrote %s (%d cases, %d logn) and %s (%d cases, %d bytes)" % (
        JSON_PATH, len(cases), len(logn), ST_PATH, len(meta), os.path.getsize(ST_PATH)))


if __name__ == "__main__":
    main()
