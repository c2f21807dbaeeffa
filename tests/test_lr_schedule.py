"""The step and plateau learning-rate schedules, end to end through `bench run`."""
import csv

import pytest

from tests.conftest import bench_cli


def history(out):
    (path,) = out.glob("runs/synthetic/sasrec/*/history.csv")
    with open(path) as f:
        return list(csv.DictReader(f))


def run(out, *sets):
    args = ["run", "--models", "sasrec", "--dataset", "synthetic", "--out", str(out), "--set", "sasrec.eval_every=1"]
    for s in sets:
        args += ["--set", f"sasrec.{s}"]
    proc = bench_cli(*args)
    assert proc.returncode == 0, proc.stderr
    return history(out)


def test_plateau_cuts_the_lr_where_early_stopping_would_stop(tmp_path):
    # at lr 1e-9 the weights cannot move, so validation never improves after the first evaluation
    common = ("lr=1e-9", "patience=1", "epochs=10")
    constant = run(tmp_path / "constant", *common)
    assert [int(r["epoch"]) for r in constant] == [1, 2]
    plateau = run(tmp_path / "plateau", *common, "lr_schedule=plateau", "lr_drops=2")
    assert [int(r["epoch"]) for r in plateau] == [1, 2, 3, 4]
    assert [float(r["lr"]) for r in plateau] == pytest.approx([1e-9, 1e-9, 1e-10, 1e-11])


def test_step_schedule_decays_every_lr_step_epochs(tmp_path):
    rows = run(tmp_path, "lr=1e-3", "lr_schedule=step", "lr_step=2", "lr_decay=0.5", "epochs=5", "patience=50")
    assert [float(r["lr"]) for r in rows] == pytest.approx([1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4])
