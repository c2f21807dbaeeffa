"""Neural pieces shared by SASRec and the diffusion models: pre-norm Transformer
blocks (nanoGPT-style), key-padding masks, dropout and the full-softmax loss."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.errors import BenchError


def reversed_positions(history: Tensor) -> Tensor:
    """(B, L) position ids counted from the last column (0 = most recent)."""
    L = history.shape[1]
    return torch.arange(L - 1, -1, -1, device=history.device).expand_as(history)


def attention_mask(valid: Tensor, causal: bool) -> Tensor:
    """(B, 1, L, L) bool, True = may attend. Keys at padding are masked.

    Padding queries attend to themselves only, so no row is empty (an empty
    row makes SDPA return NaN); their outputs are zeroed by the caller.
    """
    L = valid.shape[1]
    allowed = valid[:, None, None, :]                                  # (B, 1, 1, L)
    eye = torch.eye(L, dtype=torch.bool, device=valid.device)
    if causal:
        allowed = allowed & torch.ones(L, L, dtype=torch.bool, device=valid.device).tril()
    return allowed | eye



def packed_states(seq: Tensor, item: nn.Embedding, pos: nn.Embedding, drop: nn.Module, blocks: nn.ModuleList,
                  causal: bool, max_positions: int, name: str) -> tuple[Tensor, Tensor]:
    """The pre-norm Transformer encoder of SASRec (block=prenorm) and BERT4Rec: (B, L) left-padded
    ids -> (M, D) states of the M real positions before the final norm, in row-major order, and
    the (B, L) bool of real positions. Every per-position layer runs on
    the real positions only (attention sees them scattered into (B, L)): on short-history data most
    of a random batch is padding. Items are scaled by sqrt(D), positions counted from the most
    recent item."""
    if seq.shape[1] > max_positions:
        raise BenchError(f"sequence length {seq.shape[1]} exceeds {name}.max_positions {max_positions}")
    valid = seq != 0                                              # (B, L)
    real = valid.nonzero(as_tuple=True)
    x = item(seq[real]) * math.sqrt(item.embedding_dim) + pos(reversed_positions(seq)[real])
    x = drop(x)                                                   # (M, D)
    mask = attention_mask(valid, causal=causal)                   # (B, 1, L, L)
    for block in blocks:
        x = block.packed(x, mask, real, seq.shape)
    return x, valid


def full_softmax_ce(states: Tensor, item_weight: Tensor, target: Tensor, reduction: str = "mean",
                    label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of states (M, D) against every item 1..N; target (M,) in 1..N.

    Under bf16 autocast the (M, N) logits stay bf16 through the softmax
    (the kernel accumulates in fp32): casting them to fp32 first costs more
    than half the step on CPU and did not change validation metrics.
    """
    logits = states @ item_weight[1:].T                       # (M, N)
    with torch.autocast(logits.device.type, enabled=False):
        return F.cross_entropy(logits, target - 1, reduction=reduction, label_smoothing=label_smoothing)


def catalogue_scores(states: Tensor, item_weight: Tensor) -> Tensor:
    """Scores (B, N+1) of states (B, D) against every row of item_weight, in fp32.

    Ranking counts ties against the target, so scores must not be rounded:
    a bf16 product keeps 8 significant bits, and near the top of a catalogue
    of 12,000 items that makes other items tie with the target.
    """
    with torch.autocast(states.device.type, enabled=False):
        return states.float() @ item_weight.float().T


def keep_mask(shape: torch.Size, p: float, device) -> Tensor:
    """Bool mask, each entry True with probability 1 - p (p rounded to 1/65536).

    Four 16-bit uniforms come from each 64-bit random word: about 3x cheaper on
    CPU than one float draw per entry, and as uniform.
    """
    n = math.prod(shape)
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(-2 ** 63, None)
    return words.view(torch.int16)[:n].view(shape) >= -32768 + round(p * 65536)


def dropout(x: Tensor, p: float) -> Tensor:
    """Inverted dropout of x with the `keep_mask` draw."""
    p = round(p * 65536) / 65536
    return torch.where(keep_mask(x.shape, p, x.device), x * (1.0 / (1.0 - p)), 0.0)


