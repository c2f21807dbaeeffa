"""Optuna studies: resume after SIGKILL, 2 workers on a journal file and on PostgreSQL, a Dask grid, pruning."""
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.conftest import bench_cli

TINY = ["--dataset", "synthetic", "--model", "sasrec", "--set", "sasrec.hidden=8", "--set", "sasrec.blocks=1"]
GRID12 = ["--grid", "hidden=8,16", "--grid", "dropout=0.1,0.2,0.3", "--seeds", "2", "--epochs", "1"]


def results(out: Path) -> list[dict]:
    path = out / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def load_study(out: Path, storage: str | None = None) -> optuna.Study:
    if storage is None:
        journal = next(out.glob("studies/*/journal.log"))
        from optuna.storages.journal import JournalFileBackend, JournalStorage
        storage, name = JournalStorage(JournalFileBackend(str(journal))), journal.parent.name
    else:
        name = optuna.get_all_study_names(storage)[0]
    return optuna.load_study(study_name=name, storage=storage)


def assert_each_point_once(out: Path, study: optuna.Study, n: int) -> None:
    lines = [r for r in results(out) if r.get("study")]
    points = Counter((json.dumps(r["params"], sort_keys=True), r["seed"]) for r in lines)
    assert len(points) == n and set(points.values()) == {1}, points
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == n
    assert len({(t.params["point"], t.params["seed"]) for t in complete}) == n
    assert {r["trial"] for r in lines} == {t.number for t in complete}


