"""`bench results`: study runs kept apart, rows in one order with display names, n = 1 notes;
and the best mark of a grid study's table."""
import json
from types import SimpleNamespace

import optuna
import pytest
from rich.console import Console

from bench.runs.summary import main_runs, render, summarize
from tests.conftest import bench_cli

METRICS = ("hr@10", "ndcg@10", "hr@20", "ndcg@20", "mrr")


def rec(run_id, model="sasrec", dataset="beauty", seed=0, ndcg=0.05, config=None, at="2026-01-01T00:00:00", **tags):
    return {"run_id": run_id, "model": model, "dataset": dataset, "seed": seed, "best_epoch": 10,
            "train_seconds": 1.0, "config": config or {"hidden": 64}, "train": {"lr": 1e-3},
            "protocol": {"max_len": 50}, "valid": {"ndcg@10": ndcg}, "test": {k: ndcg for k in METRICS},
            "finished_at": at, **tags}


STUDY = {"study": "offset_noise", "study_id": "offset_noise-beauty-diffurecsys-0123abcd", "trial": 0,
         "params": {"offset_noise": 0.2}}


def text(table) -> str:
    console = Console(width=200, record=True)
    console.print(table)
    return console.export_text()


def test_study_runs_are_left_out_unless_asked_for():
    plain = rec("a")
    study_only = rec("b", model="diffurecsys", **STUDY)
    reused = [rec("c", seed=1), rec("c", seed=1, at="2026-01-02T00:00:00", reused=True, **STUDY)]
    records = [plain, study_only, *reused]
    kept, left_out = main_runs(records)
    assert left_out == 1
    assert sorted(r["run_id"] for r in kept) == ["a", "c"]
    assert all("study" not in r for r in kept)                 # a reused run stays, as bench run stored it
    every, none_left = main_runs(records, studies=True)
    assert none_left == 0 and sorted(r["run_id"] for r in every) == ["a", "b", "c"]


def test_rows_sorted_by_dataset_then_display_order_then_config_with_display_names():
    records = [rec("1", "pop", "toys"), rec("2", "sasrec", "beauty", config={"hidden": 128}),
               rec("3", "pop", "beauty"), rec("4", "sasrec", "beauty", config={"hidden": 64}),
               rec("5", "diffurecsys", "beauty"), rec("6", "bert4rec", "beauty"), rec("7", "diffurec", "toys")]
    rows = summarize(records)
    assert [(r["dataset"], r["display"]) for r in rows] == [
        ("beauty", "DiffuRecSys"), ("beauty", "SASRec (hidden=64)"), ("beauty", "SASRec (hidden=128)"),
        ("beauty", "BERT4Rec"), ("beauty", "MostPop"), ("toys", "DiffuRec"), ("toys", "MostPop")]
    shown = text(render(rows))
    assert "SASRec (hidden=64)" in shown and "MostPop" in shown and "sasrec" not in shown


def test_a_row_with_one_seed_is_noted_and_shows_no_spread():
    two = [rec("a", seed=0, ndcg=0.04), rec("b", seed=1, ndcg=0.06)]
    shown = text(render(summarize(two)))
    assert "n = 1" not in shown and "5.00±1.41" in shown
    mixed = text(render(summarize([*two, rec("c", model="pop")])))
    assert "n = 1 seed for MostPop beauty" in mixed
    single = text(render(summarize([rec("c", model="pop", ndcg=0.03)])))
    assert "n = 1 seed:" in single and "3.00±" not in single and "3.00" in single


def test_bench_results_leaves_study_runs_out_and_includes_them_with_studies(tmp_path):
    lines = [rec("a", "sasrec", seed=0, ndcg=0.04), rec("b", "sasrec", seed=1, ndcg=0.06),
             rec("s1", "diffurecsys", **STUDY), rec("s2", "diffurecsys", seed=1, **STUDY)]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    plain = bench_cli("results", str(tmp_path))
    assert plain.returncode == 0, plain.stderr
    assert "SASRec" in plain.stdout and "DiffuRecSys" not in plain.stdout
    assert "2 study runs (bench ablate, bench tune) left out" in plain.stdout and "--studies" in plain.stdout
    every = bench_cli("results", str(tmp_path), "--studies")
    assert every.returncode == 0, every.stderr
    assert "DiffuRecSys" in every.stdout and "left out" not in every.stdout
    body = [line for line in every.stdout.splitlines() if line.startswith("│")]
    assert body.index(next(b for b in body if "DiffuRecSys" in b)) < body.index(next(b for b in body if "SASRec" in b))


def test_bench_results_of_a_folder_of_study_runs_only_says_so(tmp_path):
    (tmp_path / "results.jsonl").write_text(json.dumps(rec("s1", "diffurecsys", **STUDY)) + "\n")
    proc = bench_cli("results", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "1 study run (bench ablate, bench tune) left out" in proc.stdout and "holds no others" in proc.stdout


# -- a grid study's table: "* " only beyond the seed spread ------------------------------------

def grid(scores: dict[str, list[float]]):
    """A plan (its labels) and a study with one complete trial per (point, seed)."""
    study = optuna.create_study(direction="maximize")
    dists = {"point": optuna.distributions.CategoricalDistribution(list(scores)),
             "seed": optuna.distributions.CategoricalDistribution(list(range(10)))}
    for point, values in scores.items():
        for seed, v in enumerate(values):
            metrics = {"ndcg@10": v, "hr@10": 2 * v}
            study.add_trial(optuna.trial.create_trial(
                params={"point": point, "seed": seed}, distributions=dists, value=v,
                user_attrs={"valid": metrics, "test": metrics, "train_seconds": 1.0, "seed": seed}))
    return SimpleNamespace(labels=list(scores)), study


@pytest.fixture(autouse=True)
def quiet_optuna():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def marked(scores):
    from bench.studies.grid import table_rows

    _, rows = table_rows(*grid(scores))
    return [r[0][2:] for r in rows if r[0].startswith("* ")], rows


def test_grid_best_mark_only_beyond_the_seed_spread():
    best, rows = marked({"a": [0.050, 0.052], "b": [0.040, 0.041], "c": [0.030, 0.031]})
    assert best == ["a"] and not any("n = 1" in r[0] for r in rows)
    best, _ = marked({"a": [0.050, 0.060], "b": [0.048, 0.049]})      # 5.5 - 0.71 < 4.85 + 0.07
    assert best == []


def test_grid_with_one_seed_marks_nothing_and_notes_n_1():
    best, rows = marked({"a": [0.09], "b": [0.01]})
    assert best == []
    assert rows[-1][0] == "n = 1 seed: no spread, no best mark" and rows[-1][1:] == [""] * (len(rows[0]) - 1)
    best, rows = marked({"a": [0.050, 0.051], "b": [0.01]})              # a single-seed point is beaten as a point
    assert best == ["a"] and rows[-1][0] == "n = 1 seed for 1 points: never best"
