"""Saved run configs: one model and its `--set` values in a JSON file (`bench tune` writes best.json).

    {"model": "sasrec", "set": {"hidden": "64", "lr": "0.002", "epochs": "40"}, ...}

Extra keys (the study, its objective values) are kept for the reader and ignored here.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.atomic import atomic_write_text
from bench.errors import BenchError


@dataclass(frozen=True)
class SavedConfig:
    model: str
    values: dict[str, str]      # field -> raw string, as `--set MODEL.FIELD=VALUE` takes it

    def merge_into(self, overrides: dict[str, dict[str, str]], models: list[str]) -> None:
        """Fill in the fields the command line did not set."""
        if self.model not in models:
            raise BenchError(f"--config holds a config for '{self.model}', which is not among the models run "
                             f"({', '.join(models)})")
        target = overrides.setdefault(self.model, {})
        for name, raw in self.values.items():
            target.setdefault(name, raw)


def raw(value: Any) -> str:
    """A typed value as the command line writes it."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def save(path: Path, model: str, values: dict[str, Any], **info: Any) -> None:
    """Write atomically, so a reader never sees half a file."""
    body = {"model": model, "set": {k: raw(v) for k, v in values.items()}, **info}
    atomic_write_text(path, json.dumps(body, indent=2, sort_keys=True) + "\n")


def load(path: Path) -> SavedConfig:
    try:
        body = json.loads(Path(path).read_text())
    except OSError as e:
        raise BenchError(f"cannot read --config {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise BenchError(f"--config {path} is not valid JSON ({e.msg}, line {e.lineno})") from None
    values = body.get("set") if isinstance(body, dict) else None
    if not isinstance(body, dict) or not isinstance(body.get("model"), str) or not isinstance(values, dict):
        raise BenchError(f"--config {path} must be an object with \"model\" (a name) and \"set\" (field: value)")
    return SavedConfig(body["model"], {str(k): raw(v) for k, v in values.items()})
