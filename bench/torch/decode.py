# PyTorch peer of bench/decode.ts: greedy KV-cache decoding tokens/s at batch 1.
# One request per stdin line ({config, newTokens, reps}), one reply line with tokens/s per repetition.
import json, sys
import torch
sys.path.insert(0, __import__("os").path.dirname(__file__))
from gpt import GPT
from peer import hello, rates, reply, requests

hello()
models = {}

@torch.no_grad()
def run(m, n):
    caches = m.new_cache(1)
    ids = torch.zeros(1, 1, dtype=torch.long)
    for pos in range(n):
        logits = m(ids, caches, pos)
        ids = logits[:, -1].argmax(-1, keepdim=True)

for req in requests():
    c = req["config"]
    key = json.dumps(c, sort_keys=True)
    if key not in models:
        models[key] = GPT(c["V"], c["L"], c["H"], c["d"], c["T"]).eval()
    m, n = models[key], req["newTokens"]
    reply({"tokens_per_s": rates(lambda: run(m, n), n, 0, req["reps"])})
