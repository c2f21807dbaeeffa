"""Models from outside the package: docs/adding-a-model.md's example, run through the CLI as written there."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "adding-a-model.md"


def example() -> str:
    return re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)


def bench(*args, cwd, env=None, timeout=600):
    """The `bench` command as a user types it, in `cwd` (no PYTHONPATH of the tests' own)."""
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-m", "bench.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env={**clean, **(env or {})}, timeout=timeout)


def test_the_documented_model_is_about_30_lines_and_runs_from_its_folder_with_jobs_eval_recommend_report(tmp_path):
    code = example()
    assert len([line for line in code.splitlines() if line.strip()]) <= 35
    work = tmp_path / "work"
    work.mkdir()
    (work / "lastitem.py").write_text(code)
    run = bench("run", "--models", "lastitem:LastItem,pop", "--dataset", "synthetic", "--seeds", "2", "--jobs", "2",
                "--set", "lastitem:LastItem.epochs=6", "--out", "runs", cwd=work)
    assert run.returncode == 0, run.stderr[-3000:]
    records = [json.loads(line) for line in (work / "runs" / "results.jsonl").read_text().splitlines()]
    mine = [r for r in records if r["model"] == "lastitem:LastItem"]
    assert len(mine) == 2 and all(r["model_dir"] == str(work.resolve()) for r in mine)
    assert all(r["train"]["epochs"] == 6 for r in mine)
    # a first-order model on the synthetic data (the next item mostly follows the last one): far above MostPop
    pop = next(r for r in records if r["model"] == "pop")
    assert min(r["test"]["ndcg@10"] for r in mine) > 2 * pop["test"]["ndcg@10"]
    run_dir = work / "runs" / "runs" / "synthetic" / "lastitem.LastItem"
    assert len(list(run_dir.glob("seed*"))) == 2
    # later commands, from another folder, find the model through the runs' records
    other = tmp_path / "elsewhere"
    other.mkdir()
    runs = str(work / "runs")
    for args in (("results", runs), ("status", runs),
                 ("eval", "--models", "lastitem:LastItem", "--dataset", "synthetic", "--out", runs, "--seed", "0"),
                 ("recommend", str(next(run_dir.glob("seed0-*"))), "--k", "5", "--out", str(other / "top.csv")),
                 ("report", runs, "--out", str(other / "report"), "--baseline", "pop", "--format", "md,csv")):
        proc = bench(*args, cwd=other)
        assert proc.returncode == 0, (args, proc.stderr[-3000:])
    assert "lastitem:LastItem" in (other / "report" / "report.md").read_text()
    assert len((other / "top.csv").read_text().splitlines()) > 100


def test_an_installed_package_registers_a_model_by_name_through_its_entry_point(tmp_path):
    site = tmp_path / "site"
    (site / "mypkg").mkdir(parents=True)
    (site / "mypkg" / "__init__.py").write_text("")
    (site / "mypkg" / "lastitem.py").write_text(example())
    info = site / "mypkg-0.1.dist-info"           # what pip writes for an installed package
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mypkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[bench.models]\nlastitem = mypkg.lastitem:LastItem\n")
    env = {"PYTHONPATH": str(site)}
    listed = bench("models", cwd=tmp_path, env=env)
    assert listed.returncode == 0 and "lastitem" in listed.stdout, listed.stderr
    run = bench("run", "--models", "lastitem", "--dataset", "synthetic", "--set", "lastitem.epochs=2",
                "--out", str(tmp_path / "runs"), cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    record = json.loads((tmp_path / "runs" / "results.jsonl").read_text())
    assert record["model"] == "lastitem" and record["model_dir"] == str(site.resolve())


def test_a_model_that_cannot_be_imported_or_breaks_the_contract_is_one_line(tmp_path):
    (tmp_path / "broken.py").write_text("import not_a_module_anywhere\n")
    (tmp_path / "partial.py").write_text("class Half:\n    train_format = 'prefix'\n")
    for spec, message in (("nothere:Model", "cannot import model 'nothere:Model': no module named 'nothere'"),
                          ("broken:Model", "ModuleNotFoundError: No module named 'not_a_module_anywhere'"),
                          ("partial:Nope", "module 'partial' has no 'Nope'"),
                          ("partial:Half", "lacks Config, train_defaults, score, loss (or fit)"),
                          ("not a model", "unknown model 'not a model'")):
        proc = bench("run", "--models", spec, "--dataset", "synthetic", "--out", "runs", cwd=tmp_path)
        assert proc.returncode != 0 and message in proc.stderr, (spec, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "runs").exists()


def test_a_researchers_own_models_package_runs_beside_the_registered_diffusion_models(tmp_path):
    """bench's model families are `bench.models` and `bench.baselines`: a folder of the user's called `models`
    neither hides them nor is hidden by them."""
    work = tmp_path / "work"
    (work / "models").mkdir(parents=True)
    (work / "models" / "__init__.py").write_text("")
    (work / "models" / "lastitem.py").write_text(example())
    run = bench("run", "--models", "models.lastitem:LastItem,diffurec,sasrec", "--dataset", "synthetic",
                "--set", "models.lastitem:LastItem.epochs=2", "--set", "diffurec.epochs=1", "--set", "sasrec.epochs=1",
                "--out", "runs", cwd=work)
    assert run.returncode == 0, run.stderr[-3000:]
    records = [json.loads(line) for line in (work / "runs" / "results.jsonl").read_text().splitlines()]
    assert sorted(r["model"] for r in records) == ["diffurec", "models.lastitem:LastItem", "sasrec"]
    imported = subprocess.run([sys.executable, "-c", "import bench.registry as r, sys; r.model_class('diffurec'); "
                               "print(sorted(m for m in sys.modules if m.split('.')[0] in "
                               "('models', 'baselines', 'studies', 'reports')))"],
                              cwd=tmp_path, capture_output=True, text=True, check=True,
                              env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert imported.stdout.strip() == "[]"
