"""A run killed with SIGKILL mid-training resumes and ends exactly as an uninterrupted one."""
import json
import os
import signal
import subprocess
import sys
import time

import torch

ARGS = ["run", "--models", "sasrec", "--dataset", "synthetic", "--epochs", "8", "--seeds", "1",
        "--set", "sasrec.patience=100", "--set", "sasrec.hidden=32"]


def start(out):
    return subprocess.Popen([sys.executable, "-m", "bench.cli", *ARGS, "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_sigkill_then_rerun_gives_identical_metrics(tmp_path):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = start(killed)
    deadline = time.time() + 120
    ckpt = None
    while time.time() < deadline and proc.poll() is None:
        found = list(killed.glob("runs/*/sasrec/*/checkpoint.pt"))
        if found:
            ckpt = found[0]
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ckpt is not None, "no checkpoint appeared before the run ended"
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "results.jsonl").exists(), "the run finished before it could be killed"
    epoch = torch.load(ckpt, weights_only=True)["state"]["epoch"]
    assert 1 <= epoch < 8

    resumed = subprocess.run([sys.executable, "-m", "bench.cli", *ARGS, "--out", str(killed)],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    uninterrupted = subprocess.run([sys.executable, "-m", "bench.cli", *ARGS, "--out", str(clean)],
                                   capture_output=True, text=True, timeout=300)
    assert uninterrupted.returncode == 0, uninterrupted.stderr

    a = json.loads((killed / "results.jsonl").read_text())
    b = json.loads((clean / "results.jsonl").read_text())
    assert a["epochs_run"] == b["epochs_run"] == 8
    assert a["test"] == b["test"] and a["valid"] == b["valid"] and a["best_epoch"] == b["best_epoch"]
    history_a = (killed / a["history"]).read_text().splitlines()
    history_b = (clean / b["history"]).read_text().splitlines()
    # same losses and metrics epoch by epoch (timings differ)
    strip = lambda rows: [r.rsplit(",", 2)[0] for r in rows]
    assert strip(history_a) == strip(history_b)
