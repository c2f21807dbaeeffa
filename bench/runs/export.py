"""`bench export`: a compact copy of finished runs that `bench report`, `bench results` and
`bench status` read like the folders they came from.

Each run keeps its results record, its validation history and its per-user test ranks (seen items
kept, removed, and the protocol's own), gzipped, one `rank` column with a row per test user; the
reports derive every per-user metric from the ranks (`bench.eval.metrics`). Checkpoints, the
reverse-process trajectory stay behind; the `bench eval` lines of exported runs come along with their
per-user ranks (gzipped), and the plan's estimates of them (plans.jsonl). A Beauty run takes about 150 KB, so a
whole comparison fits in a git repository and can be shared, reported and tested on any machine.

Exports add to the destination: every results line (a rerun's, a study's tagged copy) is copied once;
a line already there is left as it is (the reports read the latest line of each run). Files are written
atomically before the record that names them, so an export cut short leaves the folder readable and
a rerun completes it (and removes the temporary files it left); two exports into one folder take
turns under its lock. Torch-free.
"""
from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass, field
from pathlib import Path

from bench.atomic import atomic_write, sweep
from bench.errors import BenchError
from bench.runs import results as store
from bench.runs.locks import holding

RANK = "rank"


@dataclass
class Exported:
    added: list[dict] = field(default_factory=list)     # records written to the destination
    present: int = 0                                     # runs the destination already held
    skipped: list[str] = field(default_factory=list)     # why a run could not be exported


def read_ranks(path: Path) -> list[int]:
    """The `rank` column of a per-user file (plain CSV, or gzipped as an export writes it)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as f:
        reader = csv.DictReader(f)
        if RANK not in (reader.fieldnames or []):
            raise ValueError(f"no {RANK} column")
        return [int(float(row[RANK])) for row in reader]


def ranks_bytes(ranks: list[int]) -> bytes:
    """Gzipped CSV of one rank per line, with a fixed timestamp: the same ranks give the same bytes."""
    text = RANK + "\n" + "".join(f"{r}\n" for r in ranks)
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(text.encode())
    return buf.getvalue()


def gz_name(relative: str) -> str:
    return relative if relative.endswith(".gz") else relative + ".gz"


def export_run(record: dict, src: Path, dest: Path) -> dict:
    """Write one run's files under `dest` (same relative paths; per-user files gzipped) and return
    the record that names them. Raises OSError/ValueError/BenchError when a file is unreadable."""
    out = dict(record)
    history = store.inside(src, record.get("history"), "history")
    target = store.inside(dest, record["history"], "history")
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, lambda f: f.write(history.read_bytes()))
    # the protocol's own test file holds the same ranks as one of the seen-item files: stored once
    seen_files = dict(record.get("per_user_seen") or {})
    own = seen_files.get(store.SEEN_KEY[bool(record.get("protocol", {}).get("exclude_seen"))])
    ranks = {}
    for key, rel in [("per_user", record.get("per_user")), *(
            (f"per_user_seen.{seen}", rel) for seen, rel in seen_files.items())]:
        ranks[rel] = read_ranks(store.inside(src, rel, key))
    if own is not None and ranks[own] == ranks[record["per_user"]]:
        out["per_user"] = gz_name(own)
    else:
        out["per_user"] = gz_name(record["per_user"])
    keep = {out["per_user"]} | {gz_name(rel) for rel in seen_files.values()}
    for rel, values in ranks.items():
        if gz_name(rel) in keep:
            data = ranks_bytes(values)
            atomic_write(store.inside(dest, gz_name(rel), "per_user"), lambda f, data=data: f.write(data))
    if seen_files:
        out["per_user_seen"] = {seen: gz_name(rel) for seen, rel in seen_files.items()}
    return out


def line_key(record: dict) -> tuple:
    """A results line's identity: its run, its finish and the study that tagged it (a study keeps a
    tagged copy of a run finished before)."""
    return record["run_id"], record.get("finished_at", ""), record.get("study_id", record.get("study", ""))


def export(sources: list[Path], dest: Path) -> Exported:
    """Copy every finished run's results lines and files under `sources` (folders holding results.jsonl,
    searched recursively) into `dest`."""
    dest = Path(dest)
    files = []
    for src in sources:
        if not Path(src).is_dir():
            raise BenchError(f"{src} is not a folder")
        if Path(src).resolve() == dest.resolve():
            raise BenchError(f"{src} is the destination itself; export to another folder")
        files += sorted(Path(src).rglob(store.RESULTS))
    files = [f for f in files if not f.resolve().is_relative_to(dest.resolve())]
    if not files:
        raise BenchError(f"no {store.RESULTS} under {', '.join(map(str, sources))}")
    with holding(dest, "export"):           # two exports into one folder: one after the other
        sweep(dest)                         # temporary files of an export killed mid-write
        return copy_runs(files, dest)


def copy_runs(files: list[Path], dest: Path) -> Exported:
    have = {line_key(r) for r in store.read(dest)}
    done = Exported()
    for path in files:
        for record in store.read(path.parent):
            if record.get("skipped") or "model" not in record:
                continue
            if line_key(record) in have:
                done.present += 1
                continue
            try:
                new = export_run(record, path.parent, dest)
            except (OSError, ValueError, KeyError, BenchError) as e:
                done.skipped.append(f"run {record['run_id']} ({record.get('model')}, {record.get('dataset')}, "
                                    f"seed {record.get('seed')}) in {path.parent}: {str(e)[:160]}")
                continue
            store.append(dest, new)
            have.add(line_key(record))
            done.added.append(new)
        side_lines(path.parent, dest, {line_key(r)[0] for r in store.read(dest)})
    return done


def side_lines(src: Path, dest: Path, runs: set[str]) -> None:
    """The plans.jsonl and evals.jsonl lines of runs that `dest` holds, each copied once; an
    evaluation's per-user ranks are gzipped beside it."""
    import json

    for name in (store.PLANS, store.EVALS):
        have = {json.dumps(r, sort_keys=True) for r in store.read(dest, name)}
        for line in store.read(src, name):
            if line.get("run_id") not in runs:
                continue
            new = dict(line)
            if name == store.EVALS:
                try:
                    new = export_eval(line, src, dest)
                except (OSError, ValueError, BenchError):
                    continue            # its ranks are gone: the line would name a missing file
            if json.dumps(new, sort_keys=True) not in have:
                store.append(dest, new, name)
                have.add(json.dumps(new, sort_keys=True))


def folder_bytes(dest: Path) -> int:
    return sum(p.stat().st_size for p in Path(dest).rglob("*") if p.is_file())



def export_eval(line: dict, src: Path, dest: Path) -> dict:
    """A `bench eval` line with its per-user ranks (the protocol's and each seen-item setting's) gzipped."""
    new = dict(line)
    files = [("per_user", line.get("per_user"))] + [(f"per_user_seen.{k}", v)
                                                    for k, v in (line.get("per_user_seen") or {}).items()]
    for key, rel in files:
        if not rel:
            continue
        data = ranks_bytes(read_ranks(store.inside(src, rel, key)))
        target = store.inside(dest, gz_name(rel), key)
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, lambda f, data=data: f.write(data))
    if line.get("per_user"):
        new["per_user"] = gz_name(line["per_user"])
    if line.get("per_user_seen"):
        new["per_user_seen"] = {k: gz_name(v) for k, v in line["per_user_seen"].items()}
    return new
