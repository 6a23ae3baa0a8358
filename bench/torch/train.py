# PyTorch peer of bench/train.ts: tokens/s of forward + backward + AdamW for a GPT-2 layout config.
# One request per stdin line ({config, warmup, reps, inner}), one reply line with tokens/s per
# repetition; the model and optimizer of a config are built once and kept between requests, so that
# bench/train.ts can alternate rounds of ours and torch's.
import sys
import torch
import torch.nn.functional as F
sys.path.insert(0, __import__("os").path.dirname(__file__))
from gpt import GPT
from peer import hello, rates, reply, requests

hello()
steps = {}

def make_step(c, precision):
    m = GPT(c["V"], c["L"], c["H"], c["d"], c["T"])
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4, weight_decay=0.1)
    B, T, V = c["B"], c["T"], c["V"]
    def step():
        x = torch.randint(V, (B, T)); y = torch.randint(V, (B, T))
        # bf16: torch.autocast's CPU policy (linear/matmul in bfloat16, the loss in fp32)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = F.cross_entropy(m(x).view(-1, V).float(), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step

for r in requests():
    c = r["config"]
    key = (c["name"], r.get("precision", "fp32"))
    if key not in steps:
        steps[key] = make_step(c, key[1])
    reply({"config": c["name"], "tokens_per_s": rates(steps[key], c["B"] * c["T"], r["warmup"], r["reps"], r["inner"])})
