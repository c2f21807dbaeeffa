"""`bench eval`: score finished runs again from their best checkpoint, with
evaluation-time settings changed and the weights untouched.

Only settings that cannot change training may differ from the run: a model's
`eval_fields` (for the diffusion models: reverse steps, stochastic or
deterministic steps, reverse draws averaged), the evaluation batch size, the
precision and `--exclude-seen`. With no change at all, the figures equal the
run's stored ones, which checks that a stored result can be reproduced.

Each evaluation appends one line to `<out>/evals.jsonl` and keeps its per-user
test values in `<run dir>/evals/` (for paired tests); `results.jsonl` is never
touched, so a re-evaluation cannot pass for a trained run.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path

import torch

from bench import data, registry
from bench.registry import contract
from bench.runs import results
from bench.train.checkpoint import Damaged, try_load
from bench.errors import BenchError
from bench.registry.overrides import apply_overrides
from bench.eval.protocol import eval_split, mean_metrics, metrics_from_ranks, rank_split_seen
from bench.runs.artifacts import write_per_user
from bench.runs.identity import dataset_fingerprint, git_revision
from bench.runs.spec import from_record
from bench.train.loop import autocast, resolve_device

EVALS = results.EVALS
TRAIN_EVAL_FIELDS = ("eval_batch_size", "precision")


def allowed_fields(model: str) -> tuple[str, ...]:
    return contract.eval_fields(registry.model_class(model)) + TRAIN_EVAL_FIELDS


def check_overrides(model: str, values: dict[str, str]) -> None:
    allowed = allowed_fields(model)
    for fld in values:
        if fld not in allowed:
            raise BenchError(f"{model}.{fld} cannot change after training; "
                             f"`bench eval` may change only: {', '.join(f'{model}.{a}' for a in allowed)}")


def find_runs(out: Path, models: list[str], dataset: str, data_dir: str | None,
              seeds: list[int] | None, run_id: str | None) -> list[dict]:
    """Finished runs in `out` of these models on this dataset (same file content)."""
    fp = dataset_fingerprint(dataset, data_dir)
    found = [r for r in results.latest_by_run(results.read(out)).values()
             if r["model"] in models and r.get("dataset_fingerprint") == fp
             and (seeds is None or r["seed"] in seeds) and (run_id is None or r["run_id"].startswith(run_id))]
    if not found:
        raise BenchError(f"no finished run of {', '.join(models)} on {dataset} in {out / results.RESULTS}"
                         + (f" with seeds {seeds}" if seeds is not None else "")
                         + (f" and run id {run_id}" if run_id else ""))
    return sorted(found, key=lambda r: (models.index(r["model"]), r["seed"], r["run_id"]))


def per_user_path(out: Path, record: dict, entry: dict, seen: str = "") -> Path:
    """Where a re-evaluation keeps its per-user test values, beside the run's own:
    one file per (changes, protocol, code revision, seen-item setting), so paired tests can use them."""
    key = json.dumps([entry["changes"], entry["protocol"], entry["git_revision"]] + ([seen] if seen else []),
                     sort_keys=True, default=str)
    folder = results.inside(out, record.get("history"), "history").parent / "evals"
    folder.mkdir(exist_ok=True)
    return folder / f"test_per_user-{hashlib.sha1(key.encode()).hexdigest()[:12]}.csv"


def load_best(out: Path, record: dict, ds: data.Dataset, values: dict[str, str] | None = None,
              device: str = "auto", exclude_seen: bool | None = None):
    """A finished run's model at its best checkpoint, in eval mode on `device`, with evaluation-time
    `values` applied: (model, config, train config, protocol, device)."""
    name = record["model"]
    values = values or {}
    check_overrides(name, values)
    spec = from_record(record, out)
    config, train = apply_overrides(name, spec.model.config, spec.model.train, values)
    protocol = spec.protocol if exclude_seen is None else dataclasses.replace(spec.protocol, exclude_seen=exclude_seen)
    best = results.inside(out, record.get("history"), "history").parent / "best.pt"
    if not best.exists():
        raise BenchError(f"run {record['run_id']} has no best checkpoint at {best}")
    dev = resolve_device(device)
    model = spec.model.cls(config, ds.n_items)
    try:
        state = try_load(best)
        if not isinstance(state, dict):
            raise Damaged(f"{best} holds a {type(state).__name__}, not a model's weights")
        try:
            model.load_state_dict(state)
        except (RuntimeError, TypeError, ValueError) as e:     # another model's, or another size's, weights
            first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
            raise Damaged(f"{best} does not hold the weights of this run's {name} ({first})") from None
    except Damaged as e:
        raise BenchError(f"{e}; train the run again with `bench run ... --force`") from None
    model.to(dev).eval()
    return model, config, train, protocol, dev


def reevaluate(out: Path, record: dict, ds: data.Dataset, values: dict[str, str], device: str = "auto",
               exclude_seen: bool | None = None, splits: tuple[str, ...] = ("valid", "test"),
               tags: dict | None = None) -> dict:
    """Score one run's best checkpoint on `splits`; returns the evals.jsonl record (with `tags`, e.g. the
    study that asked for it)."""
    name = record["model"]
    model, config, train, protocol, dev = load_best(out, record, ds, values, device, exclude_seen)
    entry = {"run_id": record["run_id"], "model": name, "dataset": record["dataset"],
             "dataset_fingerprint": record["dataset_fingerprint"], "seed": record["seed"],
             "changes": {k: getattr(config, k) if hasattr(config, k) else getattr(train, k) for k in values},
             "config": dataclasses.asdict(config), "protocol": protocol.to_dict(),
             "stored": {s: record[s] for s in ("valid", "test")}, "device": str(dev),
             "threads": torch.get_num_threads(), "git_revision": git_revision(), **(tags or {})}
    if exclude_seen is not None:
        entry["changes"]["exclude_seen"] = exclude_seen
    for which in splits:
        split = eval_split(ds, which, protocol)
        settings = (False, True) if which == "test" else (protocol.exclude_seen,)
        t0 = time.perf_counter()
        with autocast(dev, train.precision):     # test: seen items kept and removed, from one scoring pass
            both = rank_split_seen(model.score, split, train.eval_batch_size, dev, ds.n_items, settings)
        entry[f"{which}_seconds"] = round(time.perf_counter() - t0, 3)
        entry[which] = mean_metrics(metrics_from_ranks(both[protocol.exclude_seen], protocol.ks))
        if which == "test":
            entry["per_user"] = str(per_user_path(out, record, entry).relative_to(out.resolve()))
            write_per_user(out / entry["per_user"], both[protocol.exclude_seen], protocol.ks, split.users)
            entry["test_seen"], entry["per_user_seen"] = {}, {}
            for exclude, ranks in both.items():
                seen = results.SEEN_KEY[exclude]
                entry["test_seen"][seen] = mean_metrics(metrics_from_ranks(ranks, protocol.ks))
                path = per_user_path(out, record, entry, seen)
                entry["per_user_seen"][seen] = str(path.relative_to(out.resolve()))
                write_per_user(path, ranks, protocol.ks, split.users)
    entry["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    results.append(out, entry, EVALS)
    return entry
