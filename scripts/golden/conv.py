"""Golden fixtures for the image ops (src/ops/conv.ts, src/ops/image.ts), from PyTorch, all float64.

Writes test/fixtures/conv/ops.safetensors and test/fixtures/conv/penalty.safetensors (run from the
repo root via scripts/golden/run.sh).

ops.safetensors: per case, the inputs <case>.<input>, the output <case>.y, a fixed random cotangent
<case>.v and the gradients <case>.d<input> of <v, y>. Metadata "cases": JSON list of
{"name", "op", "inputs": [names], "args"} with op one of conv2d, conv_transpose2d, group_norm,
upsample_nearest2d, upsample_bilinear2d, avg_pool2d (args as torch's keyword names).

penalty.safetensors: the WGAN-GP gradient penalty (Gulrajani et al. 2017, eq. 3)
GP = mean_n (||grad_x D(x)_n||_2 - 1)^2 for small conv critics D, and its gradient with respect to x
and every parameter (torch.autograd.grad(..., create_graph=True), then grad again). Metadata
"cases": JSON list of {"name", "net", "params": [names], "graded": [names with a gradient]};
tensors <case>.x, <case>.<param>, <case>.GP, <case>.dx, <case>.d<param> (graded ones).
"""

import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import save_file  # noqa: E402

OUT_DIR = os.path.join("test", "fixtures", "conv")
D = torch.float64
torch.manual_seed(0)


def rnd(*shape):
    return torch.randn(*shape, dtype=D)


CASES, TENSORS = [], {}


def case(name, op, inputs, fn, args):
    """inputs: list of (name, tensor); fn(*tensors) -> output."""
    ts = [t.clone().requires_grad_(True) for _, t in inputs]
    y = fn(*ts)
    v = rnd(*y.shape)
    grads = torch.autograd.grad((v * y).sum(), ts)
    for (n, _), t, g in zip(inputs, ts, grads):
        TENSORS["%s.%s" % (name, n)] = t.detach().numpy().copy()
        TENSORS["%s.d%s" % (name, n)] = g.numpy().copy()
    TENSORS[name + ".y"] = y.detach().numpy().copy()
    TENSORS[name + ".v"] = v.numpy().copy()
    CASES.append({"name": name, "op": op, "inputs": [n for n, _ in inputs], "args": args})


def conv(name, x, w, b=None, **kw):
    ins = [("x", x), ("w", w)] + ([("b", b)] if b is not None else [])
    case(name, "conv2d", ins, lambda *t: F.conv2d(*t, **kw), kw)


def convt(name, x, w, b=None, **kw):
    ins = [("x", x), ("w", w)] + ([("b", b)] if b is not None else [])
    case(name, "conv_transpose2d", ins, lambda *t: F.conv_transpose2d(*t, **kw), kw)


conv("conv_basic", rnd(2, 3, 7, 6), rnd(4, 3, 3, 3), rnd(4))
conv("conv_stride2_pad1", rnd(2, 3, 9, 8), rnd(5, 3, 3, 2), rnd(5), stride=2, padding=1)
conv("conv_dilation", rnd(1, 2, 10, 9), rnd(3, 2, 3, 3), rnd(3), stride=[1, 2], padding=[2, 1], dilation=2)
conv("conv_groups", rnd(2, 6, 7, 7), rnd(4, 3, 3, 3), rnd(4), stride=2, padding=1, groups=2)
conv("conv_depthwise", rnd(2, 4, 6, 5), rnd(4, 1, 3, 3), None, padding=1, groups=4)
conv("conv_1x1", rnd(2, 5, 4, 4), rnd(3, 5, 1, 1), rnd(3))
convt("convt_basic", rnd(2, 3, 5, 4), rnd(3, 4, 3, 3), rnd(4))
convt("convt_stride2_outpad", rnd(2, 4, 4, 5), rnd(4, 2, 3, 3), rnd(2), stride=2, padding=1, output_padding=1)
# output_padding >= stride is allowed when it is < dilation: the last rows only see the kernel's edge taps
convt("convt_outpad_dilation", rnd(1, 2, 4, 3), rnd(2, 3, 2, 2), rnd(3), dilation=2, output_padding=1)
convt("convt_groups_dilation", rnd(1, 4, 5, 5), rnd(4, 3, 3, 2), None, stride=[2, 1], dilation=2, output_padding=[1, 0], groups=2)

case("group_norm_affine", "group_norm", [("x", rnd(2, 6, 5, 4)), ("w", rnd(6)), ("b", rnd(6))],
     lambda x, w, b: F.group_norm(x, 3, w, b, eps=1e-5), {"num_groups": 3, "eps": 1e-5})
case("group_norm_plain", "group_norm", [("x", rnd(2, 4, 3, 5) * 2 + 1)],
     lambda x: F.group_norm(x, 4, eps=1e-5), {"num_groups": 4, "eps": 1e-5})
