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


CONFIDENCE = 0.95


def t_halfwidth(values) -> float | None:
    """Half-width of the two-sided t-interval of the mean over seeds: t_{n-1} * s / sqrt(n);
    None for fewer than two finite values (no spread to speak of)."""
    from scipy import stats

    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return None
    return float(stats.t.ppf(0.5 + CONFIDENCE / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))


def welch_halfwidth(a, b) -> float | None:
    """Half-width of the Welch t-interval of mean(a) - mean(b) (seeds of two models are independent
    draws); None unless both have two finite values or more."""
    from scipy import stats

    a, b = (np.asarray(v, dtype=float) for v in (a, b))
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = np.sqrt(va + vb)
    if se == 0:
        return 0.0
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))   # Welch-Satterthwaite
    return float(stats.t.ppf(0.5 + CONFIDENCE / 2, df) * se)
