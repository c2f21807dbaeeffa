"""A study's re-scorings: each finished checkpoint of its points scored again on test with evaluation-time
settings changed (`Ablation.rescore`: fewer reverse steps, deterministic steps, x_t zeroed or shuffled),
through `bench eval`'s `reevaluate`. Each line in evals.jsonl carries the study and the re-scoring's name;
one already there is not repeated, so a rerun of the study command completes what a crash left."""
from __future__ import annotations

import json
from pathlib import Path

from bench.errors import BenchError
from bench.registry.runconfig import raw
from bench.runs import results
from bench.studies.ablation import Ablation
from bench.studies.runner import err


def study_records(out: Path, study_id: str) -> list[dict]:
    """The latest tagged line of each run of the study."""
    latest: dict[str, dict] = {}
    for r in results.read(out):
        if r.get("study_id") == study_id and "point_index" in r:
            latest[r["run_id"]] = r
    return sorted(latest.values(), key=lambda r: (r["point_index"], r["seed"]))


def key(run_id: str, changes: dict) -> str:
    return json.dumps([run_id, changes], sort_keys=True, default=str)


def rescore(ablation: Ablation, plan, device: str = "auto") -> int:
    """Run every re-scoring of the study not yet in evals.jsonl; returns how many ran."""
    if ablation.rescore is None:
        return 0
    from bench.eval.reeval import reevaluate

    out = Path(plan.base.out)
    done = {key(e["run_id"], e.get("changes", {})) for e in results.read(out, results.EVALS) if e.get("rescore")}
    ds, count = None, 0
    for record in study_records(out, plan.study_id):
        point = plan.points[record["point_index"]]
        for i, (name, changes) in enumerate(ablation.rescore(point, bool(record.get("registered")))):
            if key(record["run_id"], changes) in done:
                continue
            ds = ds or plan.base.data.load()
            try:
                entry = reevaluate(out, record, ds, {k: raw(v) for k, v in changes.items()}, device, splits=("test",),
                                   tags={"study": plan.name, "study_id": plan.study_id, "point": record.get("point"),
                                         "rescore": name, "rescore_index": i})
            except BenchError as e:         # e.g. an exported run without its checkpoint
                err.print(f"[{plan.name}] {record.get('point')} seed {record['seed']}: not re-scored ({e})")
                continue
            count += 1
            err.print(f"[{plan.name}] {record.get('point')} seed {record['seed']}, {name}: test NDCG@10 "
                      + ", ".join(f"{s} {100 * m['ndcg@10']:.2f}%" for s, m in entry["test_seen"].items()))
    return count
