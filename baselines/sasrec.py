"""SASRec (Kang & McAuley, ICDM 2018): causal self-attention over the history.

Trained on every position of a sequence in one pass. Loss: full softmax
cross-entropy over all items (default; much stronger, see Petrov & Macdonald
2023), or the paper's binary cross-entropy with sampled negatives.
Positions are learned and counted from the most recent item, so cutting
left padding off a batch changes nothing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.models.layers import (Dropout, attention_mask, catalogue_scores, full_softmax_ce, make_block,
                           packed_states, padding_slot_mask, reversed_positions, xavier_init)
from bench.errors import BenchError
from bench.train.config import TrainConfig
from bench.params import FRACTION, LENGTH, LENGTH_OR_OFF, SIZES, param


@dataclass(frozen=True)
class SASRecConfig:
    # defaults: the published full-CE recipe for these splits (MTandHJ/CE-SCE-LLMRec, Beauty) and the
    # reference code's block, init and padding; the harness reproduces its validation curve (RESULTS.md)
    hidden: int = param(64, "embedding and Transformer width", SIZES)
    blocks: int = param(2, "Transformer blocks", (1, 128, True, True))
    heads: int = param(1, "attention heads per block (must divide hidden)", (1, 1024, True, True))
    dropout: float = param(0.6, "dropout on the embeddings and inside every block (attention and "
                                "feed-forward)", FRACTION)
    max_positions: int = param(200, "learned positions, counted from the most recent item; the longest "
                                    "history", LENGTH)
    loss: Literal["ce", "bce"] = param("ce", "ce: full softmax cross-entropy over all items; bce: the paper's "
                                             "binary CE with sampled negatives")
    negatives: int = param(1, "sampled negatives per target, for loss=bce", LENGTH)
    label_smoothing: float = param(0.0, "for loss=ce: weight moved from the target to all items", FRACTION)
    # see models.layers.make_block
    block: Literal["prenorm", "sasrec"] = param("sasrec", "sasrec: the paper's block (post-norm residual, ReLU "
                                                          "feed-forward); prenorm: nanoGPT's pre-norm block (GELU,"
                                                          " 4x wide)")
    # xavier: the SASRec reference code's (models.layers.xavier_init)
    init: Literal["normal", "xavier"] = param("xavier", "xavier: the SASRec code's Xavier-normal weights; normal: "
                                                        "item table at N(0, hidden ** -0.5)")
    # 0: padding keys are masked. N > 0 (block="sasrec" only): as the SASRec code, which pads
    # every history to N positions and masks only future keys, queries also attend to the
    # N - n_real padding positions (see models.layers.with_padding_slot). N is the code's max_len:
    # unless set, the run's --max-len (SASRec.max_len_fields); 50 where no run gives one
    pad_slots: int = param(50, "N > 0: queries also attend to N - n padding positions, as the "
                               "SASRec code (block=sasrec only); 0 = padding masked; unless set, "
                               "the run's --max-len", LENGTH_OR_OFF)

    def validate(self):
        if not 0.0 <= self.label_smoothing < 1.0:
            raise BenchError(f"sasrec.label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.pad_slots < 0 or (self.pad_slots and self.block != "sasrec"):
            raise BenchError("sasrec.pad_slots must be >= 0; sasrec.block=prenorm masks padding keys, "
                             "so set sasrec.pad_slots=0 with it")
        if self.hidden % self.heads:
            raise BenchError(f"sasrec.hidden ({self.hidden}) must be divisible by sasrec.heads ({self.heads})")


class SASRec(nn.Module):
    paper = "Kang & McAuley, ICDM 2018"
    summary = "causal self-attention over the history, trained on every position (full-softmax CE)"
    Config = SASRecConfig
    # random batches (length_buckets=0): length-sorted batches learn more slowly under Adam (RESULTS.md);
    # the published runs peak at epochs 105-140 on a flat plateau, so patience is 10 evaluations of 5 epochs
    train_defaults = TrainConfig(epochs=200, batch_size=512, lr=5e-4, eval_every=5, patience=10, length_buckets=0)
    # ML-1M: the SASRec paper's dropout for its dense dataset, and lr 1e-3, chosen on validation
    # NDCG@10 against 5e-4 (RESULTS.md, "ML-1M: the learning rate"): at max_len 50, 3 seeds, peaks
    # 17.66-17.75 at epochs 95-175 (early stopping ends two runs inside the budget) against 17.53-17.61
    # at epochs 175-195 of 200; at max_len 200 (seed 0) 17.73 at epoch 160, where every 5e-4 seed
    # still rises at epoch 200. An ML-1M epoch is only 12-17 steps of 512 windows.
    # synthetic: the quick look (`make bench`), chosen on its validation split
    dataset_presets = {"ml-1m": {"dropout": "0.2", "lr": "1e-3"},
                       "synthetic": {"hidden": "128", "dropout": "0.2", "lr": "3e-3", "epochs": "100", "patience": "3"}}
    train_format = "sequence"
    max_len_fields = ("pad_slots",)
    # `bench tune sasrec`: a list is categorical, (low, high) uniform, (low, high, "log") log-uniform
    search_space = {
        "hidden": [32, 64, 128, 256],
        "blocks": (1, 3),
        "heads": [1, 2, 4],
        "dropout": (0.1, 0.7),
        "lr": (2e-4, 1e-2, "log"),
        "weight_decay": [0.0, 1e-5, 1e-4],
    }

    def __init__(self, cfg: SASRecConfig, n_items: int):
        super().__init__()
        self.cfg, self.n_items = cfg, n_items
        self.item = nn.Embedding(n_items + 1, cfg.hidden, padding_idx=0)
        self.pos = nn.Embedding(cfg.max_positions, cfg.hidden)
        self.drop = Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(make_block(cfg.block, cfg.hidden, cfg.heads, cfg.dropout) for _ in range(cfg.blocks))
        self.norm = nn.LayerNorm(cfg.hidden)
        if cfg.init == "xavier":
            xavier_init(self, keep=tuple(b.mlp for b in self.blocks))
        else:
            nn.init.normal_(self.item.weight, std=cfg.hidden ** -0.5)

    def encode(self, history: Tensor) -> tuple[Tensor, Tensor]:
        """(B, L) left-padded item ids -> states (M, D) of the M real positions in row-major
        order, and the (B, L) bool of those positions; row t sees items <= t.

        With block="sasrec" every per-position layer (embedding, dropout, projections,
        norms, feed-forward) runs on the real positions only, scattered into (B, L) just
        for attention: on short-history data most of a batch of random rows is padding."""
        if history.shape[1] > self.cfg.max_positions:
            raise BenchError(f"history length {history.shape[1]} exceeds sasrec.max_positions {self.cfg.max_positions}")
        if self.cfg.block == "prenorm":
            x, valid = packed_states(history, self.item, self.pos, self.drop, self.blocks, True,
                                     self.cfg.max_positions, "sasrec")
            return self.norm(x), valid
        valid = history != 0                                          # (B, L)
        mask = attention_mask(valid, causal=True)                     # (B, 1, L, L)
        real = valid.nonzero(as_tuple=True)
        x = self.item(history[real]) * math.sqrt(self.cfg.hidden) + self.pos(reversed_positions(history)[real])
        x = self.drop(x)                                              # (M, D)
        if self.cfg.pad_slots:
            n_pad = (self.cfg.pad_slots - valid.sum(1)).clamp(min=0)    # (B,)
            mask = padding_slot_mask(mask, torch.where(n_pad > 0, n_pad.float().log(), float("-inf")))
        for block in self.blocks:
            x = block(x, mask, real=real, shape=history.shape)
        return self.norm(x), valid

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        states, valid = self.encode(batch["history"])                 # (M, D), (B, L)
        target = batch["target"][valid]                               # (M,), 0 = no target
        keep = target != 0
        h, y = states[keep], target[keep]                             # (M', D), (M',)
        if self.cfg.loss == "ce":
            return full_softmax_ce(h, self.item.weight, y, label_smoothing=self.cfg.label_smoothing)
        neg = torch.randint(1, self.n_items + 1, (len(y), self.cfg.negatives), device=y.device)
        pos_logit = (h * self.item(y)).sum(-1)                        # (M,)
        neg_logit = torch.einsum("md,mkd->mk", h, self.item(neg))     # (M, K)
        return (F.softplus(-pos_logit).float().mean() + F.softplus(neg_logit).float().mean())

    def score(self, batch: dict[str, Tensor]) -> Tensor:
        states, valid = self.encode(batch["history"])                 # (M, D), (B, L)
        last = valid.sum(1).cumsum(0) - 1                             # (B,) each row's last real state
        empty = self.norm(states.new_zeros(self.cfg.hidden))          # a history with no item
        h = torch.where(valid[:, -1:], states[last.clamp(min=0)], empty)    # (B, D)
        return catalogue_scores(h, self.item.weight)                  # (B, N+1)
