"""What a protocol makes of a dataset before any model sees it: the split and the order of histories.

`view(ds, protocol)` is the dataset a run trains and evaluates on. Leave-one-out with chronological
histories is the dataset as stored. Two other settings (docs/protocol.md):

- `split="temporal"`: a global timeline. The test cutoff is the time below which a `cutoff` share of
  all interactions lies; a test user has interactions on both sides of it, their target is the first
  interaction at or after it and their history everything before it. Validation is the same one
  window earlier (the window: from the test cutoff to the last interaction), and the model trains
  on everything before the validation cutoff. Needs a dataset with timestamps.
- `order="shuffled"`: every history the model trains on or is scored from is randomly permuted
  per user (one fixed permutation per dataset, the same for every model and seed); targets stay.
  How much a model loses against chronological order says how sequential the data are.
"""
from __future__ import annotations

import bisect
import dataclasses
import random

from bench.data import Dataset, EvalSet
from bench.errors import BenchError

SPLITS = ("leave-one-out", "temporal")
ORDERS = ("chronological", "shuffled")
SHUFFLE_SEED = 0


def check(split: str, order: str, cutoff: float) -> None:
    """One clear line for a bad --split / --order / --cutoff, before any work."""
    if split not in SPLITS:
        raise BenchError(f"unknown --split '{split}'; choose {' or '.join(SPLITS)}")
    if order not in ORDERS:
        raise BenchError(f"unknown order '{order}'; choose {' or '.join(ORDERS)}")
    if not 0.5 <= cutoff < 1:
        raise BenchError(f"--cutoff {cutoff}: the share of interactions before the test cutoff must be in [0.5, 1)")


def key(protocol) -> str:
    """The view a protocol asks for: '' for the dataset as stored."""
    parts = ([f"temporal@{protocol.cutoff:g}"] if protocol.split == "temporal" else []) \
        + (["shuffled"] if protocol.order == "shuffled" else [])
    return "+".join(parts)


def view(ds: Dataset, protocol) -> Dataset:
    """The dataset under the protocol's split and order (the stored dataset when both are default)."""
    check(protocol.split, protocol.order, protocol.cutoff)
    if ds.view:
        raise ValueError(f"{ds.name} is already a view ({ds.view})")
    out = temporal(ds, protocol.cutoff) if protocol.split == "temporal" else leave_one_out(ds)
    if protocol.order == "shuffled":
        out = shuffled(out)
    return dataclasses.replace(out, view=key(protocol)) if key(protocol) else ds


def leave_one_out(ds: Dataset) -> Dataset:
    users = tuple(range(ds.n_users))
    valid = EvalSet(users, tuple(ds.train), tuple(ds.val))
    test = EvalSet(users, tuple(s + [v] for s, v in zip(ds.train, ds.val)), tuple(ds.test))
    return dataclasses.replace(ds, eval_sets={"valid": valid, "test": test})


def shuffled(ds: Dataset) -> Dataset:
    """Every history permuted per user: the training sequences and both splits' histories."""
    rng = random.Random(SHUFFLE_SEED)

    def permuted(seq):
        seq = list(seq)
        rng.shuffle(seq)
        return seq

    train = [permuted(s) for s in ds.train]
    sets = {which: dataclasses.replace(e, histories=tuple(permuted(h) for h in e.histories))
            for which, e in ds.eval_sets.items()}
    return dataclasses.replace(ds, train=train, eval_sets=sets)


def temporal(ds: Dataset, cutoff: float) -> Dataset:
    if ds.times is None:
        raise BenchError(f"{ds.name} has no timestamps, so it has no temporal split; prepare it from a raw "
                         "log with a time column (`bench data prepare LOG --time-col COLUMN`)")
    full = [s + [v, t] for s, v, t in zip(ds.train, ds.val, ds.test)]
    stamps = sorted(x for ts in ds.times for x in ts)
    test_cut = stamps[min(int(cutoff * len(stamps)), len(stamps) - 1)]
    valid_cut = test_cut - (stamps[-1] - test_cut)
    if not stamps[0] < valid_cut:
        raise BenchError(f"{ds.name}: the validation window of the temporal split (cutoff {cutoff:g}) starts "
                         "before the first interaction; lower --cutoff")

    def window(start, end):
        users, histories, targets = [], [], []
        for u, (items, ts) in enumerate(zip(full, ds.times)):
            before = bisect.bisect_left(ts, start)       # items before `start`: the history
            if 0 < before < len(ts) and ts[before] < end:
                users.append(u)
                histories.append(items[:before])
                targets.append(items[before])
        return EvalSet(tuple(users), tuple(histories), tuple(targets))

    valid, test = window(valid_cut, test_cut), window(test_cut, float("inf"))
    if not valid.users or not test.users:
        raise BenchError(f"{ds.name}: the temporal split (cutoff {cutoff:g}) leaves no "
                         f"{'validation' if not valid.users else 'test'} user; change --cutoff")
    train = [items[:bisect.bisect_left(ts, valid_cut)] for items, ts in zip(full, ds.times)]
    return dataclasses.replace(ds, train=train, eval_sets={"valid": valid, "test": test})


def for_protocol(ds: Dataset, protocol) -> Dataset:
    """`ds` as the protocol sees it: itself when it already is that view (or needs none)."""
    if ds.view == key(protocol):
        return ds
    if ds.view:
        raise ValueError(f"dataset view {ds.view!r} is not the protocol's ({key(protocol) or 'as stored'!r})")
    return view(ds, protocol)


def describe(ds: Dataset) -> list[str]:
    """What a view did, for the dataset summary a run prints (nothing for the dataset as stored)."""
    if not ds.view:
        return []
    lines = []
    if ds.view.startswith("temporal"):
        valid, test = ds.eval_sets["valid"], ds.eval_sets["test"]
        trained = sum(len(s) for s in ds.train)
        lines.append(f"  temporal split: {len(test.users):,} test users, {len(valid.users):,} validation users, "
                     f"{trained:,} interactions to train on (before the validation window)")
    if "shuffled" in ds.view:
        lines.append(f"  histories shuffled per user (one fixed permutation, seed {SHUFFLE_SEED})")
    return lines
