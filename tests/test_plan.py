"""The plan before a grid: each run finished, resumable (from its epoch) or new, with an estimate."""
import subprocess
import sys

import pytest

from bench.runs import plan, results
from bench.runs.run import run_one
from bench.runs.spec import build
from tests.conftest import bench_cli

SETS = {"sasrec": {"hidden": "16", "blocks": "1", "epochs": "6", "eval_every": "1", "patience": "100"}}


def request(out, seed=0, **kw):
    return build("sasrec", "synthetic", seed=seed, out=str(out), sets=SETS["sasrec"], **kw)


def test_dry_run_prints_the_plan_and_trains_nothing(tmp_path):
    proc = bench_cli("run", "--models", "pop,sasrec", "--dataset", "synthetic", "--seeds", "2", "--dry-run",
                     "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert "plan: 4 runs (4 new, 0 resumable, 0 finished)" in proc.stdout and "total up to" in proc.stdout
    assert proc.stdout.count(" new ") >= 4 and "FLOPs counted now" in proc.stdout and "timed steps" in proc.stdout
    assert not (tmp_path / "out").exists()


def test_states_and_estimates_from_checkpoints_and_earlier_runs(tmp_path):
    first = run_one(request(tmp_path, seed=0))

    def stop(epoch, metrics):
        if epoch == 2:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        run_one(request(tmp_path, seed=1, on_eval=stop))
    rows = plan.plan([request(tmp_path, seed=s) for s in (0, 1, 2)])
    assert [r.state for r in rows] == ["finished", "resumable", "new"]
    assert rows[0].seconds == 0 and rows[0].run_id == first["run_id"]
    assert rows[1].epoch == 2 and rows[1].source == "its checkpoint"
    # seed 2 is estimated from the finished seed 0: its seconds per epoch and the epochs it ran
    assert rows[2].source == "1 earlier run" and not rows[2].upper
    assert rows[2].epoch_s == pytest.approx(first["train_seconds"] / first["epochs_run"])
    assert rows[2].expected == first["epochs_run"]
    assert 0 < rows[1].seconds < rows[2].seconds
    table, _ = plan.table(rows, 1, 2)
    assert "1 new, 1 resumable, 1 finished" in table.title
    assert len(results.read(tmp_path)) == 1                # planning stored nothing


def test_plan_goes_to_stderr_before_a_real_grid_and_not_when_all_is_finished(tmp_path):
    args = ["run", "--models", "pop", "--dataset", "synthetic", "--out", str(tmp_path)]
    proc = bench_cli(*args)
    assert proc.returncode == 0 and "plan: 1 runs (1 new" in proc.stderr, proc.stderr
    again = bench_cli(*args)
    assert again.returncode == 0 and "plan:" not in again.stderr + again.stdout


def test_grid_progress_counts_runs_and_keeps_a_summary_line_per_run(tmp_path):
    args = ("run", "--models", "pop,sasrec", "--dataset", "synthetic", "--out", str(tmp_path / "out"),
            "--set", "sasrec.epochs=2", "--set", "sasrec.hidden=16", "--set", "sasrec.eval_every=1")
    proc = bench_cli(*args)
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr
    assert "run 1 of 2: pop synthetic seed 0" in err and "run 2 of 2: sasrec synthetic seed 0" in err
    assert "val NDCG@10 " in err and " %" in err and "(no training)" in err
    summary = [line for line in err.splitlines() if line.startswith("[2/2] sasrec synthetic seed 0: ")]
    assert len(summary) == 1 and "valid NDCG@10" in summary[0] and "best epoch" in summary[0], err
    again = bench_cli(*args)
    assert again.returncode == 0 and "run 1 of 2" not in again.stderr, again.stderr    # all finished


def test_ablate_dry_run_prints_each_point_and_seed_and_trains_nothing(tmp_path):
    proc = bench_cli("ablate", "offset_noise", "--dataset", "synthetic", "--grid", "offset_noise=0.0,0.1",
                     "--grid", "offset_kind=per_example", "--seeds", "2", "--set", "diffurecsys.hidden=16",
                     "--set", "diffurecsys.blocks=1", "--dry-run", "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert "plan: 4 runs (4 new, 0 resumable, 0 finished)" in proc.stdout
    # no earlier run: the diffusion model's stated typical best epoch plus the study's patience of 3
    # validations, every 2 epochs, within the synthetic preset's 20: an estimate, not an upper bound
    assert "total " in proc.stdout and "total up to" not in proc.stdout and "~17 of 20" in proc.stdout
    assert proc.stdout.count("offset_noise=0.1") == 2 and "point" in proc.stdout
    assert not (tmp_path / "out").exists()


def test_epoch_estimate_fits_seconds_to_batch_sizes():
    # seconds = 0.1 + 0.01 * cells, timed on three sizes; the epoch has ten batches of 100 and one of 400
    assert plan.epoch_seconds([100, 200, 400], [1.1, 2.1, 4.1], [100] * 10 + [400]) == pytest.approx(15.1)
    # one size only (random batches of one length): its mean for every batch
    assert plan.epoch_seconds([300, 300], [2.0, 4.0], [300] * 5) == pytest.approx(15.0)
    # noise that makes the slope negative: the mean per cell, scaled by each batch's cells
    assert plan.epoch_seconds([100, 200], [2.0, 1.0], [150] * 4) == pytest.approx(6.0)


DIFF = {"hidden": "16", "blocks": "1", "heads": "2", "diffusion_steps": "8", "inference_steps": "0", "epochs": "40"}


def diffusion_request(out, seed=0, **fields):
    return build("diffurecsys", "synthetic", seed=seed, out=str(out), sets={**DIFF, **fields})


def test_each_shape_is_counted_once_at_a_rate_timed_once_and_validation_scales_with_reverse_steps(
        tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    counts, timings = [], []
    real_counted, real_fastest = plan.counted, plan.fastest
    monkeypatch.setattr(plan, "counted", lambda fn: counts.append(1) or real_counted(fn))
    monkeypatch.setattr(plan, "fastest", lambda fn, device, repeats=plan.REPEATS: timings.append(1)
                        or real_fastest(fn, device, repeats))
    reqs = [diffusion_request(tmp_path, offset_noise="0.3"), diffusion_request(tmp_path, lambda_mean="0"),
            diffusion_request(tmp_path, valid_inference_steps="1"), diffusion_request(tmp_path, diffusion_steps="32"),
            diffusion_request(tmp_path, attention="cross")]
    rows = plan.plan(reqs)
    # two shapes (cross+self: four points differing in cost-free fields; cross): each counted once (two
    # training batches and a validation batch); one model, so its training and scoring rates are timed once
    assert len(counts) == 6 and len(timings) == 2
    assert [r.valid_steps for r in rows] == [8, 8, 1, 32, 8]
    assert rows[0].epoch_s == rows[1].epoch_s == rows[2].epoch_s == rows[3].epoch_s > 0
    assert rows[2].valid_s == pytest.approx(rows[0].valid_s / 8) and rows[3].valid_s == pytest.approx(rows[0].valid_s * 4)
    assert rows[4].epoch_s < rows[0].epoch_s           # cross alone has no self-attention sublayer to compute
    # test at T = 32 reverse steps costs 4x what T = 8 does, at the same seconds per epoch
    assert rows[3].seconds > rows[0].seconds
    # a second plan, with a CPU-bound process running beside it, builds nothing and times nothing: the same
    # estimates from the kept work and rate
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        again = plan.plan(reqs)
    finally:
        burner.kill()
    assert len(counts) == 6 and len(timings) == 2
    assert [r.seconds for r in again] == [r.seconds for r in rows]
    assert {r.source.split(";")[0] for r in again} == {"FLOPs counted and rate timed before"}


def test_a_rate_timed_beside_other_work_is_timed_again_on_a_quiet_machine_and_the_faster_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    busy = plan.WorkCache()
    monkeypatch.setattr(busy, "busy", lambda: True)
    assert busy.put_rate("train sasrec", 1e9) == 1e9
    still_busy, quiet = plan.WorkCache(), plan.WorkCache()
    monkeypatch.setattr(still_busy, "busy", lambda: True)
    monkeypatch.setattr(quiet, "busy", lambda: False)
    assert still_busy.rate("train sasrec") == 1e9      # nothing better to time against
    assert quiet.rate("train sasrec") is None           # time again
    assert quiet.put_rate("train sasrec", 3e9) == 3e9 and plan.WorkCache().rate("train sasrec") == 3e9
    # a slower timing does not replace a faster one
    assert still_busy.put_rate("train sasrec", 2e9) == 3e9
    # a damaged cache file is read as empty and rewritten
    quiet.path.write_text("{not json")
    assert plan.WorkCache().rate("train sasrec") is None


def test_expected_epochs_follow_earlier_runs_of_the_model_with_this_runs_patience(tmp_path):
    first = run_one(diffusion_request(tmp_path, epochs="6", eval_every="1", patience="2"))
    other = plan.plan([diffusion_request(tmp_path, offset_noise="0.5", eval_every="2", patience="3")])[0]
    # another variant: the earlier run's best epoch plus 3 validations every 2 epochs
    assert other.expected == min(40, first["best_epoch"] + 6) and "best epoch of 1 runs" in other.source
    assert other.epoch_s == pytest.approx(first["train_seconds"] / first["epochs_run"])   # same shape: measured


def test_status_sets_the_plans_estimate_beside_what_the_run_took(tmp_path):
    args = ["run", "--models", "sasrec", "--dataset", "synthetic", "--out", str(tmp_path),
            "--set", "sasrec.hidden=16", "--set", "sasrec.epochs=2", "--set", "sasrec.eval_every=1"]
    assert bench_cli(*args).returncode == 0
    planned = results.read(tmp_path, results.PLANS)
    assert len(planned) == 1 and planned[0]["state"] == "new" and planned[0]["estimated_seconds"] > 0
    from bench.runs.status import scan

    row, = scan(tmp_path)
    record, = results.read(tmp_path)
    assert row.planned == planned[0]["estimated_seconds"]
    assert row.took == pytest.approx(record["train_seconds"] + record["eval_seconds"])
    proc = bench_cli("status", str(tmp_path))
    assert proc.returncode == 0 and "planned s" in proc.stdout, proc.stdout
