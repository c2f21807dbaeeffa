"""The evaluation protocol every number obeys (docs/protocol.md).

Leave-one-out: validation predicts `val[u]` from `train[u]`; test predicts
`test[u]` from `train[u] + val[u]`. Histories are the last `max_len` items,
left-padded with 0. Ranking is over all items 1..N (padding is never a
candidate); ties count against the target; metrics are per user.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Literal

import torch
from torch import Tensor

from bench.data import Dataset
from bench.eval.metrics import metrics_from_ranks as per_user_metrics
from bench.train.memory import score_batch


@dataclass(frozen=True)
class Protocol:
    max_len: int = 50
    exclude_seen: bool = False
    ks: tuple[int, ...] = (5, 10, 20)
    split: str = "leave-one-out"        # or "temporal" (bench.eval.splits)
    ranking: str = "full"
    ties: str = "pessimistic"
    order: str = "chronological"        # or "shuffled": histories permuted per user (bench.eval.splits)
    cutoff: float = 0.9                 # temporal split: the share of interactions before the test cutoff

    def to_dict(self) -> dict:
        return asdict(self)

    def metric_names(self) -> list[str]:
        return [f"{m}@{k}" for m in ("hr", "ndcg") for k in self.ks] + ["mrr"]


@dataclass(frozen=True)
class EvalSplit:
    """Inputs and targets of one split, one row per user (row = user index)."""

    history: Tensor   # (U, max_len) long, left-padded
    lengths: Tensor   # (U,) real history lengths (<= max_len)
    target: Tensor    # (U,)
    seen_ptr: Tensor  # (U+1,) CSR offsets into seen_idx: the whole history, untruncated
    seen_idx: Tensor  # (nnz,)
    users: Tensor     # (U,) the user index of each row (all users in order under leave-one-out)


def left_pad(seqs: list[list[int]], length: int) -> Tensor:
    out = torch.zeros(len(seqs), length, dtype=torch.long)
    for row, seq in enumerate(seqs):
        tail = seq[-length:]
        if tail:
            out[row, length - len(tail):] = torch.tensor(tail, dtype=torch.long)
    return out


def eval_split(ds: Dataset, which: Literal["valid", "test"], protocol: Protocol) -> EvalSplit:
    """One split's rows under the protocol: `ds` as stored for leave-one-out in chronological order,
    else the protocol's view of it (`bench.eval.splits.view`; a run applies it once, up front)."""
    from bench.eval import splits

    if which not in ("valid", "test"):
        raise ValueError(f"unknown split {which!r}")
    ds = splits.for_protocol(ds, protocol)
    if ds.eval_sets is None:
        histories, targets = (ds.train, ds.val) if which == "valid" else \
            ([s + [v] for s, v in zip(ds.train, ds.val)], ds.test)
        users = torch.arange(len(targets))
    else:
        rows = ds.eval_sets[which]
        histories, targets, users = list(rows.histories), list(rows.targets), torch.tensor(rows.users, dtype=torch.long)
    seen = [sorted(set(h)) for h in histories]
    ptr = torch.tensor([0] + [len(s) for s in seen], dtype=torch.long).cumsum(0)
    idx = torch.tensor([i for s in seen for i in s], dtype=torch.long)
    return EvalSplit(
        history=left_pad(histories, protocol.max_len),
        lengths=torch.tensor([min(len(h), protocol.max_len) for h in histories], dtype=torch.long),
        target=torch.tensor(targets, dtype=torch.long),
        seen_ptr=ptr,
        seen_idx=idx,
        users=users,
    )


def seen_mask(split: EvalSplit, users: Tensor, n_cols: int) -> Tensor:
    """(B, n_cols) bool, True at every item in each user's full history."""
    starts, ends = split.seen_ptr[users], split.seen_ptr[users + 1]
    counts = ends - starts
    rows = torch.repeat_interleave(torch.arange(len(users)), counts)
    offsets = torch.arange(int(counts.sum())) - torch.repeat_interleave(counts.cumsum(0) - counts, counts)
    cols = split.seen_idx[torch.repeat_interleave(starts, counts) + offsets]
    mask = torch.zeros(len(users), n_cols, dtype=torch.bool)
    mask[rows, cols] = True
    return mask


