"""`bench recommend`: the top-k items per user from a finished run's best checkpoint.

Scored exactly as the test split is: each user's history is every item before the test target
(training items and the validation item, the last `max_len` of them), every item of the catalogue
is a candidate (padding never), seen items removed or kept as the run's protocol says unless
overridden, and users scored in the protocol's own batches, so a stochastic model draws the same
noise: a user whose test target ranked first has it as the first recommendation, with the same
score. Ids are the dataset's original ones where the file has them (`umap`, `smap`).
"""
from __future__ import annotations

import csv
from pathlib import Path

import torch

from bench import data
from bench.errors import BenchError
from bench.eval.protocol import eval_split, score_batches, seen_mask
from bench.eval.reeval import load_best
from bench.runs import results
from bench.runs.identity import dataset_fingerprint
from bench.train.loop import autocast

FORMATS = (".csv", ".parquet")
USERS_MAX_BYTES = 64 * 2**20        # a --users file: ids one per line (millions of them)


def find_record(run_dir: Path | None, run_id: str | None, runs: Path) -> tuple[Path, dict]:
    """(results folder, record) of a finished run, from its folder (<out>/runs/<dataset>/<model>/seed<S>-<id>)
    or from a run-id prefix among the records of `runs`."""
    if run_dir is not None:
        run_dir = Path(run_dir)
        if not run_dir.is_dir() or "-" not in run_dir.name or len(run_dir.parents) < 4:
            raise BenchError(f"{run_dir} is not a run folder (<out>/runs/<dataset>/<model>/seed<N>-<run id>)")
        out, run_id = run_dir.parents[3], run_dir.name.split("-", 1)[1]
    else:
        out = Path(runs)
    found = [r for r in results.latest_by_run(results.read(out)).values() if r["run_id"].startswith(run_id or "")]
    if len(found) != 1:
        what = "no finished run" if not found else f"{len(found)} finished runs"
        raise BenchError(f"{what} with run id {run_id}* in {out / results.RESULTS}")
    return out, found[0]


def read_users(path: Path, ds: data.Dataset) -> list[int]:
    """User indices of the original user ids listed one per line in `path`."""
    try:
        with open(path, "rb") as f:
            raw = f.read(USERS_MAX_BYTES + 1)        # a device (/dev/zero) or a huge file is never read whole
        if len(raw) > USERS_MAX_BYTES:
            raise BenchError(f"--users {path} is larger than {USERS_MAX_BYTES // 2**20} MB; "
                             "give a file of user ids, one per line")
        wanted = [line.strip() for line in raw.decode("utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise BenchError(f"cannot read --users {path}: {e}") from None
    if not wanted:
        raise BenchError(f"--users {path} lists no users (one user id per line)")
    ids = ds.user_ids or tuple(range(ds.n_users))
    index = {str(u): i for i, u in enumerate(ids)}
    missing = [u for u in wanted if u not in index]
    if missing:
        raise BenchError(f"--users {path}: {len(missing)} ids not in {ds.name} (first: {missing[0][:40]!r})")
    return list(dict.fromkeys(index[u] for u in wanted))


def recommend(out: Path, record: dict, k: int = 20, exclude_seen: bool | None = None, users: Path | None = None,
              device: str = "auto", data_dir: str | None = None) -> tuple[list[tuple], int]:
    """Rows (user, rank, item, score) of the top-k items of each user, in user order, and how many users
    got fewer than k: padding and removed (seen) items are never rows, so a user with fewer than k
    candidate items gets one row per candidate."""
    if k < 1:
        raise BenchError("--k must be at least 1")
    where = data.source(record)
    if not data.is_named(where) and not Path(where).exists():
        raise BenchError(f"run {record['run_id']} trained on {where}, which no longer exists")
    if dataset_fingerprint(where, data_dir) != record.get("dataset_fingerprint"):
        raise BenchError(f"dataset {where} has changed since run {record['run_id']} trained on it "
                         f"(fingerprint {record.get('dataset_fingerprint')}); recommend from the same file")
    ds = data.resolve(where, data_dir)
    if k > ds.n_items:
        raise BenchError(f"--k {k} is more than the {ds.n_items} items of {ds.name}")
    wanted = read_users(users, ds) if users else None
    model, _, train, protocol, dev = load_best(out, record, ds, device=device, exclude_seen=exclude_seen)
    split = eval_split(ds, "test", protocol)        # rows: every user, or a temporal split's test users
    row_of = {int(u): row for row, u in enumerate(split.users.tolist())}
    if wanted is not None and (absent := [u for u in wanted if u not in row_of]):
        raise BenchError(f"--users: {len(absent)} users have no test row under this run's {protocol.split} split "
                         f"(first: {(ds.user_ids or range(ds.n_users))[absent[0]]!r})")
    top_items = torch.empty(len(split.target), k, dtype=torch.long)
    top_scores = torch.empty(len(split.target), k)
    candidates = torch.empty(len(split.target), dtype=torch.long)     # items a row may be recommended
    with autocast(dev, train.precision):
        for batch_users, scores in score_batches(model.score, split, train.eval_batch_size, dev, ds.n_items):
            barred = torch.zeros_like(scores, dtype=torch.bool)
            barred[:, 0] = True                                            # padding is never an item
            if protocol.exclude_seen:
                barred |= seen_mask(split, batch_users, ds.n_items + 1)
            scores = scores.masked_fill(barred, float("-inf"))
            values, items = scores.topk(k, dim=1)                          # ties: the lower item id first
            top_items[batch_users], top_scores[batch_users] = items, values
            candidates[batch_users] = (~barred).sum(1)
    user_ids = ds.user_ids or tuple(range(ds.n_users))
    item_ids = ds.item_ids or tuple(range(ds.n_items + 1))
    rows = []
    chosen = [row_of[u] for u in wanted] if wanted is not None else range(len(split.target))
    for row in chosen:
        user = user_ids[int(split.users[row])]
        for rank in range(min(k, int(candidates[row]))):
            rows.append((user, rank + 1, item_ids[int(top_items[row, rank])], float(top_scores[row, rank])))
    return rows, sum(int(candidates[row]) < k for row in chosen)


def write(rows: list[tuple], path: Path) -> None:
    """CSV (always) or Parquet (with pyarrow installed), written atomically."""
    from bench.atomic import atomic_write

    header = ("user", "rank", "item", "score")
    if path.suffix == ".parquet":
        try:
            import pandas as pd
            import pyarrow  # noqa: F401
        except ImportError:
            raise BenchError("writing .parquet needs pyarrow (pip install pyarrow); or give a .csv path") from None
        frame = pd.DataFrame(rows, columns=header)
        atomic_write(path, lambda f: frame.to_parquet(f, index=False))
        return

    def to_csv(f) -> None:
        import io

        text = io.TextIOWrapper(f, encoding="utf-8", newline="")
        writer = csv.writer(text)
        writer.writerow(header)
        writer.writerows((u, r, i, f"{s:.9g}") for u, r, i, s in rows)
        text.flush()
        text.detach()
    atomic_write(path, to_csv)
