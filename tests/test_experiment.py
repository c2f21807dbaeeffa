"""`bench run --experiment FILE.toml`: a grid written down once; the same runs as the same flags."""
import hashlib
import json

import pytest

from tests.conftest import bench_cli

EXPERIMENT = """\
# two models, two seeds, the protocol and a setting
models = ["pop", "sasrec"]
datasets = ["synthetic"]
seeds = [0, 1]
max_len = 20
exclude_seen = true
out = "results"

[set.sasrec]
epochs = 2
hidden = 16
"""
FLAGS = ("run", "--models", "pop,sasrec", "--dataset", "synthetic", "--seeds", "2", "--max-len", "20",
         "--exclude-seen", "--set", "sasrec.epochs=2", "--set", "sasrec.hidden=16")


def records(out):
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_experiment_file_and_equivalent_flags_are_the_same_runs(tmp_path):
    path = tmp_path / "paper.toml"
    path.write_text(EXPERIMENT)
    by_file = bench_cli("run", "--experiment", str(path))
    assert by_file.returncode == 0, by_file.stderr
    out = tmp_path / "results"                       # out is relative to the file
    first = records(out)
    assert len(first) == 4 and all(r["protocol"]["exclude_seen"] and r["protocol"]["max_len"] == 20 for r in first)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    stored = out / f"experiments/paper-{sha[:12]}.toml"
    assert stored.read_bytes() == path.read_bytes()
    assert all(r["experiment"] == {"file": str(stored.relative_to(out)), "sha256": sha, "name": "paper"}
               for r in first)
    # the same grid by flags, in a fresh folder: the same run ids
    flags_out = tmp_path / "by_flags"
    by_flags = bench_cli(*FLAGS, "--out", str(flags_out))
    assert by_flags.returncode == 0, by_flags.stderr
    assert sorted(r["run_id"] for r in records(flags_out)) == sorted(r["run_id"] for r in first)
    # and in the experiment's folder, every run is found finished
    again = bench_cli(*FLAGS, "--out", str(out))
    assert again.returncode == 0 and "4 of 4 runs were already finished" in again.stdout, again.stdout
    assert len(records(out)) == 4


def test_an_experiment_file_sets_the_split_and_the_order_as_the_flags_do(tmp_path):
    path = tmp_path / "shuffled.toml"
    path.write_text('models = "sasrec"\ndataset = "synthetic"\norder = "shuffled"\nout = "results"\n'
                    '[set.sasrec]\nepochs = 1\nhidden = 16\n')
    by_file = bench_cli("run", "--experiment", str(path))
    assert by_file.returncode == 0, by_file.stderr
    by_flags = bench_cli("run", "--models", "sasrec", "--dataset", "synthetic", "--order", "shuffled", "--set",
                         "sasrec.epochs=1", "--set", "sasrec.hidden=16", "--out", str(tmp_path / "flags"))
    assert by_flags.returncode == 0, by_flags.stderr
    (mine,), (theirs,) = records(tmp_path / "results"), records(tmp_path / "flags")
    assert mine["protocol"]["order"] == "shuffled" and mine["run_id"] == theirs["run_id"]
    clash = bench_cli("run", "--experiment", str(path), "--order", "shuffled", "--dry-run")
    assert clash.returncode == 2 and "--order cannot be given with --experiment" in clash.stderr, clash.stderr


