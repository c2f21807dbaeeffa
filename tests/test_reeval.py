"""`bench eval`: a finished run scored again from its best checkpoint."""
import json

import pytest

from bench.eval import reeval
from bench.runs import results
from bench.data import synthetic
from bench.errors import BenchError
from bench.runs.run import run_one
from bench.runs.spec import build
from tests.conftest import bench_cli

DIFFUREC = {"hidden": "16", "blocks": "1", "heads": "2", "diffusion_steps": "8", "epochs": "3", "eval_every": "1"}
SASREC = {"hidden": "16", "epochs": "3", "eval_every": "1"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("reeval") / "runs"
    for model, overrides in (("diffurec", DIFFUREC), ("sasrec", SASREC)):
        run_one(build(model, "synthetic", seed=0, out=str(out), sets=overrides))
    return out


def only(out, model):
    return reeval.find_runs(out, [model], "synthetic", None, None, None)[0]


def test_no_change_reproduces_the_stored_metrics(trained):
    for model in ("diffurec", "sasrec"):
        record = only(trained, model)
        entry = reeval.reevaluate(trained, record, synthetic(), {})
        for split in ("valid", "test"):
            for metric, value in record[split].items():
                assert entry[split][metric] == pytest.approx(value, abs=1e-12), (model, split, metric)
        assert entry["changes"] == {}
        stored = (trained / record["per_user"]).read_text()
        assert (trained / entry["per_user"]).read_text() == stored and entry["per_user"] != record["per_user"]


def test_changed_reverse_process_is_recorded_apart_from_the_results(trained):
    before = (trained / results.RESULTS).read_bytes()
    record = only(trained, "diffurec")
    det = reeval.reevaluate(trained, record, synthetic(), {"stochastic": "false", "inference_steps": "4"}, splits=("valid",))
    avg = reeval.reevaluate(trained, record, synthetic(), {"eval_samples": "3"}, splits=("valid",))
    assert det["changes"] == {"stochastic": False, "inference_steps": 4}
    assert det["config"]["inference_steps"] == 4 and avg["config"]["eval_samples"] == 3
    assert "test" not in det and det["valid_seconds"] > 0
    # other reverse draws give other scores: at least one metric moves
    assert any(det["valid"][m] != record["valid"][m] for m in record["valid"])
    assert any(avg["valid"][m] != record["valid"][m] for m in record["valid"])
    assert (trained / results.RESULTS).read_bytes() == before           # trained runs untouched
    lines = [json.loads(line) for line in (trained / reeval.EVALS).read_text().splitlines()]
    assert [line["changes"] for line in lines[-2:]] == [det["changes"], avg["changes"]]
    assert all(line["run_id"] == record["run_id"] for line in lines[-2:])


def test_exclude_seen_can_change_and_never_lowers_ranks(trained):
    record = only(trained, "sasrec")
    entry = reeval.reevaluate(trained, record, synthetic(), {}, exclude_seen=True, splits=("test",))
    assert entry["protocol"]["exclude_seen"] is True and entry["changes"] == {"exclude_seen": True}
    # removing candidates can only move the target up
    assert entry["test"]["hr@10"] >= record["test"]["hr@10"]


def test_training_fields_are_refused(trained):
    with pytest.raises(BenchError, match="cannot change after training.*diffurec.eval_samples"):
        reeval.check_overrides("diffurec", {"hidden": "64"})
    with pytest.raises(BenchError, match="cannot change after training"):
        reeval.check_overrides("sasrec", {"dropout": "0.1"})
    reeval.check_overrides("sasrec", {"eval_batch_size": "64", "precision": "fp32"})


def test_cli_table_and_errors(trained):
    ok = bench_cli("eval", "--models", "sasrec", "--dataset", "synthetic", "--out", str(trained),
                   "--set", "sasrec.eval_batch_size=7", "--split", "test")
    assert ok.returncode == 0, ok.stderr
    assert "sasrec" in ok.stdout and "eval_batch_size=7" in ok.stdout and "->" in ok.stdout
    before = (trained / results.RESULTS).read_bytes()
    for args, message in (
        (["--models", "diffurec", "--set", "diffurec.blocks=2"], "cannot change after training"),
        (["--models", "sasrec", "--seed", "5,6"], "no finished run of sasrec"),
        (["--models", "sasrec", "--seed", "x"], "bad --seed"),
        (["--models", "sasrec", "--split", "train"], "unknown --split"),
    ):
        bad = bench_cli("eval", "--dataset", "synthetic", "--out", str(trained), *args)
        assert bad.returncode == 2, (args, bad.stdout)
        lines = bad.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, bad.stderr)
    assert (trained / results.RESULTS).read_bytes() == before


def test_both_seen_settings_from_one_pass_and_the_evaluation_travels_with_an_export(trained, tmp_path):
    """A re-scored test pass stores seen items kept and removed (as a trained run does); `bench export`
    copies the evaluation line and its per-user ranks, and `bench report` reads them there."""
    from bench.runs.export import export, read_ranks

    record = only(trained, "diffurec")
    entry = reeval.reevaluate(trained, record, synthetic(), {"xt_probe": "zero", "inference_steps": "1"})
    assert set(entry["test_seen"]) == {"kept", "removed"}
    kept = read_ranks(trained / entry["per_user_seen"]["kept"])
    removed = read_ranks(trained / entry["per_user_seen"]["removed"])
    assert all(r <= k for r, k in zip(removed, kept)) and removed != kept     # removing seen items only lifts
    assert entry["test_seen"]["kept"]["ndcg@10"] <= entry["test_seen"]["removed"]["ndcg@10"]
    dest = tmp_path / "exported"
    export([trained], dest)
    copied = [e for e in results.read(dest, results.EVALS) if e["changes"] == entry["changes"]]
    assert len(copied) == 1 and copied[0]["per_user_seen"]["removed"].endswith(".gz")
    assert read_ranks(dest / copied[0]["per_user_seen"]["removed"]) == removed
    export([trained], dest)                                                  # a second export adds nothing
    assert len([e for e in results.read(dest, results.EVALS) if e["changes"] == entry["changes"]]) == 1


def test_xt_sensitivity_script_measures_how_far_x_t_moves_a_trained_estimate(trained):
    """scripts/xt_sensitivity.py on a finished DiffuRec run: one row per noise level, x_t moves the x0
    estimate by a finite, non-zero amount (lambda ~ 1e-3 lets it through), and two calls agree."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "scripts" / "xt_sensitivity.py"
    spec = importlib.util.spec_from_file_location("xt_sensitivity", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    run_id = only(trained, "diffurec")["run_id"][:8]
    rows = script.sensitivity(trained, run_id, 64, [1, 8])
    assert [r["t"] for r in rows] == [1, 8] and all(r["run"] == run_id for r in rows)
    for r in rows:
        assert 0 < r["rel_change"] < 1 and 0 <= r["rank_moved"] <= 1 and -1 <= r["cos_xt"] <= 1
    assert rows == script.sensitivity(trained, run_id, 64, [1, 8])
