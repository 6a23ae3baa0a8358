# PyTorch peer of bench/lora.ts: full fine-tuning vs LoRA steps (forward + backward + AdamW) on the
# GPT-2 layout model of train.py. LoRA is written by hand as in Hu et al. 2021 eq. 3 and PEFT's
# tuners/lora/layer.py: h = W0 x + (alpha / r) B A x, A Kaiming-uniform (a = sqrt(5)), B zero, on
# wq, wk, wv, wo; everything else frozen, AdamW over the adapter only.
# Protocol: a hello line, then one request per stdin line:
#   {"op": "time", config, warmup, reps, inner} -> tokens/s per repetition for "full" and "lora",
#     the two alternating repetition by repetition (which goes first alternates too);
#   {"op": "memory", config} -> per mode: gradient and optimizer-state bytes after one step (counted
#     from p.grad and optimizer.state) and the peak bytes saved for backward (saved_tensors_hooks).
import math, sys, weakref
import torch
import torch.nn as nn
import torch.nn.functional as F
sys.path.insert(0, __import__("os").path.dirname(__file__))
from gpt import GPT
from peer import hello, rate, reply, requests

hello()

R, ALPHA, TARGETS = 8, 16, ("wq", "wk", "wv", "wo")


class LoraLinear(nn.Module):
    def __init__(self, base, r, alpha):
        super().__init__()
        self.base = base
        self.A = nn.Parameter(torch.empty(r, base.in_features))
        self.B = nn.Parameter(torch.zeros(base.out_features, r))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        self.scaling = alpha / r

    def forward(self, x):
        return self.base(x) + F.linear(F.linear(x, self.A), self.B) * self.scaling


def build(c, mode):
    m = GPT(c["V"], c["L"], c["H"], c["d"], c["T"])
    if mode == "lora":
        for p in m.parameters():
            p.requires_grad_(False)
        for b in m.blocks:
            for t in TARGETS:
                setattr(b, t, LoraLinear(getattr(b, t), R, ALPHA))
    params = [p for p in m.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.1)
    B, T, V = c["B"], c["T"], c["V"]

    def step(probe=None):
        x = torch.randint(V, (B, T)); y = torch.randint(V, (B, T))
        loss = F.cross_entropy(m(x).view(-1, V), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if probe:
            probe(m, opt)
    return step


def tensor_bytes(t):
    return t.numel() * t.element_size()


def memory(step):
    """Gradient + optimizer-state bytes after a step, and the peak of distinct storages saved for backward."""
    live, count, peak = {}, [0], [0]

    def release(key, nbytes):
        live[key] -= 1
        if live[key] == 0:
            del live[key]
            count[0] -= nbytes

    class Held:  # what the graph keeps instead of the tensor; its death releases the storage
        def __init__(self, t):
            self.t = t

    def pack(t):
        key, nbytes = t.storage().data_ptr(), t.storage().nbytes()
        if key not in live:
            live[key] = 0
            count[0] += nbytes
            peak[0] = max(peak[0], count[0])
        live[key] += 1
        h = Held(t)
        weakref.finalize(h, release, key, nbytes)
        return h

    out = {}

    def probe(m, opt):
        seen = {id(p): p for p in m.parameters()}.values()
        out["grad_bytes"] = sum(tensor_bytes(p.grad) for p in seen if p.grad is not None)
        out["optimizer_bytes"] = sum(tensor_bytes(v) for s in opt.state.values() for v in s.values() if torch.is_tensor(v))
        out["param_bytes"] = sum(tensor_bytes(p) for p in seen)

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda h: h.t):
        step(probe)
    out["peak_saved_bytes"] = peak[0]
    return out


steps = {}
for r in requests():
    c = r["config"]
    for mode in ("full", "lora"):
        if (c["name"], mode) not in steps:
            steps[(c["name"], mode)] = build(c, mode)
    pair = {mode: steps[(c["name"], mode)] for mode in ("full", "lora")}
    if r["op"] == "memory":
        reply({mode: memory(s) for mode, s in pair.items()})
        continue
    for s in pair.values():
        for _ in range(r["warmup"]):
            s()
    out = {"full": [], "lora": []}
    for i in range(r["reps"]):
        for mode in (("full", "lora") if i % 2 == 0 else ("lora", "full")):  # neither always goes first
            out[mode].append(rate(pair[mode], c["B"] * c["T"], r["inner"]))
    reply({"config": c["name"], "tokens_per_s": out})
