"""Per-user metrics from 1-based ranks: the one definition, torch-free so that reports can
derive them from stored ranks (an exported run keeps ranks only)."""
from __future__ import annotations

import numpy as np


def metrics_from_ranks(ranks, ks: tuple[int, ...]) -> dict[str, np.ndarray]:
    """HR@k, NDCG@k for each k and MRR, per user (float64 arrays of shape (U,)), from 1-based ranks
    (the target's position among the candidates, ties counted against it)."""
    r = np.asarray(ranks, dtype=np.float64)
    out = {f"hr@{k}": (r <= k).astype(np.float64) for k in ks}
    for k in ks:
        out[f"ndcg@{k}"] = np.where(r <= k, 1.0 / np.log2(r + 1.0), 0.0)
    out["mrr"] = 1.0 / r
    return out
