"""A run killed with SIGKILL mid-training resumes and ends exactly as an uninterrupted one."""
import fcntl
import json
import os
import signal
import subprocess
import sys
import time

import torch

from bench.runs.locks import lock_path

ARGS = ["run", "--models", "sasrec", "--dataset", "synthetic", "--epochs", "8", "--seeds", "1",
        "--set", "sasrec.patience=100", "--set", "sasrec.hidden=32"]


def _sigint_default():
    # a shell starting the tests in the background (`pytest &`) leaves SIGINT ignored, and an ignored
    # signal stays ignored in children; the tests send SIGINT as a user's Ctrl-C would
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(out, args=ARGS):
    return subprocess.Popen([sys.executable, "-m", "bench.cli", *args, "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_sigint_default)


def status_row(out, rid) -> list[str]:
    """`bench status` cells of one run."""
    proc = subprocess.run([sys.executable, "-m", "bench.cli", "status", str(out)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = [[c.strip() for c in line.strip("│ ").split("│")] for line in proc.stdout.splitlines() if rid in line]
    assert len(rows) == 1, proc.stdout
    return rows[0]


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
    rid = ckpt.parent.name.split("-", 1)[1]
    assert status_row(killed, rid)[5:7] == ["stopped", str(epoch)]
    with open(lock_path(killed, rid), "a") as f:      # as a process training it would
        fcntl.flock(f, fcntl.LOCK_EX)
        assert status_row(killed, rid)[5] == "training"

    resumed = subprocess.run([sys.executable, "-m", "bench.cli", *ARGS, "--out", str(killed)],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    uninterrupted = subprocess.run([sys.executable, "-m", "bench.cli", *ARGS, "--out", str(clean)],
                                   capture_output=True, text=True, timeout=300)
    assert uninterrupted.returncode == 0, uninterrupted.stderr

    a = json.loads((killed / "results.jsonl").read_text())
    row = status_row(killed, rid)
    assert row[5].startswith("finished") and row[6] == "8"
    b = json.loads((clean / "results.jsonl").read_text())
    assert a["epochs_run"] == b["epochs_run"] == 8
    assert a["test"] == b["test"] and a["valid"] == b["valid"] and a["best_epoch"] == b["best_epoch"]
    history_a = (killed / a["history"]).read_text().splitlines()
    history_b = (clean / b["history"]).read_text().splitlines()
    # same losses and metrics epoch by epoch (timings differ)
    strip = lambda rows: [r.rsplit(",", 2)[0] for r in rows]
    assert strip(history_a) == strip(history_b)


def test_ctrl_c_says_where_a_rerun_resumes_and_the_rerun_says_so_too(tmp_path):
    import re
    out = tmp_path / "interrupted"
    # a budget the run cannot finish between the first history row and the signal on a busy machine
    args = [("40" if a == "8" else a) for a in ARGS]
    proc = start(out, args)
    deadline = time.time() + 120
    history = None
    while time.time() < deadline and proc.poll() is None:
        found = list(out.glob("runs/*/sasrec/*/history.csv"))
        if found:                                   # history.csv grows as the run goes
            history = found[0]
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert history is not None and proc.returncode == 130, err
    assert len(history.read_text().splitlines()) >= 2          # header + at least one validation row
    said = re.search(r"stopped: sasrec synthetic seed 0; rerun the same command to resume at epoch (\d+)", err)
    assert said, err
    resumed = subprocess.run([sys.executable, "-m", "bench.cli", *args, "--out", str(out)],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"sasrec synthetic seed 0: resuming from epoch {said.group(1)}" in resumed.stderr
    folder = history.parent                         # finished: only best.pt is kept of the training state
    assert (folder / "best.pt").exists() and not list(folder.glob("checkpoint*"))
