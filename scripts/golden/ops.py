"""Golden fixtures for every differentiable op of the engine, from PyTorch.

Writes test/fixtures/ops.safetensors (run from the repo root via scripts/golden/run.sh).

For every case:
  <case>.in<i>    inputs: F32 (float), I32 (ids / targets / indices), BOOL (masks)
  <case>.out<j>   reference outputs, F64, computed in float64 from the float32 inputs
  <case>.gout<j>  random upstream gradient for output j, F32 (shape [] for scalar outputs)
  <case>.grad<i>  d(sum_j <out_j, gout_j>)/d(in_i) for every float input i, F64
Metadata "cases": JSON list of {"name", "op", "args", "inputs", "outputs"}; "op" is the PyTorch
function name and "args" its keyword arguments in PyTorch naming. A reduction without "dim" in its
args reduces over all dims.
"""

import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import save_file  # noqa: E402

OUT_PATH = os.path.join("test", "fixtures", "ops.safetensors")

torch.manual_seed(0)

# ---------------------------------------------------------------- input generators (float32)


def rn(*shape, scale=1.0):
    return torch.randn(*shape, dtype=torch.float32) * scale


def pos(*shape):
    """Uniform in [0.5, 2]."""
    return torch.rand(*shape, dtype=torch.float32) * 1.5 + 0.5


def away(*shape, points=(0.0,), margin=0.05, scale=1.0):
    """randn, redrawn wherever a value is within `margin` of one of `points` (kinks)."""
    x = rn(*shape, scale=scale)
    while True:
        bad = torch.zeros(x.shape, dtype=torch.bool)
        for p in points:
            bad |= (x - p).abs() < margin
        if not bad.any():
            return x
        x = torch.where(bad, rn(*shape, scale=scale), x)


def magnitude(*shape, lo=0.5, hi=2.0):
    """Random sign times a magnitude uniform in [lo, hi]."""
    sign = torch.where(torch.rand(*shape) < 0.5, -1.0, 1.0)
    return sign * (torch.rand(*shape) * (hi - lo) + lo)


def distinct(*shape):
    """All values pairwise >= 0.08 apart (no ties; finite differences are valid for max/min)."""
    n = 1
    for d in shape:
        n *= d
    perm = torch.randperm(n).to(torch.float32)
    # grid step 0.1, jitter +-0.01, offset 0.025 so that no value is within 0.015 of 0
    x = (perm - (n - 1) / 2) * 0.1 + 0.025 + (torch.rand(n) - 0.5) * 0.02
    return x.reshape(*shape)


def ids(shape, high):
    return torch.randint(0, high, shape, dtype=torch.int32)


# ---------------------------------------------------------------- case machinery

CASES = []
TENSORS = {}

_DT = {torch.float32: "F32", torch.int32: "I32", torch.bool: "BOOL"}


def case(name, op, args, inputs, fn):
    """fn receives the float64 / int64 / bool versions of `inputs` and returns a tensor or a tuple."""
    assert all(c["name"] != name for c in CASES), name
    kinds = []
    ref = []
    for i, x in enumerate(inputs):
        kind = _DT[x.dtype]
        kinds.append(kind)
        TENSORS["%s.in%d" % (name, i)] = x.numpy()
        if kind == "F32":
            ref.append(x.to(torch.float64).requires_grad_(True))
        elif kind == "I32":
            ref.append(x.to(torch.int64))
        else:
            ref.append(x.clone())

    outs = fn(*ref)
    if isinstance(outs, torch.Tensor):
        outs = (outs,)
    outs = list(outs)
    gouts = []
    for j, o in enumerate(outs):
        assert o.dtype == torch.float64, (name, o.dtype)
        TENSORS["%s.out%d" % (name, j)] = o.detach().numpy().copy()
        g = torch.randn(o.shape, dtype=torch.float32)
        TENSORS["%s.gout%d" % (name, j)] = g.numpy()
        gouts.append(g.to(torch.float64))
    torch.autograd.backward(outs, gouts)
    for i, (kind, r) in enumerate(zip(kinds, ref)):
        if kind == "F32":
            assert r.grad is not None, (name, i)
            TENSORS["%s.grad%d" % (name, i)] = r.grad.detach().numpy().copy()

    CASES.append({"name": name, "op": op, "args": args, "inputs": kinds, "outputs": len(outs)})


