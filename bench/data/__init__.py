"""Datasets in the DiffuRec leave-one-out form, loaded safely and validated.

A dataset is, per user, a chronological training sequence plus one validation
and one test item. Item ids are 1..n_items; 0 is padding.
"""
from __future__ import annotations

import io
import os
import pickle
import random
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import BenchError

NAMED = ("beauty", "toys", "ml-1m")
BUILTIN = ("synthetic",)
REQUIRED_KEYS = ("train", "val", "test", "smap")


@dataclass(frozen=True)
class EvalSet:
    """One split's evaluation rows: the user index, the history the model reads and the target."""
    users: tuple[int, ...]
    histories: tuple[list[int], ...]
    targets: tuple[int, ...]


@dataclass(frozen=True)
class Dataset:
    name: str
    train: list[list[int]]  # user -> chronological items, the training part
    val: list[int]          # user -> validation item (second-to-last)
    test: list[int]         # user -> test item (last)
    n_items: int
    # the original ids, where the file has them: user index -> user id, item id -> item id (index 0 unused)
    user_ids: tuple | None = field(default=None, compare=False, repr=False)
    item_ids: tuple | None = field(default=None, compare=False, repr=False)
    # what reading it dropped, for a dataset read from a raw log (bench.data.prepare.Summary), else None
    summary: object = field(default=None, compare=False, repr=False)
    # per user, the time of each interaction of train + val + test (nondecreasing), where the file has them
    times: tuple | None = field(default=None, compare=False, repr=False)
    # set by bench.eval.splits.view: the protocol's split and order ('' = as stored) and its eval rows
    view: str = field(default="", compare=False)
    eval_sets: dict | None = field(default=None, compare=False, repr=False)

    @property
    def n_users(self) -> int:
        return len(self.train)

    def stats(self) -> dict:
        inter = sum(len(s) for s in self.train) + 2 * self.n_users
        return {
            "users": self.n_users,
            "items": self.n_items,
            "interactions": inter,
            "avg_length": inter / self.n_users,
            "density": inter / (self.n_users * self.n_items),
        }


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """`--data-dir`, else $BENCH_DATA_DIR, else a per-user cache directory."""
    from bench.cli.paths import input_dir

    if explicit:
        input_dir(Path(explicit))
        return Path(explicit)
    if os.environ.get("BENCH_DATA_DIR"):
        input_dir(Path(os.environ["BENCH_DATA_DIR"]), "BENCH_DATA_DIR")
        return Path(os.environ["BENCH_DATA_DIR"])
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "bench" / "data"


