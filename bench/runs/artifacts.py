"""The files a finished run leaves beside its checkpoints: history, per-user test values, the reverse
process of a few test users."""
from __future__ import annotations

import csv
from pathlib import Path

import torch

from bench.eval.protocol import Protocol, eval_split, metrics_from_ranks


def write_per_user(path: Path, ranks: torch.Tensor, ks: tuple[int, ...], users: torch.Tensor | None = None) -> None:
    """One row per evaluated user: its index (`users`, else the row number), rank and metrics."""
    per_user = metrics_from_ranks(ranks, ks)
    index = users.tolist() if users is not None else range(len(ranks))
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["user", "rank", *per_user])
        cols = [ranks.tolist()] + [v.tolist() for v in per_user.values()]
        for user, row in zip(index, zip(*cols)):
            writer.writerow([user, row[0], *(f"{x:.6g}" for x in row[1:])])


TRAJECTORY_USERS = 8


@torch.no_grad()
def write_trajectory(path: Path, model, ds, protocol: Protocol, device: torch.device) -> None:
    """The reverse process of the first TRAJECTORY_USERS test users, for the reporter:
    x (S+1, U, D) and timesteps (S+1,) from the model, item_emb (N+1, D), users,
    targets and the top-10 items of the final estimate (U, 10; fewer in a catalogue under 10 items)."""
    import numpy as np

    split = eval_split(ds, "test", protocol)
    users = torch.arange(min(TRAJECTORY_USERS, len(split.target)))
    longest = max(int(split.lengths[users].max()), 1)
    model.eval()
    traj = model.trajectory(split.history[users, split.history.shape[1] - longest:].to(device))
    item_emb = traj["item_emb"].detach().float()
    scores = traj["x"][-1] @ item_emb.T
    scores[:, 0] = -float("inf")                                          # padding is never an item
    np.savez(path, x=traj["x"].cpu().numpy(), timesteps=traj["timesteps"].cpu().numpy(),
             item_emb=item_emb.cpu().numpy(), users=users.numpy(), targets=split.target[users].numpy(),
             topk=scores.topk(min(10, ds.n_items), dim=1).indices.cpu().numpy())
