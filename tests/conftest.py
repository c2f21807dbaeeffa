import os
import subprocess
import sys
from pathlib import Path

import pytest

# One intra-op thread in tests and in the `bench` subprocesses they start: the models
# are tiny, and two spinning OpenMP threads on a busy 2-core box made single tests
# 15x slower (80 s against 5 s).
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def own_cache(tmp_path_factory, monkeypatch):
    """A cache folder of each test's own (the plan's timings of this machine live there), so no test
    reads what another, or the user, left; `bench` subprocesses inherit it."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


def real_data_dir() -> Path | None:
    d = os.environ.get("BENCH_DATA_DIR")
    return Path(d) if d and (Path(d) / "beauty.pkl").exists() else None


@pytest.fixture
def data_dir() -> Path:
    d = real_data_dir()
    if d is None:
        pytest.skip("BENCH_DATA_DIR with the benchmark datasets is not set")
    return d


def bench_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300):
    """Run the `bench` command in a subprocess, as a user would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "bench.cli", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """Small real runs on `synthetic` as studies leave them (tests/report_fixture.py), built once."""
    from tests.report_fixture import build

    return build(tmp_path_factory.mktemp("report"))
