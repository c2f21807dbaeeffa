"""MostPop: every user gets the items ranked by their count in the training sequences."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from bench.train.config import TrainConfig
from bench.params import param


@dataclass(frozen=True)
class PopConfig:
    pass


class MostPop(nn.Module):
    paper = "-"
    summary = "items ranked by their count in the training sequences; the sanity floor"
    Config = PopConfig
    train_defaults = TrainConfig(epochs=0)
    train_format = "sequence"

    def __init__(self, cfg: PopConfig, n_items: int):
        super().__init__()
        self.register_buffer("counts", torch.zeros(n_items + 1))

    def fit(self, train: list[list[int]]) -> None:
        items = torch.tensor([i for seq in train for i in seq], dtype=torch.long)
        self.counts.copy_(torch.bincount(items, minlength=len(self.counts)).to(self.counts))

    def score(self, batch: dict[str, Tensor]) -> Tensor:
        return self.counts.expand(len(batch["history"]), -1)  # (B, N+1)
