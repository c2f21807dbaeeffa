"""Run the quick look (what `make bench` runs), time it, and write the README's quick-look figures from it.

    python scripts/quicklook.py                # a quiet machine: records the "quiet" measurement
    python scripts/quicklook.py --busy         # with one other one-thread CPU-bound process beside it

Each call runs `bench run --models all --dataset synthetic`, `bench results` and `bench report` in a fresh
folder (wall-clock time of all three), keeps the measurement under its condition in results/quicklook.json
(commit, date, CPU, threads, the load seen at the start, each model's test metrics) and rewrites the
README's quick-look paragraph, between its markers, from that file. The README's figures are therefore what
the last quick look of each condition measured; `tests/test_quicklook.py` checks the paragraph against the file.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MEASURED = ROOT / "results" / "quicklook.json"
README = ROOT / "README.md"
BEGIN = "<!-- quicklook: written by scripts/quicklook.py from results/quicklook.json -->"
END = "<!-- /quicklook -->"
# the other process of a busy measurement: one thread of matrix products, as a training process runs
BURNER = ("import torch\ntorch.set_num_threads(1)\na = torch.randn(512, 512)\n"
          "while True:\n    a = torch.tanh(a @ a)")


def bench(*args: str, env: dict) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "bench.cli", *args], env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"bench {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc


def run(out: Path) -> dict:
    """The three commands of the quick look, timed whole; each model's test metrics and training seconds."""
    from bench.runs.results import still_improving
    from bench.runs.threads import busy_elsewhere, cores

    # an empty cache, as on a fresh clone: the plan counts and times each model's work
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(out.parent / "cache")}
    busy = busy_elsewhere()
    t0 = time.perf_counter()
    first = bench("run", "--models", "all", "--dataset", "synthetic", "--out", str(out), env=env)
    bench("results", str(out), env=env)
    bench("report", str(out), "--out", str(out / "report"), env=env)
    seconds = time.perf_counter() - t0
    threads = next((line.split("threads: ", 1)[1].split(" ")[0] for line in first.stderr.splitlines()
                    if line.startswith("threads: ")), "?")
    models = {}
    for line in (out / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        still = still_improving(r)
        models[r["model"]] = {"test_ndcg10_kept": round(100 * r["test_seen"]["kept"]["ndcg@10"], 2)
                              if "test_seen" in r else round(100 * r["test"]["ndcg@10"], 2),
                              "train_seconds": round(r["train_seconds"], 1), "epochs_run": r["epochs_run"],
                              "budget_hit_still_improving": still}
    return {"seconds": round(seconds, 1), "busy_cores_at_start": busy, "cores": cores(), "threads": threads,
            "models": models}


def machine() -> str:
    from bench.runs.plan import cpu_name
    from bench.runs.threads import cores

    return f"{cores()}-core {cpu_name()}"


def commit() -> str:
    """The commit measured, '+changes' when the code differs from it (this script's own outputs aside)."""
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    changed = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no", "--", ".",
                              f":!{README.name}", f":!{MEASURED.relative_to(ROOT)}"], capture_output=True, text=True)
    return (head or "?") + ("+changes" if changed.stdout.strip() else "")


def paragraph(measured: dict) -> str:
    """The README's quick-look paragraph, from results/quicklook.json."""
    from bench import registry

    quiet, busy = measured.get("quiet"), measured.get("busy")
    parts = []
    if quiet:
        parts.append(f"{quiet['seconds']:.0f} s on a quiet {quiet['machine']} ({quiet['threads']} threads per run; "
                     f"commit {quiet['commit']}, {quiet['date']})")
    if busy:
        parts.append(f"{busy['seconds']:.0f} s on the {busy['machine']} with {busy['beside']} running beside it "
                     f"({busy['threads']} thread per run; commit {busy['commit']}, {busy['date']})")
    lines = ["Run, results and report, timed whole by `scripts/quicklook.py`: " + ", and ".join(parts) + "."]
    ref = quiet or busy
    if ref:
        order = registry.display_order(ref["models"])
        ndcg = ", ".join(f"{registry.display(m)} {ref['models'][m]['test_ndcg10_kept']:.1f} %" for m in order)
        still = [registry.display(m) for m in order if ref["models"][m]["budget_hit_still_improving"]]
        lines.append(f"Test NDCG@10 of that {'quiet' if quiet else 'busy'} run (seen items kept, one seed): {ndcg}"
                     + (f"; {', '.join(still[:-1]) + ' and ' if len(still) > 1 else ''}{still[-1] if still else ''} ended at {'their' if len(still) > 1 else 'its'} epoch budget "
                        "still improving, which `bench results` marks `(+)`" if still else "") + ".")
    return "\n".join(lines)


def rewrite(readme: Path, text: str) -> None:
    body = readme.read_text()
    if BEGIN not in body or END not in body:
        raise SystemExit(f"{readme} has no quick-look markers ({BEGIN} ... {END})")
    head, rest = body.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


def block(readme: Path) -> str:
    """The paragraph between the README's markers."""
    return readme.read_text().split(BEGIN, 1)[1].split(END, 1)[0].strip("\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--busy", action="store_true", help="run one other one-thread CPU-bound process beside it")
    ap.add_argument("--out", type=Path, help="keep the quick look's folder here (default: a temporary one)")
    ap.add_argument("--readme-only", action="store_true", help="rewrite the README from the file, run nothing")
    args = ap.parse_args()
    measured = json.loads(MEASURED.read_text()) if MEASURED.exists() else {}
    if not args.readme_only:
        sys.path.insert(0, str(ROOT))
        burner = subprocess.Popen([sys.executable, "-c", BURNER]) if args.busy else None
        try:
            time.sleep(3 if burner else 0)          # let the load average see it
            with tempfile.TemporaryDirectory() as tmp:
                m = run(args.out or Path(tmp) / "runs")
        finally:
            if burner:
                burner.kill()
        condition = "busy" if args.busy else "quiet"
        if not args.busy and m["busy_cores_at_start"]:
            print(f"warning: {m['busy_cores_at_start']} cores were busy with other work at the start; "
                  "recorded as 'quiet' all the same", file=sys.stderr)
        m.update(machine=machine(), commit=commit(), date=time.strftime("%Y-%m-%d"),
                 beside="one other one-thread CPU-bound process (a matrix-product loop)" if args.busy else "nothing")
        measured[condition] = m
        MEASURED.write_text(json.dumps(measured, indent=1, sort_keys=True) + "\n")
        print(f"{condition}: {m['seconds']} s", file=sys.stderr)
    rewrite(README, paragraph(measured))


if __name__ == "__main__":
    main()
