"""Golden fixtures for the mixture-of-experts FFN (src/nn/moe/), from PyTorch.

Writes test/fixtures/moe.safetensors (run from the repo root via scripts/golden/run.sh).

Written from the papers' formulas, token by token (a loop, not grouped), in float64 from float32
parameters and inputs:
  router    logits = x Wr^T, p = softmax(logits), the top-k experts by logit (torch.topk)
  gates     "topk_softmax": softmax of the k chosen logits (Mixtral); "softmax": p of the chosen (Switch eq. 2);
            "sigmoid" (DeepSeek-V3 eqs. 13-16): s = sigmoid(logits), the top-k of s + b chosen, gates = the
            chosen s over their sum, p = s / sum(s) (eq. 19); then b_i += rate * sign(N k / E - load_i)
  capacity  cap = ceil(C * N * k / E); slots visited token by token (t, then its j-th choice): a slot whose
            expert already has cap slots is dropped (contributes 0)
  output    y_t = sum over kept slots gate * expert_e(x_t) + shared(x_t); experts SwiGLU w2(silu(w1 x) * w3 x)
            or GELU fc2(gelu(fc1 x)); n shared experts of width F are summed separately here
  balance   E * sum_i f_i P_i, f_i = (slots choosing i, before dropping) / (N k), P_i = mean_t p_ti (Switch eq. 4)
  z         mean_t logsumexp(logits_t)^2 (ST-MoE eq. 5)
For every case:
  <case>.param.<name>        F32  parameter or buffer (MoEFeedForward naming; shared experts as one FFN of
                                  width n F, its hidden units shared expert by shared expert)
  <case>.bias_after          F64  "sigmoid" only: the selection bias after the forward's update
  <case>.x, <case>.gout      F32  [B, T, D] input and upstream gradient
  <case>.out                 F64  [B, T, D]
  <case>.balance, <case>.z   F64  [] auxiliary losses
  <case>.grad.<L>.<name>     F64  d L / d parameter (and "x"), L in out (= <out, gout>), balance, z
Metadata "cases": JSON list of {"name", "options" (MoEOptions), "batch", "seq", "dropped" (slot count)}.
"""

import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import save_file  # noqa: E402

OUT_PATH = os.path.join("test", "fixtures", "moe.safetensors")

torch.manual_seed(0)

CASES = [
    dict(name="swiglu_top2_shared", batch=2, seq=5,
         options=dict(dModel=8, dFF=12, ffn="swiglu", bias=False, experts=4, topK=2, sharedExperts=1)),
    dict(name="gelu_top2_drop", batch=2, seq=6,
         options=dict(dModel=8, dFF=10, ffn="gelu", bias=True, experts=4, topK=2, capacityFactor=0.5)),
    dict(name="swiglu_top1_switch_drop", batch=1, seq=11,
         options=dict(dModel=6, dFF=8, ffn="swiglu", bias=False, experts=3, topK=1, capacityFactor=0.6,
                      sharedExperts=2, gate="softmax")),
    dict(name="swiglu_top2_sigmoid_bias", batch=2, seq=6,
         options=dict(dModel=8, dFF=8, ffn="swiglu", bias=False, experts=6, topK=2, gate="sigmoid",
                      biasUpdateRate=0.01, capacityFactor=1.0)),
]


def ffn_shapes(prefix, kind, D, H, bias):
    names = [("w1", H, D), ("w2", D, H), ("w3", H, D)] if kind == "swiglu" else [("fc1", H, D), ("fc2", D, H)]
    out = {}
    for n, o, i in names:
        out["%s.%s.weight" % (prefix, n)] = [o, i]
        if bias:
            out["%s.%s.bias" % (prefix, n)] = [o]
    return out


def shapes(o):
    D, H = o["dModel"], o["dFF"]
    s = {"router.gate.weight": [o["experts"], D]}
    if o.get("gate") == "sigmoid":
        s["router.e_score_correction_bias"] = [o["experts"]]
    for e in range(o["experts"]):
        s.update(ffn_shapes("experts.%d" % e, o["ffn"], D, H, o["bias"]))
    if o.get("sharedExperts", 0):
        s.update(ffn_shapes("shared", o["ffn"], D, o["sharedExperts"] * H, o["bias"]))
    return s


def lin(P, name, x):
    y = x @ P[name + ".weight"].t()
    b = P.get(name + ".bias")
    return y if b is None else y + b


def ffn(P, prefix, kind, x, hidden=None):
    """One FFN; `hidden` (a slice) restricts it to those hidden units (one of the shared experts)."""
    sl = hidden if hidden is not None else slice(None)
    if kind == "swiglu":
        assert prefix + ".w1.bias" not in P, "the SwiGLU cases have no biases"
        a = x @ P[prefix + ".w1.weight"][sl].t()
        b = x @ P[prefix + ".w3.weight"][sl].t()
        return (F.silu(a) * b) @ P[prefix + ".w2.weight"][:, sl].t()
    h = x @ P[prefix + ".fc1.weight"][sl].t()
    if prefix + ".fc1.bias" in P:
        h = h + P[prefix + ".fc1.bias"][sl]
    y = F.gelu(h, approximate="none" if kind == "gelu" else "tanh") @ P[prefix + ".fc2.weight"][:, sl].t()
    return y