@pytest.mark.parametrize("body, says", [
    ('models = "sasrec"\ndataset = "synthetic"\nseed = 3\n', "unknown key seed"),
    ('models = "sasrec"\n', "give 'dataset'"),
    ('dataset = "synthetic"\ndatasets = ["toys"]\n', "give 'dataset'"),
    ('dataset = "synthetic"\nseeds = "three"\n', "'seeds' must be"),
    ('dataset = "synthetic"\nexclude_seen = "yes"\n', "'exclude_seen' must be true or false"),
    ('dataset = "synthetic"\norder = "reversed"\n', "unknown order 'reversed'"),
    ('dataset = "synthetic"\ncutoff = "late"\n', "'cutoff' must be a number"),
    ('dataset = "synthetic"\n[set.sasrec]\nhiden = 3\n', "unknown field 'sasrec.hiden'"),
    ('dataset = "synthetic"\nmodels = "sasrec"\n[set]\nsasrec = 3\n', "'set' must be tables"),
    ('dataset = "synthetic"\nmodels = [\n', "is not valid TOML"),
])
def test_a_bad_experiment_file_is_one_line_and_creates_nothing(tmp_path, body, says):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    proc = bench_cli("run", "--experiment", str(path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and says in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "out").exists()


def test_grid_flags_beside_an_experiment_are_refused(tmp_path):
    path = tmp_path / "paper.toml"
    path.write_text(EXPERIMENT)
    proc = bench_cli("run", "--experiment", str(path), "--seeds", "3", "--dataset", "toys")
    assert proc.returncode == 2 and "--dataset, --seeds cannot be given with --experiment" in proc.stderr
    dry = bench_cli("run", "--experiment", str(path), "--dry-run")
    assert dry.returncode == 0 and "plan: 4 runs (4 new" in dry.stdout, dry.stdout + dry.stderr
    assert not (tmp_path / "results").exists()
    missing = bench_cli("run", "--models", "pop")
    assert missing.returncode == 2 and "needs --dataset" in missing.stderr


def test_bench_runs_options_are_declared_once_and_an_experiment_file_sets_the_grid_ones():
    """The `bench run` command is built from RunOptions: its flags are the record's fields, and the options
    marked GRID are exactly those an experiment file replaces (a field added there is a flag and, if
    marked, a clash beside --experiment, with nothing else to edit)."""
    import dataclasses

    import typer.main

    from bench.cli.main import app
    from bench.cli.runoptions import RunOptions, flag, grid_names
    from bench.runs.experiment import Experiment

    command = typer.main.get_command(app).commands["run"]
    fields = [f.name for f in dataclasses.fields(RunOptions)]
    assert [p.name for p in command.params if p.name != "help"] == fields
    assert {flag(name) for name in fields} == {p.opts[0] for p in command.params if p.name != "help"}
    experiment_fields = {f.name for f in dataclasses.fields(Experiment)}
    assert set(grid_names()) - {"dataset"} <= experiment_fields
    assert {"dataset", "models", "seeds", "max_len", "exclude_seen", "sets", "split", "order"} <= set(grid_names())
    assert not {"out", "jobs", "threads", "device", "data_dir"} & set(grid_names())
    changed = dict(dataset="toys", models="pop", seeds="3", epochs=1, max_len=20, exclude_seen=True,
                   sets=["pop.x=1"], split="temporal", cutoff=0.5, order="shuffled")
    for name in grid_names():
        assert RunOptions(**{name: changed[name]}).grid_given() == [flag(name)]
    assert RunOptions(split="leave-one-out", out="x", jobs=2).grid_given() == []


def test_the_study_commands_take_bench_runs_protocol_options_from_one_record():
    """`bench ablate` and `bench tune` are built from StudyOptions: each takes every protocol option of
    `bench run` under the same flag, and their shared options are declared once."""
    import dataclasses

    import typer.main

    from bench.cli.main import app
    from bench.cli.runoptions import flag
    from bench.studies.cli import StudyOptions

    commands = typer.main.get_command(app).commands
    shared = {f.name for f in dataclasses.fields(StudyOptions)}
    protocol = {"max_len", "exclude_seen", "split", "cutoff", "order"}
    assert protocol <= shared
    for name in ("ablate", "tune"):
        flags = {p.name: p.opts[0] for p in commands[name].params}
        assert shared <= set(flags)
        assert {flags[f] for f in protocol} == {flag(f) for f in protocol}


@pytest.mark.parametrize("name", ["verdict", "ml-1m", "ml-1m-200"])
def test_the_shipped_experiment_files_load_and_resolve(name):
    from pathlib import Path

    from bench import data, registry
    from bench.runs import experiment

    root = Path(__file__).resolve().parent.parent
    e = experiment.load(root / "experiments" / f"{name}.toml")
    assert e.exclude_seen and e.seeds == "3" and e.out.resolve().parent == root / "runs"
    assert all(d in data.NAMED for d in e.datasets)
    for d in e.datasets:
        for m in registry.parse_models(e.models):
            spec = registry.resolve(m, {}, d, e.max_len)
            if m == "sasrec":
                assert spec.config.pad_slots == e.max_len
