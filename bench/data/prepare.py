"""Raw interaction logs into the harness's dataset format: `bench data prepare`.

A log is a table of (user, item, time[, rating]) rows: CSV, TSV, Parquet, or a RecBole atomic `.inter` file
(tab-separated, a header of `name:type` fields). What happens to it, in this order, each step counted:

1. rows with an empty user, item or time are dropped;
2. with `min_rating`, rows rated below it are dropped (explicit feedback made implicit);
3. exact duplicate (user, item, time) rows are dropped;
4. k-core filtering: users with fewer than `min_user` interactions and items with fewer than `min_item`
   are dropped, again and again until none is left to drop (a fixed point, as the DiffuRec and S3Rec
   preprocessing does);
5. users with fewer than 3 interactions are dropped: leave-one-out needs a training item, a validation
   item and a test item.

Each user's items are then ordered by time (ties keep the file's order), the last is the test item, the one
before it the validation item. Items are numbered 1..N and users 0..U-1 in order of first appearance in the
file; `umap` and `smap` map the original ids to them. Times are numbers (e.g. Unix seconds) or ISO-8601
strings, one kind per file.
"""
from __future__ import annotations

import math
import pickle
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench.data import Dataset, excerpt
from bench.errors import BenchError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".parquet": "parquet", ".pq": "parquet", ".inter": "inter"}
# RecBole's atomic-file column names, the defaults for a .inter file
INTER_COLUMNS = {"user": "user_id", "item": "item_id", "time": "timestamp", "rating": "rating"}


@dataclass
class Summary:
    """What a log became: the dataset's size and how many rows, users and items each rule dropped."""
    rows: int = 0                           # rows read
    empty: int = 0                          # rows with an empty user, item or time
    below_rating: int = 0                   # rows rated under the threshold
    duplicates: int = 0                     # exact duplicate (user, item, time) rows
    core_rows: int = 0                      # rows the k-core filtering dropped
    core_users: int = 0                     # ... and users
    core_items: int = 0                     # ... and items
    short_users: int = 0                    # users left with fewer than 3 interactions
    short_rows: int = 0                     # ... and their rows
    users: int = 0
    items: int = 0
    interactions: int = 0
    rules: dict = field(default_factory=dict)

    def lines(self, name: str) -> list[str]:
        out = [f"{name}: {self.users:,} users, {self.items:,} items, {self.interactions:,} interactions"
               + (f" (from {self.rows:,} rows)" if self.rows else "")]
        dropped = [(self.empty, f"{self.empty:,} rows with an empty user, item or time"),
                   (self.below_rating, f"{self.below_rating:,} rows rated below {self.rules.get('min_rating')}"),
                   (self.duplicates, f"{self.duplicates:,} exact duplicate rows"),
                   (self.core_rows, f"{self.core_rows:,} rows ({self.core_users:,} users, {self.core_items:,} items) "
                                    f"by the k-core filter (users >= {self.rules.get('min_user')}, "
                                    f"items >= {self.rules.get('min_item')})"),
                   (self.short_users, f"{self.short_users:,} users with fewer than 3 interactions "
                                      f"({self.short_rows:,} rows)")]
        out += [f"  dropped {why}" for n, why in dropped if n]
        return out


def dataset_summary(ds: Dataset) -> Summary:
    """The summary of a dataset read without a log (a prepared or benchmark pickle): its size only."""
    s = getattr(ds, "summary", None)
    if isinstance(s, Summary):
        return s
    return Summary(users=ds.n_users, items=ds.n_items, interactions=ds.stats()["interactions"])


