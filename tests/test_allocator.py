import platform
import subprocess
import sys

import pytest

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's mallopt")

CHECK = "from bench.allocator import keep_freed_memory as k; print(k(), k())"


def _run(env_value: str | None) -> str:
    import os
    env = {k: v for k, v in os.environ.items() if k != "BENCH_MALLOC"}
    if env_value is not None:
        env["BENCH_MALLOC"] = env_value
    return subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True,
                          check=True).stdout.split()


@glibc
def test_applies_once_per_process():
    assert _run(None) == ["True", "True"]


def test_can_be_switched_off():
    assert _run("default") == ["False", "False"]


@glibc
def test_cpu_device_applies_it():
    out = subprocess.run([sys.executable, "-c", "import bench.allocator as a, bench.training as t; "
                          "print(a._done); t.resolve_device('cpu'); print(a._done)"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]
