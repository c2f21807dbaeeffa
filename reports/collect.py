"""Find and read result files: results.jsonl lines, histories, per-user metrics, journals, trajectories.

Nothing here imports training code: a report is built from files alone.
"""
from __future__ import annotations

import csv
import gzip
import json
import statistics
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from bench import registry
from bench.runs import results as store
from bench.train.config import SELECT_METRIC  # noqa: F401 - tables and figures take it from here
from bench.errors import BenchError
from bench.eval.metrics import metrics_from_ranks
from bench.runs.fields import protocol_note, variant

METRICS = ("hr@5", "hr@10", "hr@20", "ndcg@5", "ndcg@10", "ndcg@20", "mrr")
TRAJECTORY = "trajectory.npz"
EVALS = store.EVALS
DISPLAY = registry.DISPLAY


def display(model: str) -> str:
    return DISPLAY.get(model, model)


def model_order(models) -> list[str]:
    known = [m for m in DISPLAY if m in models]
    return known + sorted(set(models) - set(known))


def read_csv(path: Path) -> dict[str, np.ndarray]:
    """Columns of a numeric CSV file (gzipped when its name ends in .gz) as float arrays."""
    opener = gzip.open if Path(path).suffix == ".gz" else open
    with opener(path, "rt", newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    return {k: np.array([float(r[k]) if r[k] not in ("", None) else np.nan for r in rows]) for k in rows[0]}


def read_per_user(path: Path, record: dict) -> dict[str, np.ndarray]:
    """A run's per-user test values: the file's columns, with every metric of the run's protocol
    derived from the `rank` column where the file holds ranks only (`bench export`)."""
    columns = read_csv(path)
    if "rank" in columns:
        ks = tuple(record.get("protocol", {}).get("ks") or (5, 10, 20))
        columns = {**metrics_from_ranks(columns["rank"], ks), **columns}
    return columns


@dataclass
class Run:
    """One finished run: its results record and the folder the record's paths are relative to."""

    record: dict
    root: Path

    @property
    def model(self) -> str:
        return self.record["model"]

    @property
    def folder(self) -> Path:
        return store.inside(self.root, self.record.get("history"), "history").parent

    @cached_property
    def history(self) -> dict[str, np.ndarray]:
        """The run's validation history; an unreadable, empty or non-numeric file is skipped with a
        warning (the run keeps its table row, its curves are left out): every column reads empty."""
        path = store.inside(self.root, self.record.get("history"), "history")
        try:
            columns = read_csv(path)
            if "epoch" not in columns:
                raise ValueError("no epoch column")
        except (OSError, ValueError, UnicodeDecodeError, csv.Error) as e:
            warnings.warn(f"{path}: unreadable history ({str(e)[:120]}); this run's curves are left out")
            columns = {}
        return defaultdict(lambda: np.array([]), columns)

    @cached_property
    def per_user(self) -> dict[str, np.ndarray]:
        return read_per_user(store.inside(self.root, self.record.get("per_user"), "per_user"), self.record)

    def inference_ms_per_user(self) -> float:
        """Test-pass milliseconds per user (older records: eval seconds after the last validation)."""
        seconds = self.record.get("test_seconds")
        if seconds is None:
            evals = self.history.get("eval_seconds")
            seconds = self.record["eval_seconds"] - (float(evals[-1]) if evals is not None and len(evals) else 0.0)
        return 1000 * max(seconds, 0.0) / self.record.get("n_test_users", self.record["n_users"])


def variant_key(record: dict) -> str:
    """Runs differing only in seed are one variant: model, dataset file and `bench.runs.fields.variant`."""
    return json.dumps([record["model"], record.get("dataset_fingerprint", record["dataset"])]) + variant(record)


def study_label(record: dict) -> str:
    """A study table's dataset label: as `table_label`, less the split and history order, which a study
    may vary between its points (`bench ablate shuffled`); runs of one study around different protocols
    are told apart by their registered points (reports.settings.by_centre)."""
    return table_label(record, with_protocol=False)


def table_label(record: dict, with_protocol: bool = True) -> str:
    """Dataset name, plus each protocol switch that is not the default: runs of different splits or
    history orders never share a table."""
    return record["dataset"] + (protocol_note(record["protocol"]) if with_protocol else "") \
        + (" (seen items excluded)" if record["protocol"].get("exclude_seen") else "")


@dataclass
class Variant:
    """Runs of one model and config over seeds, with mean +- std helpers (percent)."""

    runs: list[Run]

    @property
    def model(self) -> str:
        return self.runs[0].model

    @property
    def record(self) -> dict:
        return self.runs[0].record

    @property
    def seeds(self) -> int:
        return len(self.runs)

    def values(self, split: str, metric: str) -> list[float]:
        return [100 * r.record[split][metric] for r in self.runs]

    def stat(self, split: str, metric: str) -> tuple[float, float | None]:
        """Mean and std over seeds; std is None for a single seed."""
        return store.mean_std(self.values(split, metric))

    def band(self, split: str, metric: str) -> tuple[float, float]:
        """Mean and std over seeds, std 0 for a single seed: for error bars."""
        mean, std = self.stat(split, metric)
        return mean, std or 0.0

    def per_user(self, metric: str) -> np.ndarray:
        """Per-user test values averaged over seeds (users are rows of the test split)."""
        return np.mean([r.per_user[metric] for r in self.runs], axis=0)

    def seen_values(self, seen: str, metric: str, evals: list[dict]) -> list[float] | None:
        """Test values (%) per seed with seen items kept or removed; None if some seed lacks them."""
        out = []
        for run in self.runs:
            source = seen_test(run, seen, evals)
            if source is None:
                return None
            out.append(100 * source[0][metric])
        return out

    def seen_per_user(self, seen: str, metric: str, evals: list[dict]) -> np.ndarray | None:
        """Per-user test values with seen items kept or removed, averaged over seeds."""
        values = []
        for run in self.runs:
            source = seen_test(run, seen, evals)
            if source is None:
                return None
            values.append(read_per_user(run.root / source[1], run.record)[metric])
        return np.mean(values, axis=0)

    def mean_of(self, key: str) -> float:
        return statistics.fmean(float(r.record[key]) for r in self.runs)


def seen_test(run: Run, seen: str, evals: list[dict]) -> tuple[dict, str] | None:
    """(test metrics, per-user file) of a run with seen items kept or removed, from the same checkpoint:
    the run's own record (runs since both settings are stored), else the protocol's own test, else
    a `bench eval` that changed only the seen-item setting."""
    record = run.record
    if seen in record.get("test_seen", {}) and seen in record.get("per_user_seen", {}):
        return record["test_seen"][seen], record["per_user_seen"][seen]
    exclude = seen == "removed"
    if bool(record["protocol"].get("exclude_seen")) == exclude and record.get("per_user"):
        return record["test"], record["per_user"]
    for e in evals:
        if (e["run_id"] == record["run_id"] and e["changes"] == {"exclude_seen": exclude}
                and "test" in e and e.get("per_user")):
            return e["test"], e["per_user"]
    return None


@dataclass
class Collection:
    runs: list[Run]                     # one per run id: what comparisons use
    tagged: list[Run] = field(default_factory=list)     # one per (study, run id): what ablations use
    journals: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)     # `bench eval` lines (evals.jsonl), latest per change

    def variants(self, runs: list[Run] | None = None) -> list[Variant]:
        groups: dict[str, list[Run]] = {}
        for run in runs if runs is not None else self.runs:
            groups.setdefault(variant_key(run.record), []).append(run)
        return [Variant(sorted(g, key=lambda r: r.record["seed"])) for g in groups.values()]

    def datasets(self) -> list[str]:
        return sorted({table_label(r.record) for r in self.runs})

    def chosen(self, dataset: str) -> dict[str, Variant]:
        """Per model, the variant with the best mean validation NDCG@10 on this dataset."""
        best: dict[str, Variant] = {}
        for v in self.variants([r for r in self.runs if table_label(r.record) == dataset]):
            if v.model not in best or v.stat("valid", SELECT_METRIC)[0] > best[v.model].stat("valid", SELECT_METRIC)[0]:
                best[v.model] = v
        return {m: best[m] for m in model_order(best)}

    def studies(self) -> dict[tuple[str, str, str], list[Run]]:
        """Runs tagged by `bench ablate` / `bench tune`, by (study, dataset, model)."""
        from bench.reports.settings import by_centre

        found: dict[tuple[str, str, str], list[Run]] = {}
        for r in self.tagged:
            found.setdefault((r.record["study"], study_label(r.record), r.model), []).append(r)
        return {(name, d, m): group for (study, d, m), runs in found.items()
                for name, group in by_centre(study, runs).items()}


