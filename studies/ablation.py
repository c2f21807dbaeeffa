"""Named ablations: each a list of grid points (model config values), run over seeds.

A study file (offset_noise.py, ...) declares one `Ablation`; `ABLATIONS` finds
them by name. `bench ablate` can also run a grid of its own from `--grid
FIELD=V1,V2` options, under any name that is not taken.

A named study of the diffusion models also fixes how its runs are selected (`fixed`, under any
`--set`): validation with one reverse step where the reverse process is not what the study varies
(on Beauty one step and 32 select alike, RESULTS.md), and a patience of 3 validations, which picks
the same epoch as the registered 5 in every recorded verdict run of DiffuRec and DiffuRecSys
(12 of 12; 2 does too, 1 does not). Test always runs each point's own reverse process. A point that
two studies share (the registered defaults; offset 0 of either kind) resolves to one config, so it
is one run, trained once.
"""
from __future__ import annotations

import dataclasses
import importlib
import itertools
from dataclasses import dataclass
from typing import Any, Callable

from bench import registry
from bench.errors import BenchError
from bench.registry.runconfig import raw

ABLATIONS = ("noisy_target", "offset_noise", "diffusion_steps", "attention", "code_fidelity", "shuffled")

# the selection settings of every named diffusion study (see above), in fp32: a study's runs then compute
# the same on every machine, and a CPU without bf16 units (AMD Zen 3) runs them at full speed (its bf16
# matmuls are 17x slower than fp32 ones)
SELECTION = {"valid_inference_steps": 1, "patience": 3, "precision": "fp32"}


@dataclass(frozen=True)
class Ablation:
    name: str
    points: tuple[dict[str, Any], ...]      # each: model config fields -> values
    model: str = "diffurecsys"
    doc: str = ""
    fixed: dict[str, Any] = dataclasses.field(default_factory=dict)   # every point's settings, under --set
    names: tuple[str, ...] = ()             # a short name per point (else "field=value, ...")
    # evaluation-time settings each finished checkpoint is re-scored with on test (`bench eval`, no
    # training): point, registered? -> [(name, {field: value})]
    rescore: Callable[[dict[str, Any], bool], list[tuple[str, dict[str, Any]]]] | None = None

    def label(self, i: int) -> str:
        return self.names[i] if self.names else label(self.points[i])

    def restricted(self, grid: dict[str, list[str]]) -> "Ablation":
        """Keep the points whose FIELD is among the given values (`--grid offset_kind=per_example`); a point
        that leaves FIELD unset (the registered point of noisy_target) has the registered value, so
        `--grid lambda_mean=0.001` keeps it."""
        for fld in grid:
            if not any(fld in p for p in self.points):
                raise BenchError(f"--grid {fld}: the {self.name} study does not vary '{fld}'; "
                                 f"it varies {', '.join(sorted({k for p in self.points for k in p}))}")
        base = registry.resolve(self.model, {self.model: {k: raw(v) for k, v in self.fixed.items()}})

        def value(point: dict[str, Any], fld: str) -> Any:
            return point[fld] if fld in point else getattr(base.config, fld, getattr(base.train, fld, None))

        kept = [i for i, p in enumerate(self.points)
                if all(any(matches(value(p, f), v) for v in vals) for f, vals in grid.items())]
        if not kept:
            raise BenchError(f"--grid leaves no point of the {self.name} study")
        return dataclasses.replace(self, points=tuple(self.points[i] for i in kept),
                                   names=tuple(self.names[i] for i in kept) if self.names else ())


def matches(value: Any, text: str) -> bool:
    """Whether a point's typed value is the one `text` writes: by value, so 0, 0.0 and 0e0 are one."""
    if raw(value) == text:
        return True
    if isinstance(value, bool):
        return text.strip().lower() in (("true", "1", "yes") if value else ("false", "0", "no"))
    if isinstance(value, (int, float)):
        try:
            return float(text) == float(value)
        except ValueError:
            return False
    return False


def label(point: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in point.items())


def parse_grid(items: list[str]) -> dict[str, list[str]]:
    """['hidden=16,32', ...] -> {'hidden': ['16', '32']}."""
    grid: dict[str, list[str]] = {}
    for item in items:
        fld, sep, values = item.partition("=")
        vals = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not fld.strip() or not vals:
            raise BenchError(f"bad --grid '{item}'; expected FIELD=V1,V2,... e.g. offset_kind=per_example")
        grid[fld.strip()] = vals
    return grid


def custom(name: str, model: str, grid: dict[str, list[str]]) -> Ablation:
    """The cartesian product of `--grid` values (raw strings, typed when the run resolves them)."""
    fields = list(grid)
    points = tuple(typed(model, dict(zip(fields, combo))) for combo in itertools.product(*grid.values()))
    return Ablation(name, points, model, "a grid given on the command line")


def typed(model: str, point: dict[str, str]) -> dict[str, Any]:
    """Raw strings -> the config's typed values (and a clear error for a bad one)."""
    spec = registry.resolve(model, {model: point})
    return {k: getattr(spec.config if hasattr(spec.config, k) else spec.train, k) for k in point}


def find(name: str, model: str | None, grid: dict[str, list[str]]) -> Ablation:
    if name in ABLATIONS:
        module = importlib.import_module(f"bench.studies.{name}")
        ablation = module.ABLATION
        if model and getattr(module, model.upper(), None) is not None:     # a study's own grid for that model
            ablation = getattr(module, model.upper())
        elif model:
            ablation = dataclasses.replace(ablation, model=model)
        return ablation.restricted(grid) if grid else ablation
    if not grid:
        raise BenchError(f"unknown study '{name}'; choose from {', '.join(ABLATIONS)}, "
                         "or give a grid of your own with --grid FIELD=V1,V2 (and --model)")
    if not model:
        raise BenchError(f"the grid study '{name}' needs --model")
    return custom(name, model, grid)
