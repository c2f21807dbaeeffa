"""The training config every model's `train_defaults` is, and the selection metric. Torch-free,
so models, the registry and the reports import it without the training loop."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bench.errors import BenchError
from bench.params import AT_LEAST_ONE, COUNT, NONNEGATIVE, POSITIVE, param

SELECT_METRIC = "ndcg@10"       # model selection, early stopping and pruning: validation only


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = param(200, "most training epochs (early stopping may end sooner); 0 = no training (a "
                             "fitted model)", COUNT)
    batch_size: int = param(128, "training examples per optimizer step", AT_LEAST_ONE)
    lr: float = param(1e-3, "Adam learning rate", POSITIVE)
    weight_decay: float = param(0.0, "Adam weight decay (L2 on every parameter); 0 = off", NONNEGATIVE)
    # constant; cosine over `epochs`; step: x lr_decay every lr_step epochs (the DiffuRec code:
    # 100, 0.1); plateau: when early stopping would stop, x lr_decay and go on, lr_drops times
    lr_schedule: Literal["constant", "cosine", "step", "plateau"] = param(
        "constant",
        "constant; cosine over `epochs`; step: x lr_decay every lr_step epochs; plateau: x lr_decay when early "
        "stopping would stop, then go on")
    lr_decay: float = param(0.1, "factor the step and plateau schedules multiply the lr by", (0, 1, False, True))
    lr_step: int = param(100, "epochs between lr drops of the step schedule", AT_LEAST_ONE)
    lr_drops: int = param(1, "lr drops the plateau schedule makes before early stopping may stop", COUNT)
    eval_every: int = param(1, "epochs between validation passes (NDCG@10 selects the checkpoint)", AT_LEAST_ONE)
    patience: int = param(10, "validation passes without improvement before early stopping", AT_LEAST_ONE)
    eval_batch_size: int = param(1024, "users per evaluation batch (speed and memory only, except "
                                       "for the diffusion models' per-batch reverse noise)", AT_LEAST_ONE)
    precision: Literal["fp32", "bf16"] = param("bf16", "bf16: training and evaluation under bfloat16 autocast; "
                                                       "fp32: none")
    grad_clip: float = param(0.0, "max gradient norm per step; 0 = off", NONNEGATIVE)
    length_buckets: int = param(50, "batches per length-sorted bucket (batches cut to their longest "
                                    "history); 0 = random batches", COUNT)
    # batch: each batch's mean loss weighs the same; targets: scaled by the batch's share of the
    # epoch's targets (batching.epoch_batches), so every target weighs the same, as in random batches
    loss_weight: Literal["batch", "targets"] = param("batch", "batch: each batch's mean loss weighs the same; "
                                                              "targets: scaled by the batch's share of the epoch's"
                                                              " targets")

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