def read_log(path: Path, user_col: str | None = None, item_col: str | None = None, time_col: str | None = None,
             rating_col: str | None = None, sep: str | None = None):
    """The log as a DataFrame with columns user, item, time (and rating when asked for), in file order."""
    import pandas as pd

    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise BenchError(f"{path}: unknown log format '{path.suffix}'; use .csv, .tsv, .txt, .parquet or .inter")
    if not path.is_file():
        raise BenchError(f"log file not found: {path}")
    defaults = INTER_COLUMNS if kind == "inter" else {"user": "user", "item": "item", "time": "timestamp",
                                                       "rating": "rating"}
    wanted = {"user": user_col or defaults["user"], "item": item_col or defaults["item"],
              "time": time_col or defaults["time"]}
    if rating_col:
        wanted["rating"] = rating_col
    try:
        if kind == "parquet":
            try:
                frame = pd.read_parquet(path)
            except ImportError:
                raise BenchError("reading Parquet needs pyarrow: pip install 'bench[parquet]'") from None
        else:
            frame = pd.read_csv(path, sep=sep or ("," if kind == "csv" else "\t"), dtype=str,
                                keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError as e:
        raise BenchError(f"{path}: not UTF-8 ({e.reason} at byte {e.start}); save the file as UTF-8") from None
    except (ValueError, OSError) as e:          # pandas' parser errors are ValueErrors
        raise BenchError(f"{path}: cannot read it as {kind}: {str(e).splitlines()[0][:200]}") from None
    if kind == "inter":                         # RecBole headers name fields as name:type
        frame.columns = [str(c).split(":", 1)[0] for c in frame.columns]
    missing = [f"{role} column '{col}'" for role, col in wanted.items() if col not in frame.columns]
    if missing:
        raise BenchError(f"{path}: no {', no '.join(missing)}; the file has {excerpt(list(map(str, frame.columns)))} "
                         "(choose with --user-col, --item-col, --time-col, --rating-col)")
    return frame[list(wanted.values())].set_axis(list(wanted), axis=1)


def seconds(column, path: Path):
    """Times as float seconds: numbers as they are, or ISO-8601 strings (UTC where no zone is given), one
    kind per file, the first row's."""
    import pandas as pd

    text = column.astype(str).str.strip()
    numeric = pd.to_numeric(text, errors="coerce")
    if pd.notna(numeric.iloc[0]):
        bad = numeric.isna() | ~numeric.map(lambda x: math.isfinite(x) if pd.notna(x) else False)
        what = "is not a finite number (the first row's time is a number)"
        values = numeric
    else:
        values = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
        bad = values.isna()
        what = "is neither a number nor an ISO-8601 date (e.g. 2014-03-01T10:00:00Z)"
    if bad.any():
        at = bad.to_numpy().argmax()
        raise BenchError(f"{path}: row {int(text.index[at]) + 2}: time {excerpt(text.iloc[at])} {what}")
    if pd.notna(numeric.iloc[0]):
        return values.astype(float)
    return (values - pd.Timestamp(0, tz="UTC")).dt.total_seconds()


def native(value):
    """An id as a plain int where it is a whole number, else its text: the only kinds a prepared file holds."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.lstrip("-").isdigit() and not (len(value) > 1 and value.startswith("0")):
        return int(value)
    return value if isinstance(value, (int, str)) else str(value)


def k_core(events: list[tuple], min_user: int, min_item: int) -> list[tuple]:
    """Drop users with fewer than `min_user` events and items with fewer than `min_item` until none is left."""
    from collections import Counter

    while True:
        users = Counter(e[0] for e in events)
        items = Counter(e[1] for e in events)
        kept = [e for e in events if users[e[0]] >= min_user and items[e[1]] >= min_item]
        if len(kept) == len(events):
            return kept
        events = kept


def split(events: list[tuple], summary: Summary, min_user: int = 0, min_item: int = 0) -> dict:
    """(user, item, time) events, in file order, into the harness's split dict, steps 3-5 of the module's
    docstring, counted in `summary`."""
    from collections import defaultdict

    seen, unique = set(), []
    for e in events:
        if e in seen:
            summary.duplicates += 1
        else:
            seen.add(e)
            unique.append(e)
    kept = k_core(unique, min_user, min_item) if max(min_user, min_item) > 1 else unique
    summary.core_rows = len(unique) - len(kept)
    summary.core_users = len({e[0] for e in unique}) - len({e[0] for e in kept})
    summary.core_items = len({e[1] for e in unique}) - len({e[1] for e in kept})
    summary.rules.update(min_user=min_user, min_item=min_item)
    by_user: dict = defaultdict(list)
    for order, (u, i, t) in enumerate(kept):
        by_user[u].append((t, order, i))
    umap, smap, train, val, test, times = {}, {}, {}, {}, {}, {}
    for u, rows in by_user.items():
        if len(rows) < 3:
            summary.short_users += 1
            summary.short_rows += len(rows)
            continue
        rows.sort()
        ids = [smap.setdefault(i, len(smap) + 1) for _, _, i in rows]
        index = umap.setdefault(u, len(umap))
        train[index], val[index], test[index] = ids[:-2], [ids[-2]], [ids[-1]]
        times[index] = [t for t, _, _ in rows]       # kept for the temporal split (bench.eval.splits)
    summary.users, summary.items = len(umap), len(smap)
    summary.interactions = sum(len(s) for s in train.values()) + 2 * len(train)
    return {"train": train, "val": val, "test": test, "umap": umap, "smap": smap, "time": times}


def prepare(path: Path, user_col=None, item_col=None, time_col=None, rating_col=None, min_rating=None,
            min_user: int = 0, min_item: int = 0, sep: str | None = None) -> tuple[dict, Summary]:
    """A raw log read and filtered into the harness's split dict, with what each rule dropped."""
    if min_rating is not None and not rating_col:
        rating_col = INTER_COLUMNS["rating"] if path.suffix.lower() == ".inter" else "rating"
    for name, k in (("--min-user", min_user), ("--min-item", min_item)):
        if k < 0:
            raise BenchError(f"{name} must be 0 or more, got {k}")
    frame = read_log(path, user_col, item_col, time_col, rating_col, sep)
    summary = Summary(rows=len(frame), rules={"min_rating": min_rating})
    blank = frame[["user", "item", "time"]].astype(str).apply(lambda c: c.str.strip().isin(["", "nan", "None", "NaT"]))
    empty = blank.any(axis=1)
    summary.empty = int(empty.sum())
    frame = frame[~empty]
    if min_rating is not None:
        import pandas as pd

        rating = pd.to_numeric(frame["rating"].astype(str).str.strip(), errors="coerce")
        if rating.isna().any():
            row = int(rating.isna().to_numpy().argmax())
            raise BenchError(f"{path}: row {int(frame.index[row]) + 2}: rating {excerpt(frame['rating'].iloc[row])} "
                             "is not a number")
        low = rating < min_rating
        summary.below_rating = int(low.sum())
        frame = frame[~low]
    if frame.empty:
        raise BenchError(f"{path}: no rows left to prepare ({summary.rows:,} read)")
    times = seconds(frame["time"], path)
    events = list(zip(map(native, frame["user"]), map(native, frame["item"]), times.tolist()))
    raw = split(events, summary, min_user, min_item)
    if not raw["train"]:
        raise BenchError(f"{path}: no user has 3 or more interactions after the filters "
                         f"({'; '.join(line.strip() for line in summary.lines(path.name)[1:])})")
    return raw, summary


def write(raw: dict, out: Path) -> None:
    """The split dict as a pickle of builtins only (protocol 4), written atomically."""
    from bench.atomic import atomic_write

    if out.suffix not in (".pkl", ".pickle"):
        raise BenchError(f"--out must end in .pkl, got {out.name}")
    atomic_write(out, lambda f: pickle.dump(raw, f, protocol=4))


def print_summary(summary: Summary, name: str, stream=None) -> None:
    for line in summary.lines(name):
        print(line, file=stream or sys.stderr)
