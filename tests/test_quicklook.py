"""The quick look: `make bench` (every registered model, the same commands as a real
benchmark) is minutes, its table tells the models apart, and the README's figures are what
`scripts/quicklook.py` measured."""
import importlib.util
import json
from pathlib import Path

from bench import registry

ROOT = Path(__file__).resolve().parent.parent


def quicklook():
    spec = importlib.util.spec_from_file_location("quicklook", ROOT / "scripts" / "quicklook.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_look_is_minutes_and_ranks_sasrec_far_above_mostpop(tmp_path):
    ql = quicklook()
    out = tmp_path / "runs"
    m = ql.run(out)             # bench run --models all --dataset synthetic, bench results, bench report
    # about 2.5 minutes on a quiet 2-core CPU (results/quicklook.json); loose here, for a busy CI machine
    assert m["seconds"] < 900, m["seconds"]
    assert (out / "report" / "report.pdf").stat().st_size > 10_000
    ndcg = {name: v["test_ndcg10_kept"] for name, v in m["models"].items()}
    assert set(ndcg) == set(registry.names())
    assert ndcg["sasrec"] > 3 * ndcg["pop"], ndcg
    # the VAEs are below SASRec or level with it (within 2 points of NDCG@10)
    assert ndcg["svae"] < ndcg["sasrec"] + 2 and ndcg["acvae"] < ndcg["sasrec"] + 2, ndcg
    # this measurement renders into the README's paragraph with every model in it
    m.update(machine="a CPU", commit="abc", date="2026-01-01", beside="nothing")
    text = ql.paragraph({"quiet": m})
    assert all(registry.display(name) in text for name in ndcg) and f"{m['seconds']:.0f} s" in text


def test_the_readme_quick_look_figures_are_the_recorded_measurements():
    ql = quicklook()
    measured = json.loads(ql.MEASURED.read_text())
    assert {"quiet", "busy"} <= set(measured)
    assert ql.block(ql.README) == ql.paragraph(measured)
    # within 3x of each other, quiet and with another CPU-bound process beside it
    assert measured["busy"]["seconds"] < 3 * measured["quiet"]["seconds"]
