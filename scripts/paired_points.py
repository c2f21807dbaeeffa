"""Paired per-user differences of a study's points against a reference run, with Holm across the points,
straight from a results folder's per-user files (for runs the study commands have not tagged yet).

    python scripts/paired_points.py results/ablations e966ddec s=0:589cf990 s=0.3:1456479c s=1.0:8d0d0fb2

Run ids may be given by prefix. Prints, per seen-item setting, each point's mean difference of test
NDCG@10 in points with the half-width of its 95 % interval over users, the paired t-test's p and the
Holm-adjusted p over the points given.
"""
import json
import sys
from pathlib import Path

import numpy as np
from scipy import stats

from bench.reports.collect import read_per_user
from bench.reports.stats import holm


def main(folder: str, reference: str, points: list[str], metric: str = "ndcg@10") -> None:
    out = Path(folder)
    records = {}
    for line in (out / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        records[r["run_id"]] = r

    def find(prefix: str) -> dict:
        found = [r for rid, r in records.items() if rid.startswith(prefix)]
        if len(found) != 1:
            sys.exit(f"run id '{prefix}': {len(found)} runs in {out / 'results.jsonl'} match")
        return found[0]

    def per_user(record: dict, seen: str) -> np.ndarray:       # plain or exported (gzipped ranks)
        return read_per_user(out / record["per_user_seen"][seen], record)[metric]

    ref = find(reference)
    named = dict(p.split(":", 1) for p in points)
    for seen in ("removed", "kept"):
        raw, est = {}, {}
        for name, rid in named.items():
            a, b = per_user(find(rid), seen), per_user(ref, seen)
            d = 100 * (a - b)
            est[name] = d.mean(), stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
            raw[name] = stats.ttest_rel(a, b).pvalue
        adjusted = holm(raw)
        for name in named:
            print(f"seen {seen:7s} {name}: {metric} {est[name][0]:+.2f} ± {est[name][1]:.2f} pt, "
                  f"p {raw[name]:.2g}, Holm {adjusted[name]:.2g}")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