def test_killed_study_resumes_without_repeating_finished_trials(tmp_path):
    args = ["ablate", "killgrid", *TINY, "--grid", "dropout=0.1,0.2,0.3,0.4", "--seeds", "1",
            "--epochs", "6", "--set", "sasrec.patience=100", "--set", "sasrec.eval_every=1", "--out", str(tmp_path)]
    proc = subprocess.Popen([sys.executable, "-m", "bench.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline, killed = time.time() + 120, False
    while time.time() < deadline and proc.poll() is None:
        done = {r["run_id"] for r in results(tmp_path)}
        running = [c for c in tmp_path.glob("runs/synthetic/sasrec/*/checkpoint.pt")
                   if c.parent.name.split("-")[-1] not in done]
        if done and running:                      # one trial finished, the next one mid-training
            proc.send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(0.01)
    proc.wait()
    assert killed, "the study ended before it could be killed mid-way"
    before = results(tmp_path)
    assert 1 <= len(before) < 4
    assert load_study(tmp_path).get_trials(states=(TrialState.RUNNING,)), "no trial was left running"

    resumed = bench_cli(*args)
    assert resumed.returncode == 0, resumed.stderr
    study = load_study(tmp_path)
    assert_each_point_once(tmp_path, study, 4)
    assert results(tmp_path)[:len(before)] == before          # finished trials were not rerun
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert len(failed) == 1
    retried = [t for t in study.trials if t.system_attrs.get("failed_trial") == failed[0].number]
    assert len(retried) == 1 and retried[0].state == TrialState.COMPLETE
    # the table: one seed per point has no spread, so no point is marked best (and it says so)
    assert "killgrid" in resumed.stdout and "n = 1 seed: no spread, no best mark" in resumed.stdout
    assert not any(line.startswith("│ * ") for line in resumed.stdout.splitlines())


def test_two_workers_on_a_journal_file_run_each_of_12_points_once(tmp_path):
    proc = bench_cli("ablate", "grid12", *TINY, *GRID12, "--workers", "2", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    study = load_study(tmp_path)
    assert_each_point_once(tmp_path, study, 12)
    assert len({t.user_attrs["worker"] for t in study.trials}) == 2


@pytest.fixture
def postgres_url():
    url = os.environ.get("BENCH_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("BENCH_TEST_POSTGRES_URL is not set (.ci/postgres.sh start sets it)")
    import sqlalchemy as sa
    from bench.studies.storage import database_url

    name = f"bench_{uuid.uuid4().hex[:10]}"                    # a fresh database per test
    engine = sa.create_engine(database_url(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    yield url.rsplit("/", 1)[0] + "/" + name
    with engine.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
    engine.dispose()


def test_two_workers_on_postgresql_complete_a_grid(tmp_path, postgres_url):
    proc = bench_cli("ablate", "pggrid", *TINY, "--grid", "dropout=0.1,0.2,0.3", "--seeds", "2", "--epochs", "1",
                     "--workers", "2", "--out", str(tmp_path), "--storage", postgres_url)
    assert proc.returncode == 0, proc.stderr
    from bench.studies.storage import database_url
    study = load_study(tmp_path, database_url(postgres_url))
    assert_each_point_once(tmp_path, study, 6)
    assert len({t.user_attrs["worker"] for t in study.trials}) == 2


def test_bench_run_grid_on_a_dask_local_cluster(tmp_path):
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1",
                      dashboard_address=None) as cluster:
        proc = bench_cli("run", "--models", "sasrec,pop", "--dataset", "synthetic", "--seeds", "2", "--epochs", "1",
                         "--set", "sasrec.hidden=8", "--out", str(tmp_path), "--backend", "dask",
                         "--scheduler", cluster.scheduler_address)
        prefixes = set(cluster.scheduler.task_prefixes)
    assert proc.returncode == 0, proc.stderr
    assert sorted((r["model"], r["seed"]) for r in results(tmp_path)) == \
        [("pop", 0), ("pop", 1), ("sasrec", 0), ("sasrec", 1)]
    assert any("run_one" in p for p in prefixes), f"no run reached the Dask scheduler: {prefixes}"


def test_pruning_stops_a_hopeless_trial_and_best_json_reruns_the_best(tmp_path):
    from bench import registry
    from bench.runs.spec import build
    from bench.studies.runner import run_study
    from bench.studies.tune import TunePlan, save_best

    base = {"hidden": "16", "blocks": "1", "epochs": "4", "eval_every": "1", "patience": "100"}
    target = build("sasrec", "synthetic", out=str(tmp_path), sets=base)
    hopeless = {"lr": 1e-9}                                    # learns nothing in 4 epochs
    plan = TunePlan.of(target, trials=4, space={"lr": (1e-9, 2e-2, "log")},
                       extra=({"lr": 0.01}, {"lr": 0.001}, hopeless))
    study = run_study(plan, str(tmp_path / "journal.log"))
    states = {t.params["lr"]: t.state for t in study.trials}
    default_lr = registry.resolve("sasrec", {}, "synthetic").train.lr  # the first trial: the dataset's settings
    assert states == {default_lr: TrialState.COMPLETE, 0.01: TrialState.COMPLETE, 0.001: TrialState.COMPLETE,
                      1e-9: TrialState.PRUNED}
    pruned = study.get_trials(states=(TrialState.PRUNED,))[0]
    assert max(pruned.intermediate_values) < 4
    assert all(r["params"] != hopeless for r in results(tmp_path))     # a pruned run is not "finished"

    best = save_best(plan, study, tmp_path / "best.json")
    rerun = bench_cli("run", "--config", str(tmp_path / "best.json"), "--dataset", "synthetic",
                      "--out", str(tmp_path))
    assert rerun.returncode == 0, rerun.stderr
    assert "1 of 1 runs were already finished" in rerun.stdout         # the same config, hence the same run
    assert best.user_attrs["run_id"] in {r["run_id"] for r in results(tmp_path)}


def test_every_named_ablation_resolves_to_valid_configs():
    from bench import registry
    from bench.registry.runconfig import raw
    from bench.studies import ablation

    from bench.eval import splits
    from bench.eval.protocol import Protocol
    from bench.studies.runner import PROTOCOL_POINTS

    for name in ablation.ABLATIONS:
        study = ablation.find(name, None, {})
        assert study.points, name
        for point in study.points:     # each point is a valid override of the study's model, or a protocol
            registry.resolve(study.model, {study.model: {k: raw(v) for k, v in point.items()
                                                         if k not in PROTOCOL_POINTS}})
            protocol = Protocol(**{k: v for k, v in point.items() if k in PROTOCOL_POINTS})
            splits.check(protocol.split, protocol.order, protocol.cutoff)
    fidelity = ablation.find("code_fidelity", "diffurec", {})
    assert fidelity.model == "diffurec" and len(fidelity.points) == 4


TINY_DIFFUSION = ["--set", "diffurecsys.hidden=16", "--set", "diffurecsys.blocks=1", "--set", "diffurecsys.heads=2",
                  "--set", "diffurecsys.epochs=2", "--set", "diffurecsys.eval_every=1"]


def test_a_named_study_runs_on_the_verdicts_protocol_and_reports_differences_to_its_registered_point(tmp_path):
    """bench ablate noisy_target --exclude-seen --max-len 20: every run carries the protocol and the study's
    selection settings; the registered point is marked; the report sets each point against it."""
    from bench.runs import results
    from bench.reports.collect import collect
    from bench.reports import tables

    out = tmp_path / "out"
    proc = bench_cli("ablate", "noisy_target", "--dataset", "synthetic", "--seeds", "2", "--exclude-seen",
                     "--max-len", "20", *TINY_DIFFUSION, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    recs = [r for r in results.read(out) if r.get("study") == "noisy_target"]
    assert len(recs) == 4
    for r in recs:
        assert r["protocol"]["exclude_seen"] is True and r["protocol"]["max_len"] == 20
        assert r["config"]["valid_inference_steps"] == 1 and r["train"]["patience"] == 3
        assert r["train"]["precision"] == "fp32" and set(r["test_seen"]) == {"kept", "removed"}
    assert {(r["point"], r["registered"]) for r in recs} == {("registered", True), ("lambda=0", False)}
    coll = collect([out])
    (study, _, model), runs = next(iter(coll.studies().items()))
    table = tables.ablation(study, "synthetic", model, runs, coll.evals)
    names = [row.labels[0] for row in table.rows]
    # the registered checkpoints were scored again with x_t zeroed and shuffled (no training)
    assert names == ["registered", "registered, x_t zeroed", "registered, x_t shuffled", "lambda=0"]
    probes = [e for e in results.read(out, results.EVALS) if e.get("study") == "noisy_target"]
    assert sorted(e["rescore"] for e in probes) == ["x_t shuffled"] * 2 + ["x_t zeroed"] * 2
    assert table.rows[1].labels[2] == "re-scored" and table.rows[1].cells[0] is None
    assert table.rows[1].cells[-2].p is not None
    delta = table.rows[3].cells[-2]                # NDCG@10 removed, lambda = 0 against the registered point
    assert delta is not None and delta.p is not None and delta.unit == " pt" and delta.std > 0
    assert table.rows[0].cells[-2] is None
    line = next(n for n in table.notes if n.startswith("lambda=0 against registered: NDCG@10 "))
    assert "seen removed (p = " in line and "seen kept" in line and "HR@10" in line
    assert "Budget below the usual peak: 4 of 4 runs ended at their epoch budget (2 epochs)" in table.caption
    from bench.reports import figures

    fig = figures.ablation(study, "synthetic", model, runs)
    ticks = [t.get_text() for t in fig.fig.axes[0].get_xticklabels()]
    assert ticks == ["registered * (n = 2)", "lambda=0 (n = 2)"] and "95 % t-interval" in fig.caption
    # a second command with another study sharing the registered point trains nothing new
    again = bench_cli("ablate", "offset_noise", "--dataset", "synthetic", "--seeds", "2", "--exclude-seen",
                      "--max-len", "20", "--grid", "offset_noise=0.0", *TINY_DIFFUSION, "--out", str(out))
    assert again.returncode == 0, again.stderr
    trained = {r["run_id"] for r in results.read(out) if not r.get("reused")}
    assert len(trained) == 4
    rerun = bench_cli("ablate", "noisy_target", "--dataset", "synthetic", "--seeds", "2", "--exclude-seen",
                      "--max-len", "20", *TINY_DIFFUSION, "--out", str(out))
    assert rerun.returncode == 0 and len(results.read(out, results.EVALS)) == 4       # nothing re-scored twice
    # the registered run is offset_noise's too: its table shows no re-scoring of noisy_target's
    coll = collect([out])
    offset = next(runs for (name, _, _), runs in coll.studies().items() if name == "offset_noise")
    assert [row.labels[0] for row in tables.ablation("offset_noise", "synthetic", model, offset, coll.evals).rows] \
        == ["offset_noise=0.0, offset_kind=per_example (registered)"]


def test_a_study_whose_points_resolve_to_other_configs_is_another_study(monkeypatch):
    """The same named study after the model's defaults changed (or on another centre) has another
    study id, so none of its (point, seed) cells counts as covered by the earlier study's trials."""
    from bench import registry
    from bench.runs.spec import build
    from bench.studies import ablation
    from bench.studies.grid import GridPlan

    study = ablation.find("noisy_target", None, {})
    plan = lambda **sets: GridPlan.of(study, build("diffurecsys", "synthetic", sets=sets), [0, 1])
    first = plan()
    assert plan().study_id == first.study_id
    assert plan(variant="paper").study_id != first.study_id
    # every offset point sets both its fields, so each resolves as before when the default offset moves
    # from 0 to 0.1; only the point compared with changes, and with it the study
    offsets = ablation.find("offset_noise", None, {})
    at_default = GridPlan.of(offsets, build("diffurecsys", "synthetic"), [0])
    monkeypatch.setitem(registry.DATASET_DEFAULTS, "synthetic",
                        {**registry.DATASET_DEFAULTS["synthetic"], "offset_noise": "0.1"})
    moved = GridPlan.of(offsets, build("diffurecsys", "synthetic"), [0])
    assert [s.run_id for s in moved.specs] == [s.run_id for s in at_default.specs]
    assert at_default.registered.startswith("offset_noise=0.0") and moved.registered.startswith("offset_noise=0.1")
    assert moved.study_id != at_default.study_id
    monkeypatch.setitem(registry.DATASET_DEFAULTS, "synthetic",
                        {**registry.DATASET_DEFAULTS["synthetic"], "emb_dropout": "0.2"})
    assert plan().study_id != first.study_id


def test_a_study_run_around_two_registered_points_is_two_tables():
    """Runs of one study name whose registered points differ are reported apart, each table named by
    the fields where its registered point differs; a study id with the same registered point joins it."""
    from bench.reports.collect import Run
    from bench.reports.settings import by_centre

    def run(sid, point, registered, seed=0, **config):
        record = {"model": "diffurecsys", "dataset": "beauty", "seed": seed, "study": "noisy_target", "study_id": sid,
                  "point": point, "registered": registered, "protocol": {"max_len": 50},
                  "config": {"hidden": 128, "query_norm": True, "lambda_mean": 0.001, "xt_probe": "none", **config},
                  "train": {"precision": "fp32"}}
        return Run(record, Path("."))

    old = [run("a", "registered", True), run("a", "lambda=0", False, lambda_mean=0.0)]
    for r in old:                               # stored before xt_probe existed: it counts at its earlier value
        del r.record["config"]["xt_probe"]
    resumed = [run("a2", "registered", True, seed=1)]
    new = [run("b", "registered", True, query_norm=False),
           run("b", "lambda=0", False, query_norm=False, lambda_mean=0.0)]
    assert by_centre("noisy_target", old + resumed) == {"noisy_target": old + resumed}
    split = by_centre("noisy_target", old + new + resumed)
    assert split == {"noisy_target (around query_norm=True)": old + resumed,
                     "noisy_target (around query_norm=False)": new}


def test_centres_that_are_named_settings_of_the_model_are_named_so():
    """Around the registered defaults and around `variant=paper`: each table is named by the setting its
    registered point is, not by the six fields where the two differ."""
    import dataclasses

    from bench import registry
    from bench.reports.collect import Run
    from bench.reports.settings import by_centre

    def run(sid, **sets):
        spec = registry.resolve("diffurecsys", {"diffurecsys": sets}, "beauty", 50)
        record = {"model": "diffurecsys", "dataset": "beauty", "seed": 0, "study": "noisy_target", "study_id": sid,
                  "point": "registered", "registered": True, "protocol": {"max_len": 50},
                  "config": dataclasses.asdict(spec.config), "train": {"precision": "fp32"}}
        return Run(json.loads(json.dumps(record)), Path("."))

    default, paper = run("a"), run("b", variant="paper")
    split = by_centre("noisy_target", [default, paper])
    assert split == {"noisy_target (around the registered defaults)": [default],
                     "noisy_target (around variant=paper)": [paper]}
    # a setting near one: named by it and the fields where it leaves it
    near, odd = run("c", offset_noise="0.1"), run("d", variant="paper", query_norm="false")
    assert set(by_centre("noisy_target", [default, paper, near, odd])) == {
        "noisy_target (around the registered defaults)", "noisy_target (around variant=paper)",
        "noisy_target (around the registered defaults, offset_noise=0.1)",
        "noisy_target (around variant=paper, query_norm=False)"}
    far = run("e", variant="paper", query_norm="false", shared_norm="true", chain_blocks="false")
    assert set(by_centre("noisy_target", [default, far])) == {     # neither setting: named by its fields
        "noisy_target (around cross_kind=heads, offset_noise=0, padding_sink=50, query_per_position=True)",
        "noisy_target (around cross_kind=softmax, offset_noise=0.1, padding_sink=0, query_per_position=False)"}


def test_centres_differing_only_in_protocol_or_data_keep_every_run_and_studies_without_one_stay_whole():
    from bench.reports.collect import Run
    from bench.reports.settings import by_centre

    def run(sid, registered, max_len=50, study="attention", **extra):
        record = {"model": "diffurecsys", "dataset": "beauty", "seed": 0, "study": study, "study_id": sid,
                  "registered": registered, "protocol": {"max_len": max_len}, "config": {"hidden": 128},
                  "train": {"precision": "fp32"}, **extra}
        return Run(record, Path("."))

    short, long = [run("a", True)], [run("b", True, max_len=100)]
    split = by_centre("attention", short + long)
    assert split == {"attention (around max_len=50)": short, "attention (around max_len=100)": long}
    cut = [run("c", False)]                         # a grid cut to points without the registered one
    assert by_centre("attention", short + cut) == {"attention": short + cut}
    three = by_centre("attention", short + long + cut)
    assert sum(map(len, three.values())) == 3 and "attention (study id c, no registered point)" in three
    tune = [run("t1", False, study="tune"), run("t2", False, study="tune")]
    assert by_centre("tune", tune) == {"tune": tune}


def test_every_named_study_contains_its_models_registered_point(data_dir):
    """Each study's differences are taken against its registered point, so each has one."""
    from bench.runs.spec import build
    from bench.studies import ablation
    from bench.studies.grid import GridPlan

    for name in ablation.ABLATIONS:           # on Beauty: the synthetic presets (4 reverse steps) are no point's
        study = ablation.find(name, None, {})
        plan = GridPlan.of(study, build(study.model, "beauty", data_dir=data_dir), [0])
        assert plan.registered is not None, name


def test_the_shuffled_study_is_one_table_with_the_shuffled_point_against_histories_in_order(tmp_path):
    """A study that varies the protocol (history order) reports its points side by side, each against the
    registered one, paired over the same users."""
    from bench.reports import tables
    from bench.reports.collect import collect

    out = tmp_path / "out"
    proc = bench_cli("ablate", "shuffled", *TINY, "--set", "sasrec.epochs=2", "--seeds", "0,",
                     "--exclude-seen", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    coll = collect([out])
    assert len(coll.studies()) == 1
    (study, d, model), runs = next(iter(coll.studies().items()))
    table = tables.ablation(study, d, model, runs, coll.evals)
    assert [row.labels[0] for row in table.rows] == ["chronological (registered)", "shuffled"]
    assert table.rows[1].cells[-2] is not None and table.rows[1].cells[-2].p is not None
