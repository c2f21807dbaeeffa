"""From the published code to the registered model, one difference at a time, and on to the paper's reading.

DiffuRecSys (the default): a walk from `--set diffurecsys.variant=published` (shararezr/DiffuRecSys
@746866d); each point changes one thing of the one before (docs/fidelity.md). The third point, the code's
Approximator at the harness's training, resolves to the registered defaults, so it is the registered run;
the six after it undo the code's Approximator one switch at a time, and the last adds the paper's offset
noise, so it resolves to the paper's reading (`--set diffurecsys.variant=paper`).
DiffuRec (`--model diffurec`): two training details of the DiffuRec code, N(0, 1) item embeddings and
dropout after every block, crossed.
"""
from __future__ import annotations

from typing import Any

from bench.studies.ablation import SELECTION, Ablation

# (name, what it changes from the point before)
WALK: tuple[tuple[str, dict[str, Any]], ...] = (
    ("published code", {"variant": "published"}),
    ("+ harness training", {"epochs": 200, "eval_every": 2, "lr_schedule": "constant", "lr_step": 100,
                            "init_std": 0.0, "length_buckets": 50}),
    ("+ hidden 128, no L2 (registered)", {"hidden": 128, "weight_decay": 0.0}),
    ("+ padding masked", {"padding_sink": 0}),
    ("+ query: LayerNorm, one per example", {"query_norm": True, "query_per_position": False}),
    ("+ keys softmaxed over positions", {"cross_kind": "linear"}),
    ("+ separate LayerNorms", {"shared_norm": False}),
    ("+ chained blocks", {"chain_blocks": True}),
    ("+ softmax cross-attention (the paper's Approximator)", {"cross_kind": "softmax"}),
    ("+ offset 0.1 per example (the paper's reading)", {"offset_noise": 0.1, "offset_kind": "per_example"}),
)


def walk() -> tuple[tuple[str, ...], tuple[dict[str, Any], ...]]:
    points, point = [], {}
    for _, change in WALK:
        point = {**point, **change}
        points.append(point)
    return tuple(name for name, _ in WALK), tuple(points)


NAMES, POINTS = walk()

ABLATION = Ablation(
    "code_fidelity",
    points=POINTS,
    names=NAMES,
    fixed=SELECTION,
    doc="the published DiffuRecSys code to the registered model, then to the paper's reading, one "
        "difference at a time",
)

DIFFUREC = Ablation(
    "code_fidelity",
    points=tuple({"init_std": i, "block_dropout": b} for i in (0.0, 1.0) for b in (False, True)),
    model="diffurec",
    doc="item init hidden**-0.5 or N(0, 1) (the DiffuRec code), with or without dropout after each block",
)
