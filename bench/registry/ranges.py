"""The range of every numeric config field, checked before any run starts.

One table for every model and the training config, by field name: a value outside it is one
`error:` line naming the field and its range, never a crash mid-training or a quietly stored
result. Every float must be finite. Upper limits on sizes keep a typo (hidden=1000000) from
turning into an allocation traceback; a model's own `validate` adds what needs two fields.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

from bench.errors import BenchError

INF = math.inf
SIZE = 16384            # the widest layer any model here is built with, with room to spare
# field: (low, high, low included, high included)
RANGES: dict[str, tuple[float, float, bool, bool]] = {
    **{name: (0, 1, True, False) for name in ("dropout", "emb_dropout", "label_smoothing")},
    "mask_prob": (0, 1, False, True),
    "mask_last": (0, 1, True, True),
    **{name: (1, SIZE, True, True) for name in ("hidden", "embed", "rnn_hidden", "latent", "critic_hidden")},
    "heads": (1, 1024, True, True),
    "blocks": (1, 128, True, True),
    "conv_kernel": (1, 1024, True, True),
    "max_positions": (1, 1 << 20, True, True),
    "negatives": (1, 1 << 20, True, True),
    "pad_slots": (0, 1 << 20, True, True),
    "padding_sink": (0, 1 << 20, True, True),
    "next_k": (1, 1 << 20, True, True),
    "contrast_positions": (2, 1 << 20, True, True),
    "diffusion_steps": (2, 1 << 20, True, True),
    "eval_samples": (1, 4096, True, True),
    "lr": (0, INF, False, False),
    **{name: (0, INF, True, False) for name in ("weight_decay", "grad_clip", "offset_noise", "lambda_std",
                                                "init_std", "beta_max", "contrast_weight")},
    "temperature": (0, INF, False, False),
    "lr_decay": (0, 1, False, True),
    **{name: (1, 1 << 24, True, True) for name in ("batch_size", "eval_batch_size", "eval_every", "patience",
                                                   "lr_step")},
    **{name: (0, 1 << 24, True, True) for name in ("epochs", "lr_drops", "length_buckets", "anneal_steps",
                                                   "inference_steps", "valid_inference_steps")},
    **{name: (0, 1, False, False) for name in ("beta_start", "beta_end")},
    **{name: (0, 1, True, True) for name in ("pref_weight",)},
    "uncond_prob": (0, 1, True, False),
    **{name: (0, INF, True, False) for name in ("gamma", "guidance")},
    "ddim_stride": (1, 1 << 20, True, True),
    **{name: (0, INF, True, False) for name in ("lambda_scale", "mse_weight")},
    **{name: (0, 1 << 24, True, True) for name in ("pretrain_steps", "freeze_steps")},
    **{name: (0, INF, True, False) for name in ("history_weight", "codebook_weight")},
    "codebook_size": (1, 1 << 20, True, True),
}


def interval(low: float, high: float, low_in: bool, high_in: bool) -> str:
    return f"{'[' if low_in else '('}{low:g}, {'inf' if high == INF else f'{high:g}'}{']' if high_in else ')'}"


def check_value(section: str, name: str, value: Any) -> None:
    """Raise BenchError if a numeric value is not finite or out of the range of its field."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    where = f"{section}.{name}"
    if isinstance(value, float) and not math.isfinite(value):
        raise BenchError(f"{where} must be a finite number, got {value}")
    if name not in RANGES:
        return
    low, high, low_in, high_in = RANGES[name]
    inside = (value >= low if low_in else value > low) and (value <= high if high_in else value < high)
    if not inside:
        raise BenchError(f"{where} must be in {interval(low, high, low_in, high_in)}, got {value:g}")


def check(section: str, obj: Any) -> None:
    """Raise BenchError for the first numeric field of a config dataclass out of its range."""
    for f in dataclasses.fields(obj):
        check_value(section, f.name, getattr(obj, f.name))
    if hasattr(obj, "hidden") and hasattr(obj, "heads") and obj.hidden % obj.heads:
        raise BenchError(f"{section}.hidden ({obj.hidden}) must be divisible by {section}.heads ({obj.heads})")
