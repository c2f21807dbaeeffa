"""`bench report` on small real runs: open the PDF, GIFs, LaTeX and Markdown and check what they hold."""
import json
import re
import shutil
import statistics
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from pypdf import PdfReader
from scipy import stats

from bench.errors import BenchError
from bench.reports.build import build_report
from tests.conftest import ROOT, bench_cli
from tests.report_fixture import records

NAMES = {"diffurecsys": "DiffuRecSys", "sasrec": "SASRec", "pop": "MostPop"}
METRICS = ("hr@5", "hr@10", "hr@20", "ndcg@5", "ndcg@10", "ndcg@20", "mrr")


@pytest.fixture(scope="session")
def report(runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("report_out")
    proc = bench_cli("report", str(runs), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def chosen_records(runs, untagged=False) -> dict[str, list[dict]]:
    """Per model, the records (one per seed) of the config with the best mean validation NDCG@10."""
    latest = {r["run_id"]: r for r in records(runs) if not (untagged and "study" in r)}
    groups = {}
    for r in latest.values():
        train = {k: v for k, v in r["train"].items() if k != "eval_batch_size"}
        groups.setdefault((r["model"], json.dumps([r["config"], train], sort_keys=True)), []).append(r)
    best = {}
    for (model, _), rs in groups.items():
        valid = statistics.fmean(r["valid"]["ndcg@10"] for r in rs)
        if model not in best or valid > best[model][0]:
            best[model] = (valid, rs)
    return {m: v[1] for m, v in best.items()}


def chosen_means(runs, untagged=False) -> dict[str, dict[str, float]]:
    """Per model, test means (%) of the config with the best mean validation NDCG@10, from the records."""
    return {m: {k: 100 * statistics.fmean(r["test"][k] for r in rs) for k in METRICS}
            for m, rs in chosen_records(runs, untagged).items()}


def markdown_rows(text: str, first: str) -> dict[str, list[str]]:
    """Rows of the Markdown table whose header starts with `first`: label -> cells."""
    block = text.split(f"| {first} |", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    return {cells[0]: cells[3:] for cells in ([c.strip() for c in line.strip("|").split("|")] for line in block)}


def chosen_bands(runs, untagged=False) -> dict[str, dict[str, tuple[float, float | None]]]:
    """Per model, test mean and sample std (%) over seeds of the chosen config (std None for one seed)."""
    out = {}
    for m, rs in chosen_records(runs, untagged).items():
        vals = {k: [100 * r["test"][k] for r in rs] for k in METRICS}
        out[m] = {k: (statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else None) for k, v in vals.items()}
    return out


def expected_marks(bands: dict[str, tuple[float, float | None]]) -> dict[str, str]:
    """'best' / 'second' / '' per model for one column: a mark only beyond the seed spread."""
    def beats(a, b):
        return bands[a][1] is not None and bands[a][0] - bands[a][1] > bands[b][0] + (bands[b][1] or 0)

    order = sorted(bands, key=lambda m: -bands[m][0])
    marks = dict.fromkeys(order, "")
    if all(beats(order[0], m) for m in order[1:]):
        marks[order[0]] = "best"
        if len(order) > 2 and all(beats(order[1], m) for m in order[2:]):
            marks[order[1]] = "second"
    return marks


def test_markdown_marks_best_only_beyond_the_seed_spread(runs, report):
    bands = chosen_bands(runs)
    rows = markdown_rows((report / "tables" / "compare_synthetic.md").read_text(), "Model")
    assert set(rows) == {NAMES[m] for m in bands} | {"Improv."}
    for j, metric in enumerate(METRICS):
        marks = expected_marks({m: b[metric] for m, b in bands.items()})
        for m, mark in marks.items():
            cell = rows[NAMES[m]][j]
            assert cell.startswith(f"**{bands[m][metric][0]:.2f}") == (mark == "best"), (metric, m, cell)
            assert cell.startswith(f"<u>{bands[m][metric][0]:.2f}") == (mark == "second"), (metric, m, cell)
    assert "mean − std above every other mean + std" in (report / "tables" / "compare_synthetic.md").read_text()


def test_pdf_has_every_page_and_the_table_values(runs, report):
    reader = PdfReader(report / "report.pdf")
    n_tables = len(list((report / "tables").glob("*.md")))
    n_figures = len(list((report / "figures").glob("*.png")))
    n_gifs = len(list((report / "gifs").glob("*.gif")))
    assert n_tables == 4 and n_gifs == 3 and n_figures >= 6       # compare, protocols, 2 ablations
    assert len(reader.pages) == 1 + n_tables + n_figures + n_gifs + 1
    pages = [p.extract_text() for p in reader.pages]
    recs = records(runs)
    for needle in ("leave-one-out", "pessimistic", "synthetic", recs[0]["git_revision"], recs[0]["versions"]["torch"]):
        assert needle in pages[0], needle
    table = pages[1]
    for model, means in chosen_means(runs).items():
        assert NAMES[model] in table
        for metric in METRICS:
            assert f"{means[metric]:.2f}" in table, (model, metric)
    assert "Optimization History" in "".join(pages) and "Pareto-front" in "".join(pages)
    assert (report / "figures" / "optuna_pareto_dropout_latency.png").exists()
    stills = [p for p in pages if ".gif" in p]
    assert len(stills) == n_gifs and all("frames" in p for p in stills)


def test_gifs_are_animated_and_small(report):
    frames = {}
    for gif in (report / "gifs").glob("*.gif"):
        with Image.open(gif) as im:
            assert im.size == (400, 300), gif.name
            frames[gif.name.split("_")[0]] = im.n_frames
    assert frames["growth"] == 4                        # MostPop at epoch 0, the others at epochs 1-3
    assert frames["reverse"] == 9                       # DiffuRecSys's x_T and its 8 reverse steps
    assert frames["ablation"] == 3                      # the dropout sweep evaluated at epochs 1-3


def balanced(text: str) -> bool:
    depth = 0
    for ch in re.sub(r"\\[{}]", "", text):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def test_latex_is_a_booktabs_table(runs, report, tmp_path):
    tex = (report / "tables" / "compare_synthetic.tex").read_text()
    for piece in (r"\begin{tabular}", r"\toprule", r"\midrule", r"\bottomrule", r"\end{table}"):
        assert piece in tex
    assert balanced(tex)
    bands = {m: b["ndcg@10"] for m, b in chosen_bands(runs).items()}
    for m, mark in expected_marks(bands).items():
        row = next(line for line in tex.splitlines() if line.startswith(NAMES[m] + " &"))
        assert (rf"\textbf{{{bands[m][0]:.2f}}}" in row) == (mark == "best"), (m, row)
    everything = "".join(p.read_text() for p in sorted((report / "tables").glob("*.tex")))
    doc = tmp_path / "t.tex"
    doc.write_text("\\documentclass{article}\\usepackage{booktabs,graphicx}\\begin{document}\n"
                   + everything + "\\end{document}\n")
    if not shutil.which("pdflatex"):        # .ci/latex.sh installs it
        pytest.fail("pdflatex is needed to compile the LaTeX tables: run .ci/latex.sh (TeX Live, booktabs)")
    cmd = ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and (tmp_path / "t.pdf").exists(), proc.stdout[-2000:]


def per_user(runs, model, metric) -> np.ndarray:
    recs = {r["run_id"]: r for r in records(runs) if r["model"] == model and "study" not in r}
    cols = []
    for r in recs.values():
        lines = (runs / r["per_user"]).read_text().splitlines()
        j = lines[0].split(",").index(metric)
        cols.append([float(line.split(",")[j]) for line in lines[1:]])
    return np.mean(cols, axis=0)


def without_studies(runs, dest):
    """A copy of the runs with no study lines, journals or trajectories."""
    shutil.copytree(runs, dest, ignore=shutil.ignore_patterns("trajectory.npz", "*.pt", "studies"))
    lines = [json.dumps(r) for r in records(runs) if "study" not in r]
    (dest / "results.jsonl").write_text("\n".join(lines) + "\n")
    return dest


@pytest.mark.parametrize("test", ["ttest", "wilcoxon"])
def test_improvement_row_and_holm_corrected_marks(runs, tmp_path, test):
    plain = without_studies(runs, tmp_path / "runs")
    proc = bench_cli("report", str(plain), "--out", str(tmp_path / "out"), "--format", "md,csv", "--test", test)
    assert proc.returncode == 0, proc.stderr
    rows = markdown_rows((tmp_path / "out" / "tables" / "compare_synthetic.md").read_text(), "Model")
    means = chosen_means(runs, untagged=True)
    for j, metric in enumerate(METRICS):
        ref = per_user(runs, "diffurecsys", metric)
        raw = {}
        for m in ("sasrec", "pop"):
            other = per_user(runs, m, metric)
            raw[m] = 1.0 if not np.any(ref - other) else (
                stats.ttest_rel(ref, other) if test == "ttest" else stats.wilcoxon(ref, other)).pvalue
        (lo, p_lo), (hi, p_hi) = sorted(raw.items(), key=lambda kv: kv[1])
        holm = {lo: min(1.0, 2 * p_lo), hi: max(min(1.0, 2 * p_lo), p_hi)}      # two baselines
        for m in raw:
            assert rows[NAMES[m]][j].endswith("†") == (holm[m] < 0.05), (metric, m, holm)
        best = max(raw, key=lambda m: means[m][metric])
        pct = 100 * (means["diffurecsys"][metric] - means[best][metric]) / means[best][metric]
        assert rows["Improv."][j].startswith(f"{pct:+.2f}%"), (metric, rows["Improv."][j])
        assert rows["Improv."][j].endswith("*") == (holm[best] < 0.05 and pct > 0)
    csv_rows = (tmp_path / "out" / "tables" / "compare_synthetic.csv").read_text().splitlines()
    assert csv_rows[0].startswith("Model,Seeds,Epochs,hr@5,hr@5_std,hr@5_p") and csv_rows[-1].startswith("Improv.")


def test_optional_pieces_missing_are_noted_without_training_code(runs, tmp_path):
    plain, out = without_studies(runs, tmp_path / "runs"), tmp_path / "out"
    code = ("import sys; from pathlib import Path; from reports.build import build_report; "
            f"build_report([Path({str(plain)!r})], Path({str(out)!r}), {{'md', 'tex', 'csv', 'gif'}}); "
            "bad = [m for m in sys.modules if m == 'torch' "
            "or m.startswith(('bench.train.loop', 'models', 'baselines'))]; "
            "assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = (out / "report.md").read_text()
    for needle in ("No study runs", "No trajectory.npz", "no ablation GIF"):
        assert needle in text, needle
    assert [p.name for p in (out / "gifs").iterdir()] == ["growth_synthetic.gif"]


def test_bad_input_is_one_error_line(runs, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(runs, broken, ignore=shutil.ignore_patterns("*.pt", "*.npz"))
    victim = next(broken.glob("runs/synthetic/sasrec/*/history.csv"))
    victim.unlink()
    (tmp_path / "empty").mkdir()
    cli_cases = {
        "no results": ([str(tmp_path / "empty")], "no results.jsonl"),
        "unknown format": ([str(runs), "--format", "pdf,docx"], "docx"),
        "missing history": ([str(broken)], str(victim)),
    }
    for label, (args, needle) in cli_cases.items():
        proc = bench_cli("report", *args, "--out", str(tmp_path / "out"))
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:"), (label, proc.stderr)
        assert needle in lines[0], (label, lines[0])
    assert not (tmp_path / "out").exists()              # nothing written before the error
    cases = {
        "not a folder": (dict(dirs=[tmp_path / "absent"]), "is not a folder"),
        "unknown test": (dict(test="anova"), "anova"),
        "unknown baseline": (dict(reference="nosuch", strict_reference=True), "sasrec"),
    }
    for label, (kwargs, needle) in cases.items():
        args = {"dirs": [runs], "out": tmp_path / "out", "formats": {"md"}, **kwargs}
        with pytest.raises(BenchError, match=needle):
            build_report(**args)


def test_reevaluations_table(runs, tmp_path):
    from bench.eval import reeval
    from bench.data import synthetic

    folder = tmp_path / "runs"
    shutil.copytree(runs, folder)
    record = reeval.find_runs(folder, ["diffurecsys"], "synthetic", None, [0], None)[0]
    same = reeval.reevaluate(folder, record, synthetic(), {})
    fast = reeval.reevaluate(folder, record, synthetic(), {"inference_steps": "1"}, splits=("valid",))
    out = tmp_path / "out"
    proc = bench_cli("report", str(folder), "--out", str(out), "--format", "md,csv")
    assert proc.returncode == 0, proc.stderr
    text = (out / "tables" / "reevaluations.md").read_text()
    rows = {line.split("|")[4].strip(): [c.strip() for c in line.strip().strip("|").split("|")[4:]]
            for line in text.splitlines() if line.startswith("| synthetic")}
    as_trained = [f"{100 * record[s][m]:.2f}" for s, m in
                  (("valid", "hr@10"), ("valid", "ndcg@10"), ("test", "hr@10"), ("test", "ndcg@10"))]
    assert rows["as trained"] == as_trained
    assert rows["nothing (reproduction)"] == as_trained            # the stored figures come back
    assert rows["inference_steps=1"][:2] == [f"{100 * fast['valid'][m]:.2f}" for m in ("hr@10", "ndcg@10")]
    assert rows["inference_steps=1"][2:] == ["", ""]              # test was not evaluated
    assert same["changes"] == {} and "re-evaluated runs" in (out / "report.md").read_text()
    assert len((out / "tables" / "reevaluations.csv").read_text().splitlines()) == 4    # header + 3 rows


def test_rescored_takes_metrics_and_per_user_values_from_a_no_change_reevaluation(runs, tmp_path):
    """A run stored by older scoring code (here: its stored test figures and per-user file overwritten)
    is reported as stored by default, and as its no-change `bench eval` says with --rescored."""
    from bench.eval import reeval
    from bench.data import synthetic
    from bench.reports.collect import collect

    folder = tmp_path / "runs"
    shutil.copytree(runs, folder)
    record = reeval.find_runs(folder, ["diffurecsys"], "synthetic", None, [0], None)[0]
    again = reeval.reevaluate(folder, record, synthetic(), {})
    other = reeval.find_runs(folder, ["diffurecsys"], "synthetic", None, [1], None)[0]
    lines = (folder / "results.jsonl").read_text().splitlines()
    stale = {**record, "test": {m: 0.0 for m in record["test"]}}
    (folder / "results.jsonl").write_text("\n".join(
        json.dumps(stale) if json.loads(line)["run_id"] == record["run_id"] else line for line in lines) + "\n")
    own = folder / record["per_user"]
    header, *body = own.read_text().splitlines()
    miss = ",".join("1000000" if column == "rank" else "0" for column in header.split(","))  # ranked far below
    own.write_text("\n".join([header] + [miss] * len(body)) + "\n")

    def per_user(rescored):
        coll = collect([folder], rescored)
        return next(v for v in coll.variants() if v.model == "diffurecsys").per_user("hr@10"), coll.notes

    from bench.reports.collect import read_csv
    fresh, seed1 = read_csv(folder / again["per_user"])["hr@10"], read_csv(folder / other["per_user"])["hr@10"]
    stored, notes = per_user(False)
    assert np.allclose(stored, seed1 / 2) and notes == []
    rescored, notes = per_user(True)
    assert np.allclose(rescored, (fresh + seed1) / 2) and fresh.any()
    assert notes and notes[0].startswith("--rescored: 1 of ")

    for flag, seed0 in (([], 0.0), (["--rescored"], again["test"]["hr@10"])):
        out = tmp_path / f"out{len(flag)}"
        proc = bench_cli("report", str(folder), "--out", str(out), "--format", "md", *flag)
        assert proc.returncode == 0, proc.stderr
        text = (out / "tables" / "compare_synthetic.md").read_text()
        mean = 100 * (seed0 + other["test"]["hr@10"]) / 2
        cell = re.sub(r"</?u>|\*", "", markdown_rows(text, "Model")["DiffuRecSys"][1])
        assert cell.startswith(f"{mean:.2f}±"), (flag, cell)


def test_protocols_table_shows_both_seen_settings_and_matching_published_rows(runs, tmp_path, monkeypatch):
    """Both seen-item settings from the same runs, published rows of the same protocol only, with the
    relative difference, and the diffusion model tested against SASRec under each setting."""
    from bench.reports import published

    n_items = records(runs)[0]["n_items"]
    table = tmp_path / "published.csv"
    table.write_text(
        "model,label,dataset,seen,max_len,n_items,seeds,hr@10,ndcg@10,source\n"
        f"sasrec,SASRec reported,synthetic,kept,50,{n_items},1,10.0,5.0,a paper (Table 1)\n"
        f"esasrec,eSASRec reported,synthetic,removed,50,{n_items},1,20.0,8.0,repo@abc README.md\n"
        f"sasrec,SASRec at max_len 200,synthetic,kept,200,{n_items},1,30.0,9.0,another paper\n"
        f"sasrec,SASRec other items,synthetic,kept,50,{n_items + 1},1,40.0,9.5,another paper\n")
    monkeypatch.setattr(published, "PUBLISHED", table)
    out = tmp_path / "out"
    build_report([runs], out, {"md"})
    text = (out / "tables" / "protocols_synthetic.md").read_text()
    rows = {cells[0]: cells[1:] for cells in ([c.strip() for c in line.strip("|").split("|")]
                                              for line in text.splitlines() if line.startswith("| "))}
    latest = chosen_records(runs)["sasrec"]
    for j, (seen, metric) in enumerate((("kept", "hr@10"), ("kept", "ndcg@10"), ("removed", "hr@10"),
                                        ("removed", "ndcg@10")), start=4):
        mean = statistics.fmean(100 * r["test_seen"][seen][metric] for r in latest)
        assert re.sub(r"</?u>|\*", "", rows["SASRec"][j]).startswith(f"{mean:.2f}"), (seen, metric)
    for r in records(runs):                  # the protocol's own test is its entry, the other differs
        assert r["test_seen"]["kept"] == r["test"] and r["per_user_seen"]["kept"] != r["per_user"]
        assert r["test_seen"]["removed"]["mrr"] >= r["test"]["mrr"]       # fewer candidates, never a worse rank
    kept_hr = statistics.fmean(100 * r["test_seen"]["kept"]["hr@10"] for r in latest)
    assert rows["published: SASRec reported"][4:6] == ["10.00", "5.00"]
    assert rows["Δ SASRec measured vs published"][4].startswith(f"{100 * (kept_hr - 10) / 10:+.2f}%")
    assert rows["published: eSASRec reported"][6:8] == ["20.00", "8.00"]
    assert "published: SASRec at max_len 200" not in rows and "published: SASRec other items" not in rows
    assert "Δ eSASRec measured vs published" not in rows          # not a measured model
    assert rows["SASRec"][1] == "4"                       # configurations run: default, 2 other dropouts, bce
    assert rows["SASRec"][2] == "-"                       # synthetic settings were not chosen by tuning.csv
    assert "repo@abc README.md" in text and "a paper (Table 1)" in text
    for seen in ("kept", "removed"):
        assert re.search(rf"Seen {seen}, NDCG@10: DiffuRecSys is \d+\.\d % (above|below) SASRec \(p = ", text)


def test_published_file_holds_the_anchor_rows():
    from bench.reports import published

    rows = published.load()
    beauty_kept = {(p.model, p.hr10, p.ndcg10) for p in published.matching("beauty", 12101, 50, "kept")}
    assert ("diffurec", 7.91, 4.75) in beauty_kept and ("sasrec", 6.26, 3.23) in beauty_kept
    beauty_removed = {(p.model, p.hr10, p.ndcg10) for p in published.matching("beauty", 12101, 50, "removed")}
    assert ("sasrec", 9.86, 5.97) in beauty_removed and ("bsarec", 10.08, 6.11) in beauty_removed
    assert {(p.model, p.hr10) for p in published.matching("ml-1m", 3706, 200, "removed")} == {
        ("sasrec", 29.29), ("esasrec", 31.33)}
    assert all(p.source for p in rows) and len({(p.model, p.label, p.dataset, p.seen) for p in rows}) == len(rows)


def test_tuning_rows_hold_the_registered_settings_of_every_dataset_they_name():
    """Each tuning.csv row matches a run at the model's registered settings (with the dataset's preset)
    on every dataset it names, and no other row does; a run with one chosen field changed matches none."""
    import dataclasses

    from bench import registry
    from bench.reports import tuning

    rows = tuning.load()
    # every model of the verdict; the three newer diffusion models have not been tuned yet (issue 44)
    assert {t.model for t in rows} == set(registry.names()) - {"pop", "preferdiff", "adrec", "diqdiff"}
    for t in rows:
        for d in t.datasets:
            spec = registry.resolve(t.model, dataset=d)
            record = {"model": t.model, "dataset": d, "config": dataclasses.asdict(spec.config),
                      "train": dataclasses.asdict(spec.train)}
            assert tuning.matching(record) == t, (t.model, d)
            field, value = t.settings[0]
            changed = {**record, "config": {**record["config"], field: "changed"},
                       "train": {**record["train"], field: "changed"}}
            assert tuning.matching(changed) is None, (t.model, d, field)


def test_published_file_errors_name_the_line(tmp_path):
    from bench.reports import published

    bad = tmp_path / "bad.csv"
    bad.write_text("model,label,dataset,seen,max_len,n_items,seeds,hr@10,ndcg@10,source\n"
                   "sasrec,x,beauty,sometimes,50,12101,1,9.0,5.0,src\n")
    with pytest.raises(BenchError, match="bad.csv:2"):
        published.load(bad)


# --- figures: who wins and by how much, honest uncertainty ---------------------------------------

def fake_variant(model: str, means: list[float], dataset: str = "synthetic"):
    """A Variant of one run per value: test metrics (fractions) all equal to that value."""
    from bench.reports.collect import Run, Variant

    return Variant([Run({"model": model, "seed": s, "dataset": dataset, "test": dict.fromkeys(METRICS, v / 100),
                         "valid": dict.fromkeys(METRICS, v / 100)}, ROOT) for s, v in enumerate(means)])


def dots_of(ax) -> dict[tuple, tuple[float, float]]:
    """(x, y) of every dot drawn by errorbar on an axes, keyed by its RGB colour."""
    out = {}
    for container in ax.containers:
        line = container.lines[0]
        x, y = line.get_xdata(), line.get_ydata()
        out[tuple(round(c, 4) for c in line.get_color()[:3])] = (float(x[0]), float(y[0]))
    return out


def test_forest_plot_zooms_in_and_marks_single_seeds_and_models_not_run(tmp_path):
    from matplotlib.colors import to_rgb

    from bench.reports import dots, figures

    figures.style()
    chosen = {"diffurecsys": fake_variant("diffurecsys", [44.0, 45.0, 46.0]),
              "sasrec": fake_variant("sasrec", [41.0, 42.0]), "pop": fake_variant("pop", [40.0])}
    fig = dots.forest("toys", chosen, ["diffurecsys", "sasrec", "bert4rec", "pop"]).fig
    panels = [ax for ax in fig.axes if ax.get_xlabel()]
    assert len(panels) == len(METRICS)
    for ax in panels:
        lo, hi = ax.get_xlim()
        assert 30 < lo < 40 and 46 < hi < 60, (ax.get_xlabel(), lo, hi)         # zoomed, not from 0
        drawn = dots_of(ax)
        assert len(drawn) == 3                                                  # BERT4Rec: no dot, no zero
        assert drawn[tuple(round(c, 4) for c in to_rgb(figures.color("diffurecsys")))][0] == pytest.approx(45.0)
    labels = [t.get_text() for t in panels[0].get_yticklabels()]
    assert labels == ["DiffuRecSys (n = 3)", "SASRec (n = 2)", "BERT4Rec (not run)", "MostPop (n = 1)"]
    # three seeds: the t-interval, t(0.975, 2) * 1 / sqrt(3); the single seed has no bar
    segments = panels[0].containers[0].lines[2][0].get_segments()
    assert segments[0][1][0] - 45.0 == pytest.approx(stats.t.ppf(0.975, 2) / np.sqrt(3))
    assert not panels[0].containers[2].lines[2]
    path = tmp_path / "forest.png"
    fig.savefig(path)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 500


def test_deltas_against_sasrec_with_a_welch_interval():
    from bench.reports import dots, figures

    figures.style()
    chosen = {"diffurecsys": fake_variant("diffurecsys", [44.0, 45.0, 46.0]),
              "sasrec": fake_variant("sasrec", [41.0, 42.0, 43.0]), "pop": fake_variant("pop", [40.0])}
    fig = dots.deltas("toys", chosen, list(chosen)).fig
    ax = next(ax for ax in fig.axes if ax.get_xlabel() == "Δ HR@10 (pp)")       # differences: points
    gaps = sorted(x for x, _ in dots_of(ax).values())
    assert gaps == pytest.approx([-2.0, 3.0])
    half = ax.containers[0].lines[2][0].get_segments()[0][1][0] - 3.0
    assert half == pytest.approx(stats.t.ppf(0.975, 4) * np.sqrt(2 / 3))       # Welch, equal variances: df 4
    assert ax.containers[0].lines[0].get_markerfacecolor() != "white"          # 3 +- 2.27 excludes 0
    assert dots.deltas("toys", {k: v for k, v in chosen.items() if k != "sasrec"}, list(chosen)) is None


def test_every_registered_model_has_its_own_distinct_colour():
    from itertools import combinations

    from bench import registry
    from bench.reports import figures

    rgb = {m: np.array(figures.color(m)) for m in registry.names()}
    assert set(rgb) >= {"pop", "sasrec", "bert4rec", "svae", "acvae", "diffurec", "diffurecsys"}
    for a, b in combinations(rgb, 2):
        assert np.linalg.norm(rgb[a] - rgb[b]) > 0.25, (a, b, rgb[a], rgb[b])
    assert len({figures.marker(m) for m in rgb}) == len(rgb)
    assert figures.color("nosuch") == figures.color("nosuch")


def other_dataset(coll, models):
    """The collection with the chosen runs of `models` copied onto a second dataset, 'other'."""
    from bench.reports.collect import Collection, Run

    copies = [Run({**r.record, "dataset": "other", "dataset_fingerprint": "other", "run_id": r.record["run_id"] + "o"},
                  r.root) for r in coll.runs if r.model in models]
    return Collection(coll.runs + copies, coll.tagged, [], [], coll.evals)


def test_efficiency_has_a_panel_per_dataset_and_marks_models_not_run(runs):
    from bench.reports import build, dots, figures
    from bench.reports.collect import collect

    figures.style()
    coll = other_dataset(collect([runs]), {"sasrec", "pop"})
    assert coll.datasets() == ["other", "synthetic"]
    for kind in dots.COSTS:
        fig = dots.efficiency(coll, kind).fig
        assert len(fig.axes) == 2 and [ax.get_title() for ax in fig.axes] == ["other", "synthetic"]
        assert [len(ax.containers) for ax in fig.axes] == [2, 3]
        assert ["not run: DiffuRecSys"] == [t.get_text() for t in fig.axes[0].texts]
        assert not any(ax.texts for ax in fig.axes[1:])
        assert [t.get_text() for t in fig.legends[0].get_texts()] == ["DiffuRecSys", "SASRec", "MostPop"]
    names = [f.name for f in build.make_figures(coll)]
    assert {"forest_other", "deltas_other", "forest_synthetic", "efficiency_train"} <= set(names)
    assert not any(n.startswith("bars") for n in names)


def grid_journal(path):
    """An Optuna journal holding a `bench ablate` grid (point x seed) and a search space study."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(path)))
    grid = optuna.create_study(study_name="offset_noise-toys-diffurecsys-0", direction="maximize", storage=storage)
    grid.set_user_attr("study", "offset_noise")
    points = ["offset_noise=0.0", "offset_noise=0.1", "offset_noise=0.2"]
    space = {"point": CategoricalDistribution(points), "seed": CategoricalDistribution([0, 1])}
    tune = optuna.create_study(study_name="tune-toys-sasrec-0", direction="maximize", storage=storage)
    for i, point in enumerate(points):
        for seed in (0, 1):
            grid.add_trial(optuna.trial.create_trial(params={"point": point, "seed": seed}, distributions=space,
                                                     value=0.01 * i + 0.001 * seed))
        tune.add_trial(optuna.trial.create_trial(params={"dropout": 0.2 * i, "lr": 1e-3 * (i + 1)},
                                                 distributions={"dropout": FloatDistribution(0, 0.6),
                                                                "lr": FloatDistribution(1e-4, 1e-2)},
                                                 value=0.01 * i))


def test_grid_studies_get_no_optuna_history_or_importance(tmp_path):
    from bench.reports import figures

    figures.style()
    grid_journal(tmp_path / "studies.journal.log")
    notes = []
    names = [f.name for f in figures.optuna_figures(tmp_path / "studies.journal.log", notes)]
    assert names == ["optuna_history_tune-toys-sasrec-0", "optuna_importance_tune-toys-sasrec-0"]
    assert any("offset_noise-toys-diffurecsys-0" in n and "fixed grid" in n for n in notes), notes


def markdown_cells(text: str) -> list[str]:
    return [c for line in text.splitlines() if line.startswith("| ") for c in line.strip("|").split("|")]


def test_single_seed_tables_say_so_and_mark_no_best(runs, report, tmp_path):
    # the loss study ran one seed: its ablation table says so and marks nothing
    loss = (report / "tables" / "ablation_loss_synthetic_sasrec.md").read_text()
    assert "- n = 1 seed: no spread" in loss
    assert not any(c.strip().startswith(("**", "<u>")) for c in markdown_cells(loss)), loss
    plain = tmp_path / "runs"
    shutil.copytree(runs, plain, ignore=shutil.ignore_patterns("*.pt", "*.npz", "studies"))
    one = [json.dumps(r) for r in records(runs) if "study" not in r and r["seed"] == 0]
    (plain / "results.jsonl").write_text("\n".join(one) + "\n")
    build_report([plain], tmp_path / "out", {"md"})
    for name in ("compare_synthetic.md", "protocols_synthetic.md"):
        text = (tmp_path / "out" / "tables" / name).read_text()
        assert "- n = 1 seed: no spread" in text, name
        assert not any(c.strip().startswith(("**", "<u>")) for c in markdown_cells(text)), text


def test_best_needs_to_beat_the_others_beyond_the_seed_spread():
    from bench.reports.tables import Cell, Row, rank_columns

    def ranks(*cells):
        rows = [Row([str(i), "2"], [c]) for i, c in enumerate(cells)]
        rank_columns(rows)
        return [r.cells[0].rank for r in rows]

    assert ranks(Cell(10, 1), Cell(7, 1), Cell(4, 1)) == [0, 1, None]
    assert ranks(Cell(10, 1), Cell(7, 1), Cell(6, 0.5)) == [0, None, None]     # 7 - 1 is not above 6.5
    assert ranks(Cell(10, 1), Cell(8.5, 1)) == [None, None]                     # bands overlap
    assert ranks(Cell(10, None), Cell(5, 1)) == [None, None]                    # one seed: no spread
    assert ranks(Cell(10, 1), Cell(5, None)) == [0, None]                       # beaten as a point
    assert ranks(Cell(10, 0.0), Cell(10, 0.0)) == [None, None]                  # a tie is no win


def offset_runs():
    """An offset-noise grid as `bench ablate offset_noise` stores it: scale x kind x 2 seeds."""
    from bench.reports.collect import Run

    out = []
    for kind in ("per_example", "elementwise"):
        for s in (0.0, 0.1, 0.2):
            for seed in (0, 1):
                value = 0.05 + (s if kind == "elementwise" else s / 2) + 0.001 * seed
                out.append(Run({"model": "diffurecsys", "dataset": "toys", "seed": seed, "study": "offset_noise",
                                "config": {"offset_noise": s, "offset_kind": kind, "hidden": 16}, "train": {},
                                "protocol": {}, "params": {"offset_noise": s, "offset_kind": kind},
                                "valid": dict.fromkeys(METRICS, value), "test": dict.fromkeys(METRICS, value)},
                               ROOT))
    return out


def test_offset_zero_shared_by_both_kinds_is_one_setting_shown_once():
    from bench.reports import figures, tables

    figures.style()
    table = tables.ablation("offset_noise", "toys", "diffurecsys", offset_runs())
    labels = [(r.labels[0], r.labels[1]) for r in table.rows]
    assert len(labels) == 5 and labels.count(("offset_noise=0", "2")) == 1, labels
    assert sum(label.startswith("offset_noise=0,") or label == "offset_noise=0" for label, _ in labels) == 1
    assert any("offset_kind has no effect" in n for n in table.notes), table.notes
    fig = figures.ablation("offset_noise", "toys", "diffurecsys", offset_runs()).fig
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["offset_kind=elementwise", "offset_kind=per_example", "offset_noise=0 (one run, every series)"]
    for line in fig.axes[0].lines[:2]:                  # both curves start at the shared point
        assert line.get_xdata()[0] == 0.0 and line.get_ydata()[0] == pytest.approx(5.05)


def test_reverse_gif_ranks_agree_with_the_stored_top10(runs):
    from bench.reports import gifs

    npz = next(runs.glob("runs/synthetic/diffurecsys/*/trajectory.npz"))
    traj = gifs.load_trajectory(npz)
    ranks = gifs.target_ranks(traj)
    assert ranks.shape == (len(traj["timesteps"]), len(traj["targets"]))
    assert ranks.min() >= 1 and ranks.max() <= len(traj["item_emb"]) - 1
    in_top = np.array([t in top for t, top in zip(traj["targets"], traj["topk"])])
    assert ((ranks[-1] <= 10) == in_top).all(), (ranks[-1], in_top)


def squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_pdf_pages_are_one_size_and_hold_every_note_line_of_the_markdown_report(report):
    reader = PdfReader(report / "report.pdf")
    sizes = {(round(float(p.mediabox.width)), round(float(p.mediabox.height))) for p in reader.pages}
    assert sizes == {(842, 595)}, sizes                      # A4 landscape, in points, on every page
    text = squeezed("".join(p.extract_text() for p in reader.pages))
    notes = [line[2:] for line in (report / "report.md").read_text().splitlines() if line.startswith("- ")
             and not line.startswith("- `")]
    assert len(notes) > 5
    missing = [n for n in notes if squeezed(n.replace("**", "")) not in text]
    assert not missing, missing[:3]


def test_long_table_notes_flow_onto_continuation_pages(tmp_path):
    from matplotlib.backends.backend_pdf import PdfPages

    from bench.reports import pdf
    from bench.reports.tables import Cell, Row, Table

    notes = [f"note {i}: " + " ".join(f"word{i}x{j}" for j in range(40)) for i in range(60)]
    table = Table("t", "a table with many notes", "its caption", ["model"], ["ndcg@10"],
                  [Row(["A"], [Cell(1.0, 0.1)]), Row(["B"], [Cell(2.0, 0.1)])], notes=notes)
    path = tmp_path / "t.pdf"
    with PdfPages(path) as doc:
        pdf.table_page(doc, table)
        pdf.text_page(doc, "Notes", notes)
    reader = PdfReader(path)
    assert len(reader.pages) >= 4
    assert {(round(float(p.mediabox.width)), round(float(p.mediabox.height))) for p in reader.pages} == {(842, 595)}
    text = squeezed("".join(p.extract_text() for p in reader.pages))
    assert all(text.count(squeezed(n)) == 2 for n in notes)       # each note on the table's pages and on the notes'


def test_latex_with_the_reports_symbols_compiles_with_pdflatex(tmp_path):
    from bench.reports import render
    from bench.reports.tables import Cell, Row, Table

    odd = "Δ NDCG@10 − 0.3 ≥ λ × σ → μ ± ε … 95 % — Müller–Zoë · x_t & {s}"
    table = Table("odd", odd, "caption: " + odd, ["point"], ["ndcg@10"],
                  [Row([odd], [Cell(-0.08, 0.13, unit=" pt")]), Row(["b"], [Cell(1.0, None)])], notes=[odd])
    tex = render.latex(table)
    assert tex.isascii()
    doc = tmp_path / "o.tex"
    doc.write_text("\\documentclass{article}\\usepackage{booktabs,graphicx}\\begin{document}\n" + tex
                   + "\\end{document}\n")
    if not shutil.which("pdflatex"):        # .ci/latex.sh installs it
        pytest.fail("pdflatex is needed to compile the LaTeX tables: run .ci/latex.sh (TeX Live, booktabs)")
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert r"$\Delta$" in tex and r"$-$" in tex


def test_a_point_at_fewer_seeds_is_compared_with_the_registered_runs_at_its_own_seeds(tmp_path):
    """The registered point has seeds 0-2, another point seed 0 only: its difference is paired against
    the registered seed 0 (the same seeds in both arms), not against the mean of three seeds."""
    from bench.reports.ablations import compare
    from bench.reports.collect import Run

    rng = np.random.default_rng(0)
    users = 400

    def run(point, seed, values, registered=False):
        path = tmp_path / f"{point}-{seed}.csv"
        path.write_text("ndcg@10,hr@10\n" + "".join(f"{v},{v}\n" for v in values))
        record = {"model": "diffurecsys", "dataset": "beauty", "seed": seed, "run_id": f"{point}{seed}",
                  "study": "noisy_target", "study_id": "s", "point": point, "registered": registered,
                  "point_index": 0 if registered else 1, "params": {} if registered else {"lambda_mean": 0.0},
                  "config": {"lambda_mean": 0.001 if registered else 0.0}, "train": {}, "protocol": {"ks": [10]},
                  "test_seen": {s: {"ndcg@10": float(np.mean(values))} for s in ("kept", "removed")},
                  "per_user_seen": {s: path.name for s in ("kept", "removed")}}
        return Run(record, tmp_path)

    registered = [rng.random(users) for _ in range(3)]
    registered[1] += 0.5                            # seeds 1 and 2 score far higher than seed 0
    registered[2] += 0.5
    other = registered[0] + 0.01                    # one point at seed 0: 1 point above the registered seed 0
    runs = [run("registered", s, v, True) for s, v in enumerate(registered)] + [run("lambda=0", 0, other)]
    points = compare(runs, [], "ttest")
    delta = next(p for p in points if p.name == "lambda=0").deltas[("removed", "ndcg@10")]
    assert delta.points == pytest.approx(1.0)
