"""The Approximator: predicts x0 from the history, the noisy target x_t and t.

Variants (config field `attention`):
- "self" (DiffuRec): lambda * (x_t + time embedding) is added to every
  history position, then bidirectional self-attention blocks; the output is
  the last position.
- "cross": the noisy target is the query of a cross-attention over the
  history (keys and values); each block is cross-attention then feed-forward.
- "cross+self" (DiffuRecSys): each block is cross-attention, then
  self-attention, then feed-forward, each a pre-norm residual; every block
  feeds the next.
`block_dropout` also drops out the residual stream at the end of every block,
as the DiffuRec code's TransformerBlock does.
In the cross variants the query is lambda * (x_t + time embedding), one
vector per example, and its attention output is added to every history
position (the residual stream stays (B, L, D)).
Masks are key-padding masks built from item ids, broadcast over heads.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.layers import Dropout, SelfAttention, attend


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """(B,) possibly fractional timesteps -> (B, dim) sinusoidal embedding (Vaswani et al.)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], -1)
    return F.pad(emb, (0, dim % 2))


class CrossAttention(nn.Module):
    """One query vector per example attends over the history.

    kind="softmax": scaled dot-product attention with a key-padding mask.
    kind="linear": efficient attention (Shen et al. 2021), as the published
    DiffuRecSys code: softmax of q over features, of k over (unmasked)
    positions, out = q (k^T v).
    """

    def __init__(self, dim: int, heads: int, dropout: float, kind: str):
        super().__init__()
        self.heads, self.dropout, self.kind = heads, dropout, kind
        self.q, self.kv, self.out = nn.Linear(dim, dim), nn.Linear(dim, 2 * dim), nn.Linear(dim, dim)

    def forward(self, query: Tensor, x: Tensor, valid: Tensor) -> Tensor:
        B, L, D = x.shape
        H, Dh = self.heads, D // self.heads
        q = self.q(query).view(B, 1, H, Dh).transpose(1, 2)                    # (B, H, 1, Dh)
        k, v = self.kv(x).view(B, L, 2, H, Dh).permute(2, 0, 3, 1, 4)          # 2 x (B, H, L, Dh)
        if self.kind == "softmax":
            y = attend(q, k, v, valid[:, None, None, :], self.dropout if self.training else 0.0)
        else:
            q = q.softmax(-1)
            k = k.masked_fill(~valid[:, None, :, None], float("-inf")).softmax(2)
            y = q @ (k.transpose(-2, -1) @ v)                                   # (B, H, 1, Dh)
        return self.out(y.transpose(1, 2).reshape(B, 1, D))                    # (B, 1, D)


class ApproximatorBlock(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float, attention: str, cross_kind: str,
                 block_dropout: bool = False):
        super().__init__()
        self.block_dropout = block_dropout
        self.use_cross, self.use_self = attention in ("cross", "cross+self"), attention in ("self", "cross+self")
        if self.use_cross:
            self.ln_q, self.ln_cross = nn.LayerNorm(dim), nn.LayerNorm(dim)
            self.cross = CrossAttention(dim, heads, dropout, cross_kind)
        if self.use_self:
            self.ln_self = nn.LayerNorm(dim)
            self.attn = SelfAttention(dim, heads, dropout)
        self.ln_ff = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), Dropout(dropout), nn.Linear(4 * dim, dim))
        self.drop = Dropout(dropout)

    def forward(self, x: Tensor, query: Tensor | None, valid: Tensor, mask: Tensor, last_only: bool = False) -> Tensor:
        """(B, L, D) -> (B, L, D), or (B, 1, D) for the last position only
        (exact for the final block, whose other positions are never read)."""
        if self.use_cross:
            x = x + self.drop(self.cross(self.ln_q(query), self.ln_cross(x), valid))  # (B, 1, D) broadcast over L
        if self.use_self:
            attended = self.drop(self.attn(self.ln_self(x), mask, last_only))
            x = (x[:, -1:] if last_only else x) + attended
        elif last_only:
            x = x[:, -1:]
        x = x + self.drop(self.ff(self.ln_ff(x)))
        return self.drop(x) if self.block_dropout else x


class Approximator(nn.Module):
    def __init__(self, dim: int, blocks: int, heads: int, dropout: float, attention: str, cross_kind: str,
                 block_dropout: bool = False):
        super().__init__()
        self.dim, self.attention = dim, attention
        self.time_mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.SiLU(), nn.Linear(4 * dim, dim))
        self.blocks = nn.ModuleList(ApproximatorBlock(dim, heads, dropout, attention, cross_kind, block_dropout)
                                    for _ in range(blocks))
        self.drop = Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, items: Tensor, valid: Tensor, xt: Tensor, t_input: Tensor, lam: Tensor) -> Tensor:
        """items: (B, L, D) history embeddings; valid: (B, L) bool; xt: (B, D) noisy target;
        t_input: (B,) time fed to the embedding; lam: (B, 1, D). Returns x0 (B, D)."""
        cond = xt + self.time_mlp(timestep_embedding(t_input, self.dim).to(xt.dtype))   # (B, D)
        # keys at padding are masked; no query row is empty since the last position is always real
        mask = valid[:, None, None, :]                                            # (B, 1, 1, L)
        if self.attention == "self":
            x, query = items + lam * cond[:, None, :], None
        else:
            x, query = items, lam[:, :1] * cond[:, None, :]                          # query (B, 1, D)
        for i, block in enumerate(self.blocks):
            x = block(x, query, valid, mask, last_only=i == len(self.blocks) - 1)
        return self.norm(self.drop(x[:, -1]))                                      # the last position is always real