class Dropout(nn.Module):
    """Inverted dropout with the cheap `keep_mask` draw (CPU `bernoulli_` and
    `rand` dominate a small Transformer's step time)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        return dropout(x, self.p)


SDPA_MIN_KEYS = 33   # on CPU, shorter key sets use `attend`'s two matmuls


def attend(q: Tensor, k: Tensor, v: Tensor, mask: Tensor, dropout_p: float) -> Tensor:
    """Scaled dot-product attention; q (B, H, Lq, Dh), k and v (B, H, L, Dh),
    mask broadcastable to (B, H, Lq, L): bool, True = may attend, or float, added to the logits.

    F.scaled_dot_product_attention everywhere except CPU with fewer than
    SDPA_MIN_KEYS keys, or with attention dropout: there its flash kernel runs
    2-3x slower than two batched matmuls and a softmax (measured at L = 4..32,
    bf16), and its dropout draws with the slow `bernoulli_` (62 ms per call on a
    DiffuRec batch of 512 x 50, 5% of the training step).
    """
    if q.device.type != "cpu" or (k.shape[-2] >= SDPA_MIN_KEYS and dropout_p == 0):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
    logits = q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5
    logits = logits.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else logits + mask
    weights = logits.softmax(-1)
    if dropout_p > 0:
        weights = dropout(weights, dropout_p)
    return weights.to(v.dtype) @ v


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: Tensor, mask: Tensor, last_only: bool = False) -> Tensor:
        """(B, L, D) -> (B, L, D); with last_only, only the last position's
        query is computed and the output is (B, 1, D)."""
        B, L, D = x.shape
        H, Dh = self.heads, D // self.heads
        if last_only:
            q = F.linear(x[:, -1:], self.qkv.weight[:D], self.qkv.bias[:D]).view(B, 1, H, Dh).transpose(1, 2)
            k, v = F.linear(x, self.qkv.weight[D:], self.qkv.bias[D:]).view(B, L, 2, H, Dh).permute(2, 0, 3, 1, 4)
            mask, L = mask[:, :, -1:], 1
        else:
            q, k, v = self.qkv(x).view(B, L, 3, H, Dh).permute(2, 0, 3, 1, 4)          # 3 x (B, H, L, Dh)
        y = attend(q, k, v, mask, self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(B, L, D))


    def packed(self, xq: Tensor, xkv: Tensor | None, real: tuple[Tensor, Tensor], shape: torch.Size,
               mask: Tensor) -> Tensor:
        """Attention over real positions only: queries from xq, keys and values from xkv (None: xq), both
        (M, D) at the positions `real` of a (B, L) batch. mask: bool (B, 1, L, L), padding keys
        masked, or a `padding_slot_mask` (B, 1, L, 1+L). Returns (M, D)."""
        (B, L), D = shape, xq.shape[-1]
        H, Dh = self.heads, D // self.heads
        projected = self.qkv(xq) if xkv is None else torch.cat(
            [F.linear(xq, self.qkv.weight[:D], self.qkv.bias[:D]),
             F.linear(xkv, self.qkv.weight[D:], self.qkv.bias[D:])], -1)                # (M, 3D)
        qkv = projected.new_zeros(B, L, 3 * D)
        qkv[real] = projected
        q, k, v = qkv.view(B, L, 3, H, Dh).permute(2, 0, 3, 1, 4)                   # 3 x (B, H, L, Dh)
        if mask.dtype != torch.bool:                # a padding_slot_mask: keys get the slot in front
            k, v = with_padding_slot(k, v, self.qkv.bias[D:].view(2, 1, H, 1, Dh))
        y = attend(q, k, v, mask.to(q.dtype) if mask.dtype != torch.bool else mask,
                   self.dropout if self.training else 0.0)                           # (B, H, L, Dh)
        return self.out(y.transpose(1, 2).reshape(B, L, D)[real])


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, dropout)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), Dropout(dropout))
        self.drop = Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = x + self.drop(self.attn(self.ln1(x), mask))
        return x + self.mlp(self.ln2(x))

    def packed(self, x: Tensor, mask: Tensor, real: tuple[Tensor, Tensor], shape: torch.Size) -> Tensor:
        """`forward` on x (M, D), the states of the real positions `real` of a (B, L) `shape`
        (see SelfAttention.packed): the same outputs there, without the padding's work."""
        h = self.ln1(x)
        x = x + self.drop(self.attn.packed(h, None, real, shape, mask))
        return x + self.mlp(self.ln2(x))


