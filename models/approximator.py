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

The published DiffuRecSys code (shararezr/DiffuRecSys @746866d, diffurec.py) differs
in five switches, each off here by default (docs/fidelity.md measures each):
`chain_blocks=False` feeds every block the embedded history, so only the last
block reaches the output (earlier blocks are built but never run: their output
is discarded, they get no gradient); `shared_norm` gives cross- and
self-attention one pre-norm LayerNorm; `query_norm=False` feeds the query
unnormalised; `query_per_position` gives each history position its own query,
lambda_l * (x_t + time embedding); `cross_kind="heads"` is the code's linear
attention, keys softmaxed over heads and padding rows of its output set to -1e9.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.models.layers import Dropout, SelfAttention, attend


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """(B,) possibly fractional timesteps -> (B, dim) sinusoidal embedding (Vaswani et al.)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], -1)
    return F.pad(emb, (0, dim % 2))


class CrossAttention(nn.Module):
    """Queries (one per example, or one per history position) attend over the history.

    kind="softmax": scaled dot-product attention with a key-padding mask.
    kind="linear": efficient attention (Shen et al. 2021): softmax of q over
    features, of k over (unmasked) positions, out = q (k^T v).
    kind="heads": the published DiffuRecSys code's linear attention: k is
    softmaxed over heads (`softmax(k, dim=1)` on (B, H, L, Dh)), with no key
    mask (masked keys are zeroed here; with `padding_sink` every key is real, as
    there), and output rows at padding positions are set to -1e9 before dropout
    and the output projection.
    """

    def __init__(self, dim: int, heads: int, dropout: float, kind: str):
        super().__init__()
        self.heads, self.dropout, self.kind = heads, dropout, kind
        self.q, self.kv, self.out = nn.Linear(dim, dim), nn.Linear(dim, 2 * dim), nn.Linear(dim, dim)
        self.drop = Dropout(dropout if kind == "heads" else 0.0)

    def forward(self, query: Tensor, x: Tensor, valid: Tensor, pad: Tensor | None = None) -> Tensor:
        """query (B, Q, D) with Q = 1 or L; x (B, L, D); valid (B, L) keys; pad (B, L) padding
        positions (kind "heads", Q = L). Returns (B, Q, D)."""
        B, L, D = x.shape
        Q, H, Dh = query.shape[1], self.heads, D // self.heads
        q = self.q(query).view(B, Q, H, Dh).transpose(1, 2)                    # (B, H, Q, Dh)
        k, v = self.kv(x).view(B, L, 2, H, Dh).permute(2, 0, 3, 1, 4)          # 2 x (B, H, L, Dh)
        if self.kind == "softmax":
            y = attend(q, k, v, valid[:, None, None, :], self.dropout if self.training else 0.0)
        elif self.kind == "linear":
            q = q.softmax(-1)
            k = k.masked_fill(~valid[:, None, :, None], float("-inf")).softmax(2)
            y = q @ (k.transpose(-2, -1) @ v)                                   # (B, H, Q, Dh)
        else:
            k = k.softmax(1) * valid[:, None, :, None]
            y = q.softmax(-1) @ (k.transpose(-2, -1) @ v)                       # (B, H, Q, Dh)
            if pad is not None and Q == L:
                y = y.masked_fill(pad[:, None, :, None], -1e9)
            y = self.drop(y)
        return self.out(y.transpose(1, 2).reshape(B, Q, D))                    # (B, Q, D)


class ApproximatorBlock(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float, attention: str, cross_kind: str,
                 block_dropout: bool = False, shared_norm: bool = False, query_norm: bool = True):
        super().__init__()
        self.block_dropout = block_dropout
        self.use_cross, self.use_self = attention in ("cross", "cross+self"), attention in ("self", "cross+self")
        if self.use_cross:
            self.ln_q = nn.LayerNorm(dim) if query_norm else nn.Identity()
            self.ln_cross = nn.LayerNorm(dim)
            self.cross = CrossAttention(dim, heads, dropout, cross_kind)
        if self.use_self:
            # shared_norm (the published code): self-attention reuses the cross-attention's LayerNorm
            self.ln_self = self.ln_cross if shared_norm and self.use_cross else nn.LayerNorm(dim)
            self.attn = SelfAttention(dim, heads, dropout)
        self.ln_ff = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), Dropout(dropout), nn.Linear(4 * dim, dim))
        self.drop = Dropout(dropout)

    def forward(self, x: Tensor, query: Tensor | None, valid: Tensor, mask: Tensor, last_only: bool = False,
                pad: Tensor | None = None) -> Tensor:
        """(B, L, D) -> (B, L, D), or (B, 1, D) for the last position only
        (exact for the final block, whose other positions are never read)."""
        if self.use_cross:    # (B, 1, D) broadcast over L, or (B, L, D) with a query per position
            x = x + self.drop(self.cross(self.ln_q(query), self.ln_cross(x), valid, pad))
        if self.use_self:
            attended = self.drop(self.attn(self.ln_self(x), mask, last_only))
            x = (x[:, -1:] if last_only else x) + attended
        elif last_only:
            x = x[:, -1:]
        x = x + self.drop(self.ff(self.ln_ff(x)))
        return self.drop(x) if self.block_dropout else x


class Approximator(nn.Module):
    def __init__(self, dim: int, blocks: int, heads: int, dropout: float, attention: str, cross_kind: str,
                 block_dropout: bool = False, shared_norm: bool = False, query_norm: bool = True,
                 chain_blocks: bool = True):
        super().__init__()
        self.dim, self.attention, self.chain_blocks = dim, attention, chain_blocks
        self.time_mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.SiLU(), nn.Linear(4 * dim, dim))
        self.blocks = nn.ModuleList(ApproximatorBlock(dim, heads, dropout, attention, cross_kind, block_dropout,
                                                      shared_norm, query_norm) for _ in range(blocks))
        self.drop = Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, items: Tensor, valid: Tensor, xt: Tensor, t_input: Tensor, lam: Tensor,
                pad: Tensor | None = None) -> Tensor:
        """items: (B, L, D) history embeddings; valid: (B, L) bool keys; xt: (B, D) noisy target;
        t_input: (B,) time fed to the embedding; lam: (B, 1, D), or (B, L, D) for a lambda (and, in
        the cross variants, a query) per position; pad: (B, L) padding positions (cross_kind
        "heads"). Returns x0 (B, D)."""
        cond = xt + self.time_mlp(timestep_embedding(t_input, self.dim).to(xt.dtype))   # (B, D)
        # keys at padding are masked; no query row is empty since the last position is always real
        mask = valid[:, None, None, :]                                            # (B, 1, 1, L)
        if self.attention == "self":
            x, query = items + lam * cond[:, None, :], None
        else:                                                                     # query (B, 1 or L, D)
            x, query = items, (lam if lam.shape[1] > 1 else lam[:, :1]) * cond[:, None, :]
        # unchained (the published code): every block reads the history and only the last one's output is
        # kept, so the others are skipped
        blocks = self.blocks if self.chain_blocks else self.blocks[-1:]
        for i, block in enumerate(blocks):
            x = block(x, query, valid, mask, last_only=i == len(blocks) - 1, pad=pad)
        return self.norm(self.drop(x[:, -1]))                                      # the last position is always real
