"""Golden fixtures for the selective scan and the Mamba block (src/nn/ssm/), from PyTorch autograd.

Writes test/fixtures/ssm.safetensors (run from the repo root). The reference is the sequential
recurrence of mamba_ssm's selective_scan_ref (Gu & Dao 2023, Algorithm 2), written step by step:
  h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t,   y_t = <C_t, h_t> + D u_t,   h_{-1} = 0
and differentiated by torch autograd (no hand-written backward). Inputs are drawn in float32 (delta =
softplus(randn - 1) > 0, A = -exp(0.5 randn) < 0, B, C, D, u ~ randn); the reference runs in float64.

For every case:
  <case>.u, .delta, .A, .B, .C, .D   inputs, F32 (u, delta [b, d, L]; A [d, n]; B, C [b, n, L]; D [d])
  <case>.gy                          upstream gradient of y, F32
  <case>.y                           output, F64
  <case>.last                        state after the last step [b, d, n], F64
  <case>.grad_<name>                 d<y, gy>/d<name> for every input, F64
Metadata "cases": JSON list of {"name", "b", "d", "n", "L"}.

The Mamba block (mamba_ssm's modules/mamba_simple.py Mamba, its reference path without fused kernels:
in_proj, causal depthwise conv1d, SiLU, x_proj, dt_proj + softplus, the scan above, y * silu(z),
out_proj), under "mamba.": its weights under mamba_simple's names (mamba.w.<name>, F32), the input
mamba.u and upstream gradient mamba.gy (F32), the output mamba.y and d<y, gy>/d of the input
(mamba.grad_u) and of every weight (mamba.grad.<name>), F64. Metadata "mamba": its sizes.
"""

import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import save_file  # noqa: E402

OUT_PATH = os.path.join("test", "fixtures", "ssm.safetensors")
NAMES = ["u", "delta", "A", "B", "C", "D"]

torch.manual_seed(0)


def scan_ref(u, delta, A, B, C, D):
    b, d, L = u.shape
    h = u.new_zeros(b, d, A.shape[1])
    ys = []
    for t in range(L):
        dA = torch.exp(delta[:, :, t, None] * A)  # [b, d, n]
        dBu = delta[:, :, t, None] * B[:, None, :, t] * u[:, :, t, None]
        h = dA * h + dBu
        ys.append((h * C[:, None, :, t]).sum(-1) + D * u[:, :, t])
    return torch.stack(ys, dim=-1), h


def case(name, b, d, n, L, tensors, cases):
    x = {
        "u": torch.randn(b, d, L),
        "delta": F.softplus(torch.randn(b, d, L) - 1),
        "A": -torch.exp(0.5 * torch.randn(d, n)),
        "B": torch.randn(b, n, L),
        "C": torch.randn(b, n, L),
        "D": torch.randn(d),
    }
    gy = torch.randn(b, d, L)
    x64 = {k: v.double().requires_grad_() for k, v in x.items()}
    y, last = scan_ref(*[x64[k] for k in NAMES])
    (y * gy.double()).sum().backward()
    for k in NAMES:
        tensors[f"{name}.{k}"] = x[k].numpy()
        tensors[f"{name}.grad_{k}"] = x64[k].grad.numpy()
    tensors[f"{name}.gy"] = gy.numpy()
    tensors[f"{name}.y"] = y.detach().numpy()
    tensors[f"{name}.last"] = last.detach().numpy()
    cases.append({"name": name, "b": b, "d": d, "n": n, "L": L})


MAMBA = {"d_model": 8, "d_state": 4, "d_conv": 3, "expand": 2, "dt_rank": 1, "b": 2, "L": 11}


def mamba_ref(u, w, cfg):
    E, K, L = cfg["expand"] * cfg["d_model"], cfg["d_conv"], u.shape[1]
    x, z = (u @ w["in_proj.weight"].T).chunk(2, dim=-1)
    x = F.conv1d(x.transpose(1, 2), w["conv1d.weight"], w["conv1d.bias"], padding=K - 1, groups=E)[..., :L]
    x = F.silu(x)  # [b, E, L]
    dt, B, C = (x.transpose(1, 2) @ w["x_proj.weight"].T).split([cfg["dt_rank"], cfg["d_state"], cfg["d_state"]], dim=-1)
    delta = F.softplus(dt @ w["dt_proj.weight"].T + w["dt_proj.bias"]).transpose(1, 2)
    y, _ = scan_ref(x, delta, -torch.exp(w["A_log"]), B.transpose(1, 2), C.transpose(1, 2), w["D"])
    return (y.transpose(1, 2) * F.silu(z)) @ w["out_proj.weight"].T


def mamba_case(tensors):
    c = MAMBA
    E, N, R = c["expand"] * c["d_model"], c["d_state"], c["dt_rank"]
    w = {
        "in_proj.weight": torch.randn(2 * E, c["d_model"]) * 0.3,
        "conv1d.weight": torch.randn(E, 1, c["d_conv"]) * 0.5,
        "conv1d.bias": torch.randn(E) * 0.1,
        "x_proj.weight": torch.randn(R + 2 * N, E) * 0.3,
        "dt_proj.weight": torch.randn(E, R) * 0.5,
        "dt_proj.bias": torch.randn(E) * 0.5 - 1,
        "A_log": torch.log(torch.arange(1, N + 1, dtype=torch.float32)).repeat(E, 1) + 0.1 * torch.randn(E, N),
        "D": torch.randn(E),
        "out_proj.weight": torch.randn(c["d_model"], E) * 0.3,
    }
    u, gy = torch.randn(c["b"], c["L"], c["d_model"]), torch.randn(c["b"], c["L"], c["d_model"])
    w64 = {k: v.double().requires_grad_() for k, v in w.items()}
    u64 = u.double().requires_grad_()
    y = mamba_ref(u64, w64, c)
    (y * gy.double()).sum().backward()
    for k in w:
        tensors[f"mamba.w.{k}"] = w[k].numpy()
        tensors[f"mamba.grad.{k}"] = w64[k].grad.numpy()
    tensors["mamba.u"], tensors["mamba.gy"] = u.numpy(), gy.numpy()
    tensors["mamba.y"], tensors["mamba.grad_u"] = y.detach().numpy(), u64.grad.numpy()


def main():
    tensors, cases = {}, []
    case("small", 2, 3, 4, 37, tensors, cases)
    case("one_step", 1, 2, 3, 1, tensors, cases)
    case("wide_state", 1, 4, 16, 70, tensors, cases)
    mamba_case(tensors)
    # drawn last so the cases above keep their values: more channels than one native backward group (8), n not a multiple of the vector width
    case("groups", 2, 11, 5, 100, tensors, cases)
    save_file(tensors, OUT_PATH, {"cases": json.dumps(cases), "mamba": json.dumps(MAMBA)})
    print(f"wrote {OUT_PATH}: {len(cases)} cases")


if __name__ == "__main__":
    main()
