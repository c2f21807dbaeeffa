"""Paired significance tests over per-user metric values, Holm-corrected across baselines."""
from __future__ import annotations

import numpy as np

TESTS = {"ttest": "paired t-test", "wilcoxon": "Wilcoxon signed-rank test"}
ALPHA = 0.05


def paired_p(a: np.ndarray, b: np.ndarray, test: str) -> float:
    """Two-sided p-value of a paired test of a against b (same users, same order)."""
    from scipy import stats

    diff = a - b
    if not np.any(diff):
        return 1.0                      # identical per-user values: no evidence either way
    if test == "ttest":
        p = stats.ttest_rel(a, b).pvalue
    elif test == "wilcoxon":
        p = stats.wilcoxon(a, b, zero_method="wilcox").pvalue
    else:
        raise ValueError(test)
    return float(p) if np.isfinite(p) else 1.0


def holm(pvalues: dict[str, float]) -> dict[str, float]:
    """Holm-Bonferroni adjusted p-values: p_(i) * (m - i + 1), made monotone, capped at 1."""
    order = sorted(pvalues, key=pvalues.get)
    m, running, out = len(order), 0.0, {}
    for i, key in enumerate(order):
        running = max(running, min(1.0, (m - i) * pvalues[key]))
        out[key] = running
    return out
