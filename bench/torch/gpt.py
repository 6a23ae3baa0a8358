# The GPT-2 layout of tsformer's TransformerLM in PyTorch (pre-LN, learned positions, GELU tanh,
# biases, tied head), with a KV cache for decoding. Shared by the train and decode peers.
import math
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.h = h
        self.norm1 = nn.LayerNorm(d)
        self.wq, self.wk, self.wv, self.wo = (nn.Linear(d, d) for _ in range(4))
        self.norm2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)

    def attn(self, x, cache, start):
        B, T, D = x.shape
        hd = D // self.h
        q = self.wq(x).view(B, T, self.h, hd).transpose(1, 2)
        k = self.wk(x).view(B, T, self.h, hd).transpose(1, 2)
        v = self.wv(x).view(B, T, self.h, hd).transpose(1, 2)
        if cache is not None:
            cache["k"][:, :, start:start + T] = k
            cache["v"][:, :, start:start + T] = v
            k = cache["k"][:, :, :start + T]
            v = cache["v"][:, :, :start + T]
        S = k.shape[2]
        s = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        mask = torch.ones(T, S, dtype=torch.bool).tril(S - T)
        s = s.masked_fill(~mask, float("-inf"))
        o = s.softmax(-1) @ v
        return self.wo(o.transpose(1, 2).reshape(B, T, D))

    def forward(self, x, cache=None, start=0):
        x = x + self.attn(self.norm1(x), cache, start)
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, V, L, H, d, T):
        super().__init__()
        self.tok = nn.Embedding(V, d)
        self.pos = nn.Embedding(T, d)
        self.blocks = nn.ModuleList(Block(d, H) for _ in range(L))
        self.norm_f = nn.LayerNorm(d)
        self.H, self.d, self.T = H, d, T
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, ids, caches=None, start=0):
        T = ids.shape[1]
        x = self.tok(ids) + self.pos(torch.arange(start, start + T))
        for i, b in enumerate(self.blocks):
            x = b(x, None if caches is None else caches[i], start)
        return self.norm_f(x) @ self.tok.weight.t()

    def new_cache(self, B):
        hd = self.d // self.H
        return [{"k": torch.zeros(B, self.H, self.T, hd), "v": torch.zeros(B, self.H, self.T, hd)} for _ in self.blocks]
