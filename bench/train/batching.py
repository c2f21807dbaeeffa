"""Training examples built from the training sequences, and their batches.

Two formats cover the registered models:
- "sequence": windows of up to max_len+1 items; input = window[:-1] and the
  next-item target at every position (0 = no target). Long sequences are cut
  into consecutive windows from the end, so every training item is a target
  exactly once. Used by SASRec, BERT4Rec, SVAE.
- "prefix": every prefix of a training sequence predicts its next item, as
  DiffuRec trains.
Both are left-padded, so a batch can be cut to its longest real row.
"""
from __future__ import annotations

import torch
from torch import Tensor

from bench.eval.protocol import left_pad


def sequence_windows(seqs: list[list[int]], max_len: int) -> Tensor:
    """(W, max_len+1) left-padded windows covering every training transition."""
    windows = []
    for seq in seqs:
        end = len(seq)
        while end >= 2:
            windows.append(seq[max(0, end - max_len - 1):end])
            end -= max_len
    return left_pad(windows, max_len + 1)


def prefix_examples(seqs: list[list[int]], max_len: int) -> Tensor:
    """(E, max_len+1) rows: up to max_len history items, then the target."""
    rows = [seq[max(0, end - max_len - 1):end] for seq in seqs for end in range(2, len(seq) + 1)]
    return left_pad(rows, max_len + 1)


def build_examples(fmt: str, seqs: list[list[int]], max_len: int) -> Tensor:
    if fmt == "sequence":
        return sequence_windows(seqs, max_len)
    if fmt == "prefix":
        return prefix_examples(seqs, max_len)
    raise ValueError(f"unknown training format {fmt!r}")


def batch_order(real: Tensor, batch_size: int, generator: torch.Generator, bucket: int) -> list[Tensor]:
    """Shuffled example indices grouped into batches.

    With bucket > 0, each run of `bucket` batches' worth of shuffled examples
    is sorted by length before it is cut into batches, and the batches are
    shuffled again: batches hold similar lengths, so cutting padding saves
    most of the attention cost on short-history data, while every batch is
    still a random draw from the whole epoch.
    """
    order = torch.randperm(len(real), generator=generator)
    if bucket > 0:
        span = bucket * batch_size
        chunks = [order[s:s + span] for s in range(0, len(order), span)]
        order = torch.cat([c[torch.argsort(real[c], stable=True)] for c in chunks])
    batches = list(order.split(batch_size))
    if bucket > 0:
        batches = [batches[i] for i in torch.randperm(len(batches), generator=generator)]
    return batches


def epoch_batches(examples: Tensor, fmt: str, batch_size: int, generator: torch.Generator, bucket: int = 0):
    """Yield shuffled batches, each cut to its longest real row.

    "sequence" batches carry `loss_scale`: their share of the epoch's targets
    times the number of batches (1.0 on average). A model whose loss is a mean
    over a batch's targets, scaled by it, weighs every target the same in
    whichever batch it falls, as with random batches. Without it, length-sorted
    batches would weigh a target of a short sequence (in a batch with few
    targets) several times more than one of a long sequence.
    """
    real = (examples != 0).sum(1)
    order = batch_order(real, batch_size, generator, bucket)
    per_batch = (real - 1).clamp(min=0).sum().item() / max(len(order), 1)    # mean targets per batch
    for idx in order:
        yield make_batch(examples, real, idx, fmt, per_batch)


def make_batch(examples: Tensor, real: Tensor, idx: Tensor, fmt: str, per_batch: float) -> dict:
    """The batch of rows `idx`, cut to its longest real row (real: each row's count of items)."""
    longest = int(real[idx].max())
    rows = examples[idx, examples.shape[1] - longest:]
    if fmt == "sequence":
        history = rows[:, :-1]
        target = torch.where(history != 0, rows[:, 1:], 0)
        scale = int((target != 0).sum()) / per_batch if per_batch else 1.0
        return {"history": history, "target": target, "loss_scale": scale}
    return {"history": rows[:, :-1], "target": rows[:, -1]}


def to_device(batch: dict, device) -> dict:
    """The batch's tensors on `device`; other entries (loss_scale) as they are."""
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def n_batches(examples: Tensor, batch_size: int) -> int:
    return (len(examples) + batch_size - 1) // batch_size
