"""Full-catalogue softmax cross-entropy, shared by the next-item models."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def full_softmax_ce(states: Tensor, item_weight: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy of states (M, D) against every item 1..N; target (M,) in 1..N.

    Under bf16 autocast the (M, N) logits stay bf16 through the softmax
    (the kernel accumulates in fp32): casting them to fp32 first costs more
    than half the step on CPU and did not change validation metrics.
    """
    logits = states @ item_weight[1:].T                       # (M, N)
    with torch.autocast(logits.device.type, enabled=False):
        return F.cross_entropy(logits, target - 1)
