"""The training config every model's `train_defaults` is, and the selection metric. Torch-free,
so models, the registry and the reports import it without the training loop."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bench.errors import BenchError

SELECT_METRIC = "ndcg@10"       # model selection, early stopping and pruning: validation only


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 200
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    # constant; cosine over `epochs`; step: x lr_decay every lr_step epochs (the DiffuRec code:
    # 100, 0.1); plateau: when early stopping would stop, x lr_decay and go on, lr_drops times
    lr_schedule: Literal["constant", "cosine", "step", "plateau"] = "constant"
    lr_decay: float = 0.1
    lr_step: int = 100
    lr_drops: int = 1
    eval_every: int = 1
    patience: int = 10          # evaluations without improvement before stopping
    eval_batch_size: int = 1024
    precision: Literal["fp32", "bf16"] = "bf16"
    grad_clip: float = 0.0      # max gradient norm; 0 = off
    length_buckets: int = 50    # batches per length-sorted bucket; 0 = plain shuffling
    # batch: each batch's mean loss weighs the same; targets: scaled by the batch's share of the
    # epoch's targets (batching.epoch_batches), so every target weighs the same, as in random batches
    loss_weight: Literal["batch", "targets"] = "batch"

    def __post_init__(self):
        if self.length_buckets < 0:
            raise BenchError("train.length_buckets must be >= 0")
        if not 0 < self.lr_decay <= 1 or self.lr_drops < 0:
            raise BenchError("train.lr_decay must be in (0, 1] and train.lr_drops >= 0")
        for name in ("batch_size", "eval_every", "patience", "eval_batch_size", "lr_step"):
            if getattr(self, name) < 1:
                raise BenchError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if self.epochs < 0 or self.lr <= 0 or self.weight_decay < 0 or self.grad_clip < 0:
            raise BenchError("train: epochs, weight_decay and grad_clip must be >= 0 and lr > 0")
