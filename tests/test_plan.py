"""The plan before a grid: each run finished, resumable (from its epoch) or new, with an estimate."""
import pytest

from bench.runs import plan, results
from bench.runs.run import RunRequest, run_one
from tests.conftest import bench_cli

SETS = {"sasrec": {"hidden": "16", "blocks": "1", "epochs": "6", "eval_every": "1", "patience": "100"}}


def request(out, seed=0, **kw):
    return RunRequest(model="sasrec", dataset="synthetic", seed=seed, out=str(out), overrides=SETS, **kw)


def test_dry_run_prints_the_plan_and_trains_nothing(tmp_path):
    proc = bench_cli("run", "--models", "pop,sasrec", "--dataset", "synthetic", "--seeds", "2", "--dry-run",
                     "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert "plan: 4 runs (4 new, 0 resumable, 0 finished)" in proc.stdout and "total up to" in proc.stdout
    assert proc.stdout.count(" new ") >= 4 and "timed steps" in proc.stdout
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
    return RunRequest(model="diffurecsys", dataset="synthetic", seed=seed, out=str(out),
                      overrides={"diffurecsys": {**DIFF, **fields}})


def test_each_compute_shape_is_timed_once_and_validation_scales_with_reverse_steps(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    calls = []

    def fake_timed(spec, ds, req, memo=None):
        calls.append(spec.config)
        return 100.0, 8.0 * plan.scoring_steps(spec.cls, spec.config)[0]     # 8 s per reverse step
    monkeypatch.setattr(plan, "timed", fake_timed)
    reqs = [diffusion_request(tmp_path, offset_noise="0.3"), diffusion_request(tmp_path, lambda_mean="0"),
            diffusion_request(tmp_path, valid_inference_steps="1"), diffusion_request(tmp_path, diffusion_steps="32"),
            diffusion_request(tmp_path, attention="cross")]
    rows = plan.plan(reqs)
    assert len(calls) == 2                      # cross+self (four points: cost-free fields) and cross
    assert [r.valid_steps for r in rows] == [8, 8, 1, 32, 8]
    assert rows[2].valid_s == pytest.approx(8.0) and rows[3].valid_s == pytest.approx(8.0 * 32)
    # test at T = 32 reverse steps costs 4x what T = 8 does, at the same seconds per epoch
    assert rows[3].seconds > rows[0].seconds and rows[0].epoch_s == rows[3].epoch_s == 100.0
    # a second plan on this machine reuses the timings
    again = plan.plan(reqs)
    assert len(calls) == 2 and {r.source.split(";")[0] for r in again} == {"timed before"}


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