class _NoGlobals(pickle.Unpickler):
    """Unpickler that refuses every global, so a pickle cannot run code."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refused global {module}.{name}")


def safe_unpickle(raw: bytes, source: str) -> object:
    try:
        return _NoGlobals(io.BytesIO(raw)).load()
    except pickle.UnpicklingError as e:
        if "refused global" in str(e):
            raise BenchError(f"{source}: pickle contains code references ({e}); refusing to load it") from None
        raise BenchError(f"{source}: corrupt pickle ({e})") from None
    except (EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError, MemoryError,
            RecursionError, OverflowError) as e:
        raise BenchError(f"{source}: corrupt or truncated pickle ({type(e).__name__}: {str(e)[:120]})") from None


def excerpt(value: object) -> str:
    """A short, safe repr of a value from a file: nested or huge values are cut, never echoed whole."""
    import reprlib

    short = reprlib.Repr()
    short.maxlevel, short.maxstring, short.maxother, short.maxlist, short.maxdict, short.maxlong = 2, 40, 40, 4, 4, 40
    return short.repr(value)


def from_split_dict(raw: object, name: str, max_interactions: int | None = None) -> Dataset:
    """Validate a DiffuRec-format dict and turn it into a Dataset."""
    if not isinstance(raw, dict):
        raise BenchError(f"{name}: expected a dict with keys {list(REQUIRED_KEYS)}, got {type(raw).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise BenchError(f"{name}: missing keys {missing}")
    train, val, test, smap = raw["train"], raw["val"], raw["test"], raw["smap"]
    for key, value in (("train", train), ("val", val), ("test", test), ("smap", smap)):
        if not isinstance(value, dict):
            raise BenchError(f"{name}: '{key}' must be a dict, got {type(value).__name__}")
    n_users, n_items = len(train), len(smap)
    if n_users == 0 or n_items == 0:
        raise BenchError(f"{name}: no users or no items")
    if not all(type(k) is int for k in train) or sorted(train) != list(range(n_users)):
        raise BenchError(f"{name}: user indices in 'train' must be 0..{n_users - 1}")
    if max_interactions is not None:
        # each interaction of an honest pickle costs at least one byte of it; far more means lists shared
        # through the pickle memo (a few bytes each) that would expand into gigabytes here
        total = sum(len(seq) if isinstance(seq, list) else 0 for seq in train.values()) + 2 * n_users
        if total > max_interactions:
            raise BenchError(f"{name}: {total:,} interactions in a {max_interactions:,}-byte file; "
                             "refusing a file whose lists are shared many times over")
    seqs, vals, tests = [], [], []
    for u in range(n_users):
        seq, v, t = train[u], val.get(u), test.get(u)
        if not isinstance(seq, list) or not isinstance(v, list) or not isinstance(t, list) or len(v) != 1 or len(t) != 1:
            raise BenchError(f"{name}: user {u} lacks a train list or a single val/test item")
        if len(seq) < 1:
            raise BenchError(f"{name}: user {u} has fewer than 3 items")
        items = seq + v + t
        if not all(type(i) is int and 1 <= i <= n_items for i in items):
            bad = next(i for i in items if not (type(i) is int and 1 <= i <= n_items))
            what = "out of range" if type(bad) is int else f"(a {type(bad).__name__}) that is not an int"
            raise BenchError(f"{name}: user {u} has item id {excerpt(bad)} {what} 1..{n_items}")
        seqs.append(seq)
        vals.append(v[0])
        tests.append(t[0])
    if len(val) != n_users or len(test) != n_users:
        raise BenchError(f"{name}: 'val' and 'test' must have one entry per user ({n_users})")
    return Dataset(name, seqs, vals, tests, n_items, inverse(raw.get("umap"), 0, n_users),
                   inverse(smap, 1, n_items + 1), times=read_times(raw.get("time"), seqs, name))


def read_times(times: object, seqs: list[list[int]], name: str) -> tuple | None:
    """The optional 'time' key: user index -> one number per interaction of train + val + test,
    nondecreasing (the order of the sequence)."""
    if times is None:
        return None
    if not isinstance(times, dict) or len(times) != len(seqs):
        raise BenchError(f"{name}: 'time' must map every user index to a list of timestamps")
    out = []
    for u, seq in enumerate(seqs):
        ts = times.get(u)
        if not isinstance(ts, list) or len(ts) != len(seq) + 2 \
                or not all(type(x) in (int, float) for x in ts):
            raise BenchError(f"{name}: user {u} needs {len(seq) + 2} numeric timestamps in 'time'")
        if any(b < a for a, b in zip(ts, ts[1:])):
            raise BenchError(f"{name}: user {u}'s timestamps in 'time' go back in time")
        out.append(tuple(ts))
    return tuple(out)


def inverse(mapping: object, start: int, stop: int) -> tuple | None:
    """(None, ...) original id of each index start..stop-1 from a {original id: index} map, or None
    when the map is absent or not one-to-one onto that range."""
    if not isinstance(mapping, dict) or len(mapping) != stop - start:
        return None
    ids: list = [None] * stop
    for original, index in mapping.items():
        if type(index) is not int or not start <= index < stop or ids[index] is not None \
                or not isinstance(original, (int, str)):
            return None
        ids[index] = original
    return tuple(ids)


def load_pickle(path: Path, name: str | None = None) -> Dataset:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise BenchError(f"cannot read {path}: {e.strerror}") from None
    return from_split_dict(safe_unpickle(raw, str(path)), name or path.stem, max_interactions=len(raw))


def synthetic(n_users: int = 600, n_items: int = 200, seed: int = 0) -> Dataset:
    """A small dataset whose next item depends on the order of the history, generated deterministically.

    The items form 20 topics, each a fixed cycle of items. A user follows two topics: at
    each step they take the next item of the topic they are in (probability 0.55), switch
    to their other topic and take its next item after the one they saw there last (0.25),
    or pick an item by popularity (a Zipf law, 0.2) that moves neither topic along.
    Popularity alone predicts only the last kind; the last item alone misses the switches,
    which need the earlier history. So MostPop stays low and order-aware models separate
    by how much of the history they use.
    """
    rng = random.Random(seed)
    items = list(range(1, n_items + 1))
    rng.shuffle(items)
    n_topics = 20
    cycles = [items[t::n_topics] for t in range(n_topics)]
    by_rank = items[:]
    rng.shuffle(by_rank)
    weights = [1.0 / (rank + 1) for rank in range(n_items)]
    seqs = []
    for _ in range(n_users):
        topics = rng.sample(range(n_topics), 2)
        where = [rng.randrange(len(cycles[t])) for t in topics]
        current = 0
        seq = []
        for _ in range(rng.randint(8, 24)):
            r = rng.random()
            if r < 0.8:
                if r >= 0.55:
                    current = 1 - current
                cycle = cycles[topics[current]]
                where[current] = (where[current] + 1) % len(cycle)
                seq.append(cycle[where[current]])
            else:
                seq.append(rng.choices(by_rank, weights)[0])
        seqs.append(seq)
    # a global timeline, drawn apart from the items (which stay what they were before it): each user
    # starts on a day of the first 300 and comes back every 1-10 days
    clock = random.Random(seed + 1)
    times = []
    for seq in seqs:
        day = clock.randrange(300)
        stamps = []
        for _ in seq:
            stamps.append(day * 86_400)
            day += clock.randint(1, 10)
        times.append(tuple(stamps))
    return Dataset("synthetic", [s[:-2] for s in seqs], [s[-2] for s in seqs], [s[-1] for s in seqs], n_items,
                   times=tuple(times))


def is_named(spec: str) -> bool:
    """Whether `spec` names a dataset of the harness (not a file path)."""
    return spec in NAMED or spec in BUILTIN


def source(record: dict) -> str:
    """What to resolve a run's dataset from: the file path it trained on, else its name."""
    return record.get("dataset_path") or record["dataset"]


def resolve(spec: str, directory: Path | None = None, fetch_missing: bool = False) -> Dataset:
    """A dataset by name (beauty, toys, ml-1m, synthetic) or by file path."""
    from bench.data import fetch
    from bench.data import tsv

    if spec in BUILTIN:
        return synthetic()
    if spec in NAMED:
        path = data_dir(directory) / f"{spec}.pkl"
        if not path.exists():
            if not fetch_missing:
                raise BenchError(f"dataset '{spec}' not found at {path}; run `bench data fetch {spec}`")
            fetch.fetch(spec, data_dir(directory))
        fetch.verify_pinned(spec, path)
        return load_pickle(path, spec)
    path = Path(spec)
    if path.suffix in (".pkl", ".pickle") or (path.exists() and path.suffix not in (".tsv", ".txt", ".csv")):
        if not path.exists():
            raise BenchError(f"dataset file not found: {path}")
        return load_pickle(path)
    if path.suffix in (".tsv", ".txt", ".csv"):
        return tsv.load_interactions(path)
    raise BenchError(f"unknown dataset '{spec}'; choose one of {', '.join(NAMED + BUILTIN)} or give a .pkl/.tsv path")