# ---------------------------------------------------------------- unary

case("neg", "neg", {}, [rn(2, 3, 4)], torch.neg)
case("exp", "exp", {}, [rn(2, 3, 4)], torch.exp)
case("log", "log", {}, [pos(2, 3, 4)], torch.log)
case("sqrt", "sqrt", {}, [pos(2, 3, 4)], torch.sqrt)
case("rsqrt", "rsqrt", {}, [pos(2, 3, 4)], torch.rsqrt)
case("abs", "abs", {}, [away(2, 3, 4)], torch.abs)
case("tanh", "tanh", {}, [rn(2, 3, 4)], torch.tanh)
case("sigmoid", "sigmoid", {}, [rn(2, 3, 4, scale=2.0)], torch.sigmoid)
case("relu", "relu", {}, [away(2, 3, 4)], torch.relu)
case("gelu", "gelu", {"approximate": "none"}, [rn(2, 3, 4, scale=2.0)],
     lambda x: F.gelu(x, approximate="none"))
case("gelu_tanh", "gelu", {"approximate": "tanh"}, [rn(2, 3, 4, scale=2.0)],
     lambda x: F.gelu(x, approximate="tanh"))
case("silu", "silu", {}, [rn(2, 3, 4, scale=2.0)], F.silu)
case("softplus", "softplus", {"beta": 1.0, "threshold": 20.0}, [rn(2, 3, 4, scale=2.0)],
     lambda x: F.softplus(x, beta=1.0, threshold=20.0))
case("softplus_beta2", "softplus", {"beta": 2.0, "threshold": 20.0}, [rn(2, 3, 4, scale=2.0)],
     lambda x: F.softplus(x, beta=2.0, threshold=20.0))
case("elu", "elu", {"alpha": 1.0}, [away(2, 3, 4, scale=1.5)], lambda x: F.elu(x, alpha=1.0))
case("elu_alpha05", "elu", {"alpha": 0.5}, [away(2, 3, 4, scale=1.5)], lambda x: F.elu(x, alpha=0.5))
case("clamp", "clamp", {"min": -0.5, "max": 0.5}, [away(2, 3, 4, points=(-0.5, 0.5))],
     lambda x: torch.clamp(x, min=-0.5, max=0.5))
case("pow_scalar3", "pow", {"exponent": 3.0}, [rn(2, 3, 4)], lambda x: torch.pow(x, 3.0))
case("pow_scalar2_5", "pow", {"exponent": 2.5}, [pos(2, 3, 4)], lambda x: torch.pow(x, 2.5))

# ---------------------------------------------------------------- binary (broadcasting)

case("add_bcast", "add", {}, [rn(3, 4, 5), rn(4, 1)], torch.add)
case("sub_bcast", "sub", {}, [rn(2, 3), rn(3)], torch.sub)
case("mul_bcast", "mul", {}, [rn(4, 1, 3), rn(5, 3)], torch.mul)
case("div_bcast", "div", {}, [rn(2, 3, 4), magnitude(3, 1)], torch.div)
case("pow_tensor", "pow", {}, [pos(3, 4), rn(4)], torch.pow)

# ---------------------------------------------------------------- reductions

case("sum_dim1_keepdim", "sum", {"dim": [1], "keepdim": True}, [rn(2, 3, 4)],
     lambda x: torch.sum(x, dim=[1], keepdim=True))
case("sum_all", "sum", {}, [rn(2, 3, 4)], torch.sum)
case("sum_dim02", "sum", {"dim": [0, 2], "keepdim": False}, [rn(2, 3, 4)],
     lambda x: torch.sum(x, dim=[0, 2], keepdim=False))
case("mean_dim02", "mean", {"dim": [0, 2], "keepdim": False}, [rn(2, 3, 4)],
     lambda x: torch.mean(x, dim=[0, 2], keepdim=False))
