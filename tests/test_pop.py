"""MostPop checked against an independent computation: counts and bisection, no tensors."""
import bisect
import json
import math
import pickle
from collections import Counter

import pytest

from tests.conftest import bench_cli


def hand_metrics(path, exclude_seen: bool) -> dict:
    d = pickle.load(open(path, "rb"))
    n_items = len(d["smap"])
    counts = Counter(i for seq in d["train"].values() for i in seq)
    per_item = [counts.get(i, 0) for i in range(1, n_items + 1)]
    ordered = sorted(per_item)
    totals = Counter()
    for u, seq in d["train"].items():
        target = d["test"][u][0]
        c = counts.get(target, 0)
        # items (target included) whose count is >= the target's: ties count against it
        rank = len(ordered) - bisect.bisect_left(ordered, c)
        if exclude_seen:
            seen = set(seq) | {d["val"][u][0]}
            seen.discard(target)
            rank -= sum(1 for i in seen if counts.get(i, 0) >= c)
        for k in (5, 10, 20):
            totals[f"hr@{k}"] += rank <= k
            totals[f"ndcg@{k}"] += 1 / math.log2(rank + 1) if rank <= k else 0.0
        totals["mrr"] += 1 / rank
    return {k: v / len(d["train"]) for k, v in totals.items()}


@pytest.mark.parametrize("exclude_seen", [False, True])
def test_pop_on_beauty_matches_hand_computation(data_dir, tmp_path, exclude_seen):
    args = ["run", "--models", "pop", "--dataset", "beauty", "--out", str(tmp_path), "--data-dir", str(data_dir)]
    proc = bench_cli(*args, *(["--exclude-seen"] if exclude_seen else []))
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "results.jsonl").read_text())
    assert record["protocol"]["exclude_seen"] is exclude_seen
    expected = hand_metrics(data_dir / "beauty.pkl", exclude_seen)
    for name, value in expected.items():
        assert round(record["test"][name], 4) == round(value, 4), name