def ffn_bias_out(P, prefix, x):
    b = P.get(prefix + ".fc2.bias", P.get(prefix + ".w2.bias"))
    return 0 if b is None else b


def moe(P, o, x):
    D, E, k, H = o["dModel"], o["experts"], o["topK"], o["dFF"]
    xs = x.reshape(-1, D)
    N = xs.shape[0]
    cap = math.ceil(o["capacityFactor"] * N * k / E) if "capacityFactor" in o else N * k
    count = [0] * E
    chosen = [0] * E
    dropped = 0
    sigmoid = o.get("gate") == "sigmoid"
    steered = 0  # tokens whose choice the selection bias changed
    outs, probs, lses = [], [], []
    for t in range(N):
        xt = xs[t]
        logits = P["router.gate.weight"] @ xt
        if sigmoid:
            sc = torch.sigmoid(logits)
            p = sc / sc.sum()
            idx = torch.topk(sc.detach() + P["router.e_score_correction_bias"], k).indices
            steered += set(idx.tolist()) != set(torch.topk(sc, k).indices.tolist())
            gates = sc[idx] / sc[idx].sum()
        else:
            p = torch.softmax(logits, 0)
            vals, idx = torch.topk(logits, k)
            gates = torch.softmax(vals, 0) if o.get("gate", "topk_softmax") == "topk_softmax" else p[idx]
        y = torch.zeros(D, dtype=torch.float64)
        for j in range(k):
            e = int(idx[j])
            chosen[e] += 1
            if count[e] >= cap:
                dropped += 1
                continue
            count[e] += 1
            pre = "experts.%d" % e
            y = y + gates[j] * (ffn(P, pre, o["ffn"], xt) + ffn_bias_out(P, pre, xt))
        ns = o.get("sharedExperts", 0)
        for s in range(ns):  # each shared expert separately: hidden units s*H .. (s+1)*H
            y = y + ffn(P, "shared", o["ffn"], xt, slice(s * H, (s + 1) * H))
        if ns:
            y = y + ffn_bias_out(P, "shared", xt)
        outs.append(y)
        probs.append(p)
        lses.append(torch.logsumexp(logits, 0))
    Pmean = torch.stack(probs).mean(0)
    f = torch.tensor(chosen, dtype=torch.float64) / (N * k)
    balance = E * (f * Pmean).sum()
    z = (torch.stack(lses) ** 2).mean()
    extra = {}
    if sigmoid:
        if steered == 0:
            raise SystemExit("the selection bias changes no token's choice: no test of it")
        b = P["router.e_score_correction_bias"].detach()
        extra["bias_after"] = b + o["biasUpdateRate"] * torch.sign(N * k / E - torch.tensor(chosen, dtype=torch.float64))
    return torch.stack(outs).reshape(x.shape), balance, z, dropped, extra


def main():
    tensors, meta = {}, []
    for c in CASES:
        o, name = c["options"], c["name"]
        P32 = {n: 0.4 * torch.randn(*s, dtype=torch.float32) for n, s in shapes(o).items()}
        if "router.e_score_correction_bias" in P32:  # biases of the size of the score gaps, to steer choices
            P32["router.e_score_correction_bias"] *= 0.5
        x32 = torch.randn(c["batch"], c["seq"], o["dModel"], dtype=torch.float32)
        gout32 = torch.randn(c["batch"], c["seq"], o["dModel"], dtype=torch.float32)
        for n, t in P32.items():
            tensors["%s.param.%s" % (name, n)] = t.numpy()
        tensors[name + ".x"] = x32.numpy()
        tensors[name + ".gout"] = gout32.numpy()
        dropped = None
        for target in ("out", "balance", "z"):
            P = {n: t.double().requires_grad_() for n, t in P32.items()}
            x = x32.double().requires_grad_()
            out, balance, z, dropped, extra = moe(P, o, x)
            L = {"out": lambda: (out * gout32.double()).sum(), "balance": lambda: balance, "z": lambda: z}[target]()
            L.backward()
            if target == "out":
                tensors[name + ".out"] = out.detach().numpy()
                tensors[name + ".balance"] = balance.detach().numpy()
                tensors[name + ".z"] = z.detach().numpy()
                for n, t in extra.items():
                    tensors["%s.%s" % (name, n)] = t.numpy()
            if x.grad.abs().max() < 1e-6:  # f uniform makes the balance gradient vanish: no test
                raise SystemExit("case %s: the gradient of %s w.r.t. x vanishes" % (name, target))
            tensors["%s.grad.%s.x" % (name, target)] = x.grad.numpy()
            for n, t in P.items():
                if n.endswith("e_score_correction_bias"):
                    continue  # a buffer
                g = t.grad if t.grad is not None else torch.zeros_like(t)
                tensors["%s.grad.%s.%s" % (name, target, n)] = g.numpy()
        if "capacityFactor" in o and dropped == 0:
            raise SystemExit("case %s drops nothing; pick another seed or capacity" % name)
        meta.append(dict(name=name, options=o, batch=c["batch"], seq=c["seq"], dropped=dropped))
    save_file(tensors, OUT_PATH, {"cases": json.dumps(meta)})
    print("wrote %s (%d tensors)" % (OUT_PATH, len(tensors)))


if __name__ == "__main__":
    main()