def with_padding_slot(k: Tensor, v: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
    """Keys and values (B, H, L, Dh) with one slot in front that stands for a row's padding positions.

    The SASRec code pads every history to max_len and masks only future keys, so each
    query also attends to the padding: zero inputs, whose keys and values are the
    projection biases (bias: (2, 1, H, 1, Dh)). n identical keys weigh as one key whose
    logit is raised by log n: `padding_slot_mask` adds it. Returns (B, H, 1+L, Dh) each.
    """
    B, H, _, Dh = k.shape
    return (torch.cat([bias[0].expand(B, H, 1, Dh).to(k.dtype), k], 2),
            torch.cat([bias[1].expand(B, H, 1, Dh).to(v.dtype), v], 2))


def padding_slot_mask(mask: Tensor, log_count: Tensor) -> Tensor:
    """The bool mask (B, 1, Lq, L) as a float mask (B, 1, Lq, 1+L) to add to the logits, with
    the padding slot first: log n for a row with n padding positions (log_count (B,); -inf: none)."""
    B, Lq, L = mask.shape[0], mask.shape[-2], mask.shape[-1]
    keys = torch.zeros(mask.shape, device=mask.device).masked_fill(~mask, float("-inf"))
    return torch.cat([log_count.float()[:, None, None, None].expand(B, 1, Lq, 1), keys], -1)


class SASRecBlock(nn.Module):
    """The block of the SASRec paper and its reference code (Kang & McAuley 2018, eq. 4-6):
    queries from LayerNorm(x), keys and values from x itself, the residual added to x;
    then the stream is re-normalised and a ReLU feed-forward as wide as the hidden
    size adds to the normalised stream. Unlike the pre-norm `Block`, the residual
    stream is renormalised once per block, so its scale cannot drift with depth."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, dropout)
        self.mlp = nn.Sequential(nn.Linear(dim, dim), Dropout(dropout), nn.ReLU(), nn.Linear(dim, dim), Dropout(dropout))

    def forward(self, x: Tensor, mask: Tensor, real: tuple[Tensor, Tensor], shape: torch.Size) -> Tensor:
        """x (M, D): the states of the real positions `real` (row and column indices into a
        (B, L) `shape`, row-major); attention sees them scattered into (B, L), under `mask`
        (see SelfAttention.packed)."""
        x = x + self.attn.packed(self.ln1(x), x, real, shape, mask)
        x = self.ln2(x)
        return x + self.mlp(x)


def make_block(layout: str, dim: int, heads: int, dropout: float) -> nn.Module:
    """'prenorm' (nanoGPT: GELU feed-forward 4x wide) or 'sasrec' (`SASRecBlock`)."""
    return SASRecBlock(dim, heads, dropout) if layout == "sasrec" else Block(dim, heads, dropout)


def xavier_init(module: nn.Module, keep: tuple[nn.Module, ...] = ()) -> None:
    """Xavier-normal weights and zero biases for every Linear and Embedding outside `keep`:
    the initialisation of the SASRec reference code, whose feed-forward layers (Conv1d
    there) keep PyTorch's default and so belong in `keep`. An item table of N rows
    starts at std sqrt(2 / (N + D)), far smaller than N(0, 1) rows."""
    skip = {id(m) for k in keep for m in k.modules()}
    for m in module.modules():
        if id(m) in skip:
            continue
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.xavier_normal_(m.weight)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        if isinstance(m, nn.Embedding) and m.padding_idx is not None:
            with torch.no_grad():
                m.weight[m.padding_idx].zero_()