case("mean_all", "mean", {}, [rn(2, 3, 4)], torch.mean)
case("amax_dim1", "amax", {"dim": [1], "keepdim": False}, [distinct(2, 3, 4)],
     lambda x: torch.amax(x, dim=[1], keepdim=False))
case("amin_dimm1_keepdim", "amin", {"dim": [-1], "keepdim": True}, [distinct(2, 3, 4)],
     lambda x: torch.amin(x, dim=[-1], keepdim=True))
case("var_dim1_unbiased", "var", {"dim": [1], "unbiased": True, "keepdim": False}, [rn(3, 5, 2)],
     lambda x: torch.var(x, [1], unbiased=True, keepdim=False))
case("var_dim1_biased", "var", {"dim": [1], "unbiased": False, "keepdim": False}, [rn(3, 5, 2)],
     lambda x: torch.var(x, [1], unbiased=False, keepdim=False))
case("softmax_dim1", "softmax", {"dim": 1}, [rn(2, 3, 4, scale=2.0)], lambda x: torch.softmax(x, dim=1))
case("softmax_dimm1", "softmax", {"dim": -1}, [rn(3, 7, scale=2.0)], lambda x: torch.softmax(x, dim=-1))
case("log_softmax_dimm1", "log_softmax", {"dim": -1}, [rn(2, 3, 5, scale=2.0)],
     lambda x: torch.log_softmax(x, dim=-1))
case("log_softmax_dim0", "log_softmax", {"dim": 0}, [rn(4, 3, scale=2.0)],
     lambda x: torch.log_softmax(x, dim=0))
case("logsumexp_dimm1", "logsumexp", {"dim": [-1], "keepdim": False}, [rn(2, 3, 5, scale=2.0)],
     lambda x: torch.logsumexp(x, dim=[-1], keepdim=False))
case("logsumexp_dim1_keepdim", "logsumexp", {"dim": [1], "keepdim": True}, [rn(2, 4, 3, scale=2.0)],
     lambda x: torch.logsumexp(x, dim=[1], keepdim=True))

# ---------------------------------------------------------------- matmul

case("matmul_2d", "matmul", {}, [rn(3, 4), rn(4, 5)], torch.matmul)
case("matmul_3d_2d", "matmul", {}, [rn(2, 3, 4), rn(4, 5)], torch.matmul)
case("matmul_bcast_batch", "matmul", {}, [rn(2, 1, 3, 4), rn(5, 4, 6)], torch.matmul)
case("matmul_1d_2d", "matmul", {}, [rn(4), rn(4, 5)], torch.matmul)
case("matmul_3d_1d", "matmul", {}, [rn(2, 3, 4), rn(4)], torch.matmul)
case("matmul_large_values", "matmul", {}, [rn(6, 5, scale=10.0), rn(5, 7, scale=10.0)], torch.matmul)

# ---------------------------------------------------------------- cross entropy


def ce_inputs():
    logits = rn(6, 7, scale=2.0)
    t = ids((6,), 7)
    t[2] = -100  # one ignored row
    return [logits, t]


for red in ("mean", "sum", "none"):
    case("cross_entropy_" + red, "cross_entropy",
         {"reduction": red, "ignore_index": -100, "label_smoothing": 0.0}, ce_inputs(),
         lambda x, t, red=red: F.cross_entropy(x, t, reduction=red, ignore_index=-100,
                                               label_smoothing=0.0))
case("cross_entropy_smooth_mean", "cross_entropy",
     {"reduction": "mean", "ignore_index": -100, "label_smoothing": 0.1}, ce_inputs(),
     lambda x, t: F.cross_entropy(x, t, reduction="mean", ignore_index=-100, label_smoothing=0.1))

# ---------------------------------------------------------------- gather-like

case("embedding", "embedding", {},
     [torch.tensor([[3, 7, 3], [0, 9, 7]], dtype=torch.int32), rn(10, 4)],
     lambda i, w: F.embedding(i, w))
case("index_select_dim1", "index_select", {"dim": 1},
     [rn(4, 5, 3), torch.tensor([4, 0, 4, 2], dtype=torch.int32)],
     lambda x, i: torch.index_select(x, 1, i))

# ---------------------------------------------------------------- shape ops