def ranks_from_scores(scores: Tensor, target: Tensor, exclude: Tensor | None = None) -> Tensor:
    """Pessimistic 1-based rank of each target among candidates 1..N.

    scores: (B, N+1); column 0 is padding and never a candidate.
    exclude: optional (B, N+1) bool of items removed from the candidates
    (the target itself is always kept).
    rank = 1 + #(candidates other than the target scoring >= the target).
    A NaN target score ranks last.
    """
    scores = scores.float()
    target_score = scores.gather(1, target[:, None])                  # (B, 1)
    n_candidates = torch.full_like(target, scores.shape[1] - 1)
    if exclude is not None:
        exclude = exclude.to(scores.device).scatter(1, target[:, None], False)
        scores = scores.masked_fill(exclude, float("nan"))            # NaN >= x is False: never counted
        n_candidates = n_candidates - exclude[:, 1:].sum(1)
    ranks = (scores[:, 1:] >= target_score).sum(1)                   # includes the target itself
    return torch.where(torch.isnan(target_score[:, 0]), n_candidates, ranks)


def metrics_from_ranks(ranks: Tensor, ks: tuple[int, ...]) -> dict[str, Tensor]:
    """Per-user metrics (float64 tensors of shape (U,)) from 1-based ranks (`bench.eval.metrics`)."""
    return {name: torch.from_numpy(v) for name, v in per_user_metrics(ranks.cpu().numpy(), ks).items()}


def mean_metrics(per_user: dict[str, Tensor]) -> dict[str, float]:
    return {name: float(values.mean()) for name, values in per_user.items()}


ScoreFn = Callable[[dict[str, Tensor]], Tensor]


def rank_split(score: ScoreFn, split: EvalSplit, protocol: Protocol, batch_size: int,
               device: torch.device, n_items: int) -> Tensor:
    """Ranks (U,) of every user's target, in user order, under the protocol's seen-item setting."""
    return rank_split_seen(score, split, batch_size, device, n_items, (protocol.exclude_seen,))[protocol.exclude_seen]


@torch.no_grad()
def score_batches(score: ScoreFn, split: EvalSplit, batch_size: int, device: torch.device, n_items: int):
    """(users, fp32 scores (B, N+1) on the CPU) for every batch of a split, in the one batching every
    evaluation uses: users ordered by history length, each batch cut to its longest real history
    (with left padding that changes no score). A stochastic scorer draws per batch, so anything that
    must match the protocol's figures (rankings, exported recommendations) scores through here."""
    batch_size = score_batch(batch_size, n_items)     # a catalogue of millions: fewer users per block
    order = torch.argsort(split.lengths, stable=True)
    width = split.history.shape[1]
    for start in range(0, len(order), batch_size):
        users = order[start:start + batch_size]
        longest = max(int(split.lengths[users].max()), 1)
        scores = score({"history": split.history[users, width - longest:].to(device)})
        if scores.shape != (len(users), n_items + 1):
            raise RuntimeError(f"score() returned shape {tuple(scores.shape)}, expected {(len(users), n_items + 1)}")
        yield users, scores.float().cpu()


@torch.no_grad()
def rank_split_seen(score: ScoreFn, split: EvalSplit, batch_size: int, device: torch.device, n_items: int,
                    settings: tuple[bool, ...] = (False, True)) -> dict[bool, Tensor]:
    """{exclude_seen: ranks (U,)} for each setting, from one scoring pass.

    Both seen-item settings rank the same scores, so a stochastic scorer's
    draws are shared. Users are batched by history length so that each batch
    is cut to its longest real history; with left padding that changes no score.
    """
    ranks = {s: torch.empty(len(split.target), dtype=torch.long) for s in settings}
    for users, scores in score_batches(score, split, batch_size, device, n_items):
        for exclude_seen in settings:
            exclude = seen_mask(split, users, n_items + 1) if exclude_seen else None
            ranks[exclude_seen][users] = ranks_from_scores(scores, split.target[users], exclude)
    return ranks