def is_journal(path: Path) -> bool:
    """An Optuna journal file: JSON lines whose first holds an op_code."""
    try:
        with open(path, "rb") as f:
            first = f.readline(100_000)
        return b'"op_code"' in first and isinstance(json.loads(first), dict)
    except (OSError, ValueError):
        return False


def results_files(dirs: list[Path]) -> list[Path]:
    found = []
    for d in dirs:
        if not d.is_dir():
            raise BenchError(f"{d} is not a folder")
        found += sorted(d.rglob(store.RESULTS))
    return found


def collect(dirs: list[Path], rescored: bool = False) -> Collection:
    """Every run under the folders (latest line per run id), with its files checked.

    `rescored`: a run with a `bench eval` line that changed nothing (a re-scoring by the
    code of that evaluation) takes its metrics and per-user test values from the latest such line."""
    files = results_files(dirs)
    if not files:
        raise BenchError(f"no {store.RESULTS} under {', '.join(map(str, dirs))}")
    latest: dict[str, Run] = {}
    tagged: dict[tuple[str, str], Run] = {}         # a study may tag a copy of a run finished before
    for path in files:
        for record in store.read(path.parent):
            if record.get("skipped") or "run_id" not in record:
                continue
            run = Run(record, path.parent)
            keep_latest(latest, record["run_id"], run)
            if record.get("study"):
                keep_latest(tagged, (record.get("study_id", record["study"]), record["run_id"]), run)
    if not latest:
        raise BenchError(f"no finished runs in {', '.join(map(str, files))}")
    runs = sorted(latest.values(), key=run_order)
    evals = read_evals(files, latest)
    notes = [rescore(runs + list(tagged.values()), evals)] if rescored else []
    for run in runs + list(tagged.values()):
        for key in ("history", "per_user"):
            path = run.root / run.record.get(key, "")
            if not run.record.get(key) or not path.is_file():
                raise BenchError(f"run {run.record['run_id']} ({run.model}, {run.record['dataset']}, "
                                 f"seed {run.record['seed']}): {key} file {path} is missing")
    journals = sorted({p for d in dirs for pattern in ("*.log", "*journal*") for p in d.rglob(pattern)
                       if p.is_file() and not p.name.endswith(".lock") and is_journal(p)})
    return Collection(runs, sorted(tagged.values(), key=run_order), journals, notes, evals)