for name, shape, kw in [
    ("nearest_x2", (2, 3, 4, 5), {"scale_factor": 2, "mode": "nearest"}),
    ("nearest_x3", (1, 2, 3, 2), {"scale_factor": 3, "mode": "nearest"}),
]:
    case(name, "upsample_nearest2d", [("x", rnd(*shape))], lambda x, kw=kw: F.interpolate(x, **kw), kw)
for name, shape, kw in [
    ("bilinear_x2", (2, 3, 4, 5), {"scale_factor": 2, "mode": "bilinear", "align_corners": False}),
    ("bilinear_x1_5", (1, 2, 5, 4), {"scale_factor": 1.5, "mode": "bilinear", "align_corners": False}),
    ("bilinear_size", (2, 2, 6, 4), {"size": [4, 7], "mode": "bilinear", "align_corners": False}),
    ("bilinear_corners", (1, 3, 4, 3), {"size": [7, 5], "mode": "bilinear", "align_corners": True}),
]:
    case(name, "upsample_bilinear2d", [("x", rnd(*shape))], lambda x, kw=kw: F.interpolate(x, **kw), kw)
case("avg_pool_2", "avg_pool2d", [("x", rnd(2, 3, 6, 7))], lambda x: F.avg_pool2d(x, 2), {"kernel_size": 2})
case("avg_pool_3s2p1", "avg_pool2d", [("x", rnd(2, 2, 7, 6))], lambda x: F.avg_pool2d(x, 3, stride=2, padding=1),
     {"kernel_size": 3, "stride": 2, "padding": 1})

os.makedirs(OUT_DIR, exist_ok=True)
meta = {"generator": "scripts/golden/conv.py", "torch_version": torch.__version__}
save_file(TENSORS, os.path.join(OUT_DIR, "ops.safetensors"), dict(meta, cases=json.dumps(CASES)))
print("wrote ops.safetensors (%d cases, %d tensors)" % (len(CASES), len(TENSORS)))


# --- second order: the WGAN-GP gradient penalty through conv critics --------------------------------
def critic(x, w1, b1, gw, gb, w2, b2):
    """conv2d -> group norm -> silu -> avg pool -> strided conv -> sum per sample."""
    h = F.conv2d(x, w1, b1, padding=1)
    h = F.silu(F.group_norm(h, 3, gw, gb, eps=1e-5))
    h = F.avg_pool2d(h, 2)
    return F.conv2d(h, w2, b2, stride=2, padding=1).sum(dim=(1, 2, 3))


def critic_up(x, wt, bt, w2):
    """conv_transpose2d (stride 2) -> silu -> bilinear down -> nearest up -> group norm -> conv -> sum."""
    h = F.silu(F.conv_transpose2d(x, wt, bt, stride=2, padding=1, output_padding=1))
    h = F.interpolate(h, size=[5, 5], mode="bilinear", align_corners=False)
    h = F.group_norm(F.interpolate(h, scale_factor=2, mode="nearest"), 1, eps=1e-5)
    return F.conv2d(h, w2, groups=3).sum(dim=(1, 2, 3))


PCASES, PTENSORS = [], {}


def penalty_case(name, net, fn, x, params):
    x = x.clone().requires_grad_(True)
    ps = [p.clone().requires_grad_(True) for _, p in params]
    (gx,) = torch.autograd.grad(fn(x, *ps).sum(), x, create_graph=True)
    gp = ((gx.reshape(gx.shape[0], -1).norm(2, dim=1) - 1) ** 2).mean()
    grads = torch.autograd.grad(gp, [x] + ps, allow_unused=True)
    PTENSORS[name + ".x"] = x.detach().numpy().copy()
    PTENSORS[name + ".GP"] = gp.detach().reshape(()).numpy().copy()
    PTENSORS[name + ".dx"] = grads[0].numpy().copy()
    for (pn, _), p, g in zip(params, ps, grads[1:]):
        PTENSORS["%s.%s" % (name, pn)] = p.detach().numpy().copy()
        if g is not None:  # grad_x D does not depend on the last bias at all
            PTENSORS["%s.d%s" % (name, pn)] = g.numpy().copy()
    graded = [n for (n, _), g in zip(params, grads[1:]) if g is not None]
    PCASES.append({"name": name, "net": net, "params": [n for n, _ in params], "graded": graded})


penalty_case("gp_critic", "critic", critic, rnd(3, 2, 8, 8), [
    ("w1", rnd(6, 2, 3, 3) * 0.4), ("b1", rnd(6) * 0.1), ("gw", 1 + 0.2 * rnd(6)), ("gb", 0.2 * rnd(6)),
    ("w2", rnd(4, 6, 3, 3) * 0.3), ("b2", rnd(4) * 0.1)])
penalty_case("gp_critic_up", "critic_up", critic_up, rnd(2, 2, 4, 4), [
    ("wt", rnd(2, 3, 3, 3) * 0.5), ("bt", rnd(3) * 0.1), ("w2", rnd(6, 1, 3, 3) * 0.3)])
save_file(PTENSORS, os.path.join(OUT_DIR, "penalty.safetensors"), dict(meta, cases=json.dumps(PCASES)))
print("wrote penalty.safetensors (%d cases, %d tensors)" % (len(PCASES), len(PTENSORS)))
