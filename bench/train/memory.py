"""What a run needs in memory, from its configuration alone, checked against the machine before anything
is built.

Parameters are counted exactly (the model built on PyTorch's meta device: shapes, no storage), with
their gradients and Adam's two moments. The training step and scoring are estimated from shapes, from
their largest terms: the step's logits against the whole catalogue (every real position of the largest
batch for a per-position model, one per row for a last-item one; logits, their softmax and their
gradient) and its hidden activations (rows x positions x hidden per block, and the attention maps);
scoring holds a block of users x catalogue fp32 scores a few times while it ranks them. A screen for
configurations far beyond the machine, not a prediction of a run's footprint (DiffuRecSys on Beauty:
1.7 GB estimated, 2.6 GB peak resident). A model's data-dependent shapes (histories grouped by length)
keep its step from running on the meta device, so the step is not measured there.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from bench.errors import BenchError

# the most memory one block of full-ranking scores (users x catalogue, fp32) may take: a larger
# catalogue is scored in fewer users per batch (bench.eval.protocol.score_batches)
SCORE_BLOCK_BYTES = 256 * 2**20
# a block of scores is held about this many times while it is ranked (scores, seen mask, comparisons)
RANKING_COPIES = 3
# logits against the catalogue: the logits, their (log-)softmax, their gradient
LOGIT_COPIES = 3
# hidden activations saved per block and position, in hidden-size vectors (attention projections,
# feed-forward at 4x, norms, dropout masks, residuals)
VECTORS_PER_BLOCK = 16
# a training process before its model: Python, PyTorch's libraries, the dataset (measured: about 0.5 GB)
PROCESS_BYTES = 512 * 2**20
# the share of the available memory a run may plan to use (the rest: the allocator's slack)
USABLE = 0.9


def score_batch(batch_size: int, n_items: int) -> int:
    """Users per scoring batch: the configured eval batch, fewer when a block would exceed SCORE_BLOCK_BYTES."""
    return max(1, min(batch_size, SCORE_BLOCK_BYTES // (4 * (n_items + 1))))


@dataclass
class Need:
    weights: int            # parameters, gradients and optimizer moments, bytes
    step: int               # a training step's logits and activations at the largest batch, bytes
    scoring: int            # one batch of full-ranking scores while ranked, bytes

    @property
    def total(self) -> int:
        return PROCESS_BYTES + self.weights + max(self.step, self.scoring)

    def why(self) -> str:
        return (f"the process {gb(PROCESS_BYTES)}, parameters with gradients and Adam moments "
                f"{gb(self.weights)}, a training step {gb(self.step)}, scoring {gb(self.scoring)}")


def gb(nbytes: float) -> str:
    return f"{nbytes / 1e9:.1f} GB" if nbytes >= 1e8 else f"{nbytes / 1e6:.0f} MB"


def estimate(spec, n_items: int, rows: int, positions: int, trains: bool) -> Need:
    """The memory a run of `spec` needs, its largest training batch being `rows` x `positions` real cells
    (`trains`: whether it trains by gradient at all)."""
    with torch.device("meta"):
        model = spec.build(n_items)
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    weights = params + (3 * trainable if trains else 0)           # + gradients, Adam's two moments
    cfg = spec.config
    hidden, blocks, heads = (int(getattr(cfg, k, 0) or 0) for k in ("hidden", "blocks", "heads"))
    if getattr(cfg, "chain_blocks", True) is False:         # only the last block runs (the DiffuRecSys code)
        blocks = 1
    step = 0
    if trains:
        targets = rows * positions if model.train_format == "sequence" else rows
        logits = LOGIT_COPIES * targets * n_items * 4
        activations = rows * positions * 4 * max(blocks, 1) * (VECTORS_PER_BLOCK * hidden + 3 * heads * positions)
        step = logits + activations
    scoring = RANKING_COPIES * score_batch(spec.train.eval_batch_size, n_items) * (n_items + 1) * 4
    return Need(weights, step, scoring)


def available(device: torch.device) -> int | None:
    """Bytes free for a new run on `device`: the GPU's free memory, or the system's available memory."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check(need: Need, label: str, device: torch.device) -> None:
    """Refuse, in one line, a run that would not fit in the memory this machine has free."""
    free = available(device)
    if free is None or need.total <= USABLE * free:
        return
    where = "GPU memory" if device.type == "cuda" else "memory"
    raise BenchError(f"{label} needs about {gb(need.total)} ({need.why()}); this machine has "
                     f"{gb(free)} of {where} free: lower its hidden size, batch size or eval_batch_size "
                     "(--set MODEL.FIELD=VALUE)")
