"""Seconds per training step (forward, backward, Adam) of several model configs, timed side by side.

    OMP_NUM_THREADS=1 python scripts/step_cost.py [--batch 256] [--items 12101] [--repeats 3]

Each config is resolved as `bench run` would (on Beauty's name, max_len 50), built for `--items` items,
and timed on one batch of random full-length histories; the minimum over `--repeats` steps after one
warm-up step is printed. Compare rows of one call only: other load on the machine moves every row.
"""
from __future__ import annotations

import argparse
import time

import torch

from bench import registry

CONFIGS = (
    ("diqdiff", {}),
    ("diqdiff", {"codebook": "false", "contrast_weight": "0"}),
    ("diqdiff", {"attend_padding": "false"}),
    ("diffurec", {"padding_sink": "50", "block_dropout": "true", "init_std": "1"}),
    ("diffurec", {"padding_sink": "50", "block_dropout": "true", "init_std": "1", "blocks": "1"}),
    ("diffurecsys", {"variant": "published"}),
    ("diffurecsys", {"variant": "published", "hidden": "128"}),
    ("diffurecsys", {}),
    ("diffurec", {}),
)


def step_seconds(name: str, sets: dict, batch: int, items: int, repeats: int) -> float:
    spec = registry.resolve(name, {name: sets}, "beauty", 50)
    torch.manual_seed(0)
    model = spec.cls(spec.config, items).train()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    data = {"history": torch.randint(1, items, (batch, 50)), "target": torch.randint(1, items, (batch,))}
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        out = model.loss(data)
        opt.zero_grad()
        (out["loss"] if isinstance(out, dict) else out).backward()
        opt.step()
        times.append(time.perf_counter() - start)
    return min(times[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--items", type=int, default=12101)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name, sets in CONFIGS:
        label = ", ".join(f"{k}={v}" for k, v in sets.items()) or "registered"
        print(f"{name} ({label}): {step_seconds(name, sets, args.batch, args.items, args.repeats):.3f} s/step",
              flush=True)


if __name__ == "__main__":
    main()