case("cat_dim1", "cat", {"dim": 1}, [rn(2, 3), rn(2, 5)], lambda a, b: torch.cat([a, b], dim=1))
case("stack_dim0", "stack", {"dim": 0}, [rn(2, 3), rn(2, 3)], lambda a, b: torch.stack([a, b], dim=0))
case("stack_dim2", "stack", {"dim": 2}, [rn(2, 3), rn(2, 3)], lambda a, b: torch.stack([a, b], dim=2))
case("split_sections", "split", {"split_size_or_sections": [2, 3], "dim": 1}, [rn(3, 5)],
     lambda x: torch.split(x, [2, 3], dim=1))
case("chunk_3_dim0", "chunk", {"chunks": 3, "dim": 0}, [rn(6, 2)], lambda x: torch.chunk(x, 3, dim=0))
case("cumsum_dim1", "cumsum", {"dim": 1}, [rn(3, 4, 2)], lambda x: torch.cumsum(x, dim=1))
case("cumsum_dim0", "cumsum", {"dim": 0}, [rn(3, 4, 2)], lambda x: torch.cumsum(x, dim=0))

for fn_name, fn in (("triu", torch.triu), ("tril", torch.tril)):
    for d, tag in ((0, "0"), (1, "1"), (-1, "m1")):
        case("%s_diag%s" % (fn_name, tag), fn_name, {"diagonal": d}, [rn(4, 5)],
             lambda x, fn=fn, d=d: fn(x, diagonal=d))
    case("%s_batched" % fn_name, fn_name, {"diagonal": 0}, [rn(2, 3, 3)],
         lambda x, fn=fn: fn(x, diagonal=0))

case("where_bcast", "where", {},
     [torch.tensor([[True], [False], [True]]), rn(3, 4), rn(4)],
     lambda c, x, y: torch.where(c, x, y))
case("masked_fill", "masked_fill", {"value": -1.5},
     [rn(3, 4), torch.tensor([True, False, False, True])],
     lambda x, m: x.masked_fill(m, -1.5))

# ---------------------------------------------------------------- norms

case("layer_norm_affine", "layer_norm", {"normalized_shape": [6], "eps": 1e-5},
     [rn(4, 6, scale=2.0), rn(6), rn(6)],
     lambda x, w, b: F.layer_norm(x, [6], w, b, eps=1e-5))
case("layer_norm_plain", "layer_norm", {"normalized_shape": [8], "eps": 1e-5},
     [rn(2, 3, 8, scale=2.0)],
     lambda x: F.layer_norm(x, [8], eps=1e-5))


def rms_norm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


case("rms_norm", "rms_norm", {"normalized_shape": [6], "eps": 1e-6}, [rn(4, 6, scale=2.0), rn(6)],
     lambda x, w: rms_norm(x, w, 1e-6))

# ---------------------------------------------------------------- views

case("reshape", "reshape", {"shape": [6, 4]}, [rn(2, 3, 4)], lambda x: torch.reshape(x, [6, 4]))
case("permute", "permute", {"dims": [2, 0, 1]}, [rn(2, 3, 4)], lambda x: torch.permute(x, [2, 0, 1]))
case("transpose", "transpose", {"dim0": 0, "dim1": 2}, [rn(2, 3, 4)], lambda x: torch.transpose(x, 0, 2))
case("narrow", "narrow", {"dim": 1, "start": 1, "length": 2}, [rn(3, 4, 2)],
     lambda x: torch.narrow(x, 1, 1, 2))
case("expand", "expand", {"size": [3, 4]}, [rn(3, 1)], lambda x: x.expand(3, 4))

# ---------------------------------------------------------------- write

metadata = {
    "cases": json.dumps(CASES, separators=(",", ":")),
    "generator": "scripts/golden/ops.py",
    "torch_version": torch.__version__,
    "reference": "float64 from float32 inputs; grads of sum_j <out_j, gout_j>",
}
save_file(TENSORS, OUT_PATH, metadata)
print("wrote %s: %d cases, %d tensors, %d bytes (torch %s)"
      % (OUT_PATH, len(CASES), len(TENSORS), os.path.getsize(OUT_PATH), torch.__version__))
