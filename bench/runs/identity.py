"""What a run is and where it came from: its id (model config, training config, protocol, dataset
content, seed), the git revision and the package versions stored with it."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import subprocess
from functools import lru_cache
from pathlib import Path

import bench
from bench import data, registry
from bench.eval.protocol import Protocol
from bench.runs.fields import identity


def dataset_fingerprint(spec: str, directory: str | None) -> str:
    """Names a dataset by content, so a changed file is a different run."""
    if spec in data.BUILTIN:
        return f"{spec}-v1"
    path = data.data_dir(directory) / f"{spec}.pkl" if spec in data.NAMED else Path(spec)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return f"{path.stem if spec not in data.NAMED else spec}-{digest}"


def run_id(spec: registry.ModelSpec, dataset_fp: str, seed: int, protocol: Protocol) -> str:
    key = {"model": spec.name, "config": identity(dataclasses.asdict(spec.config)),
           "train": identity(dataclasses.asdict(spec.train)),
           "protocol": identity(protocol.to_dict()), "dataset": dataset_fp, "seed": seed}
    return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


@lru_cache(maxsize=1)
def git_revision() -> str:
    """The checkout's revision when this process first asks: the code it imported, not a
    commit made while a long run was going on (run_one asks before training)."""
    root = Path(bench.__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "") if rev.returncode == 0 else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def versions() -> dict[str, str]:
    import torch

    return {"bench": bench.__version__, "python": platform.python_version(), "torch": torch.__version__,
            "platform": platform.platform()}