def rescore(runs: list[Run], evals: list[dict]) -> str:
    """Put each run's latest no-change re-evaluation (with test values) in place of its stored
    metrics; returns a note saying how many runs that touched."""
    latest: dict[str, dict] = {}
    for e in evals:
        if not e["changes"] and "test" in e and e.get("per_user"):
            if e["run_id"] not in latest or e.get("finished_at", "") >= latest[e["run_id"]].get("finished_at", ""):
                latest[e["run_id"]] = e
    touched = set()
    for run in runs:
        e = latest.get(run.record["run_id"])
        if e is not None:
            kept = {k: v for k, v in run.record.items() if k not in ("test_seen", "per_user_seen")}
            run.record = {**kept, **{s: e[s] for s in ("valid", "test") if s in e},
                          "per_user": e["per_user"], "rescored_by": e.get("git_revision")}
            touched.add(run.record["run_id"])
    return (f"--rescored: {len(touched)} of {len({r.record['run_id'] for r in runs})} runs take their metrics and "
            "per-user test values from their latest `bench eval` with no change (evals.jsonl); "
            "the others are as trained.")


def read_evals(files: list[Path], runs: dict[str, Run]) -> list[dict]:
    """`bench eval` lines of the collected runs; a repeated (run, change) keeps its latest line."""
    latest: dict[str, dict] = {}
    for path in files:
        for e in store.read(path.parent, EVALS):
            if e.get("run_id") in runs and "changes" in e:
                key = json.dumps([e["run_id"], e["changes"], sorted(k for k in ("valid", "test") if k in e)],
                                 sort_keys=True)
                if key not in latest or e.get("finished_at", "") >= latest[key].get("finished_at", ""):
                    latest[key] = e
    return sorted(latest.values(), key=lambda e: (e["dataset"], e["model"], e["seed"], e["run_id"],
                                                  json.dumps(e["changes"], sort_keys=True)))


def run_order(run: Run) -> tuple:
    return run.record["dataset"], run.model, run.record["seed"]


def keep_latest(index: dict, key, run: Run) -> None:
    old = index.get(key)
    if store.newer(run.record, old.record if old else None):
        index[key] = run


def trajectory_file(variant: Variant) -> Path | None:
    """The reverse-diffusion trajectory of the variant's first seed that has one."""
    for run in variant.runs:
        if (run.folder / TRAJECTORY).is_file():
            return run.folder / TRAJECTORY
    return None
