# PyTorch peer of bench/context.ts part 3: causal attention on [B, H, T, d] timed one call per request.
#   "sdpa":   torch 1.13's F._scaled_dot_product_attention(is_causal=True) (on CPU its math path:
#             the T x T scores are materialized; 1.13 has no fused CPU kernel).
#   "rerope": Su's ReRoPE as in bojone/rerope rerope_patch.py (two score matrices, selected per (i, j)):
#             a1 = q1 k1^T (RoPE at true positions), a2 = q2 k^T (queries rotated at position w, keys not
#             rotated), a = where(i - j < w, a1, a2), causal mask, softmax in float32, times v.
# Inputs are random (the rotations are done by the caller in both implementations). Request:
# {"kind", "shape": [B, H, T, d], "window", "backward"}; reply {"seconds"}.
import json, math, sys, time
import torch
import torch.nn.functional as F

torch.set_num_threads(2)
torch.manual_seed(0)
print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)

cache = {}


def inputs(shape):
    key = tuple(shape)
    if key not in cache:
        cache.clear()
        t = [torch.randn(*shape).requires_grad_() for _ in range(5)]
        n = shape[2]
        pos = torch.arange(n)
        rel = pos[:, None] - pos[None, :]
        cache[key] = (t, torch.randn(*shape), rel)
    return cache[key]


def rerope(q1, k1, q2, k, v, rel, w):
    s = 1 / math.sqrt(q1.shape[-1])
    a1 = torch.matmul(q1, k1.transpose(2, 3)) * s
    a2 = torch.matmul(q2, k.transpose(2, 3)) * s
    a = torch.where(rel < w, a1, a2).masked_fill(rel < 0, float("-inf"))
    return torch.matmul(torch.softmax(a, dim=-1, dtype=torch.float32), v)


for line in sys.stdin:
    if not line.strip():
        continue
    c = json.loads(line)
    (q1, k1, q2, k, v), g, rel = inputs(c["shape"])
    for t in (q1, k1, q2, k, v):
        t.grad = None
    with torch.enable_grad() if c["backward"] else torch.no_grad():
        t0 = time.perf_counter()
        if c["kind"] == "sdpa":
            o = F._scaled_dot_product_attention(q1, k1, v, need_attn_weights=False, is_causal=True)[0]
        else:
            o = rerope(q1, k1, q2, k, v, rel, c["window"])
        if c["backward"]:
            o.backward(g)
        dt = time.perf_counter() - t0
    del o
    print(json.dumps({"seconds": dt}), flush=True)
