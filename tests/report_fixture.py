"""Small real runs on `synthetic` for the report tests: three models, two studies, a journal, trajectories."""
from __future__ import annotations

import json
from pathlib import Path


# every field a model's `synthetic` preset sets is pinned: these runs are the tests', not the quick look's
SASREC = {"hidden": "16", "epochs": "3", "eval_every": "1", "dropout": "0.6", "lr": "5e-4", "patience": "10"}
DIFFUREC = {"hidden": "16", "blocks": "1", "heads": "2", "diffusion_steps": "8", "inference_steps": "0", "epochs": "3",
            "eval_every": "1"}
DROPOUTS = (0.0, 0.25, 0.6)                # 0.6 is SASREC's own: reused, as a study would
LOSSES = ("ce", "bce")


def run(out: Path, model: str, seed: int, overrides: dict, tags: dict | None = None) -> dict:
    """One real run through the harness, its results line tagged as `bench ablate` tags a trial's:
    a new run's line carries the tags, a run finished before gets a tagged copy of its line."""
    from bench.runs import results
    from bench.runs.run import run_one
    from bench.runs.spec import build

    record = run_one(build(model, "synthetic", seed=seed, out=str(out), sets=overrides))
    if not tags:
        return record
    if not record.get("skipped"):
        lines = (out / results.RESULTS).read_text().splitlines(keepends=True)
        assert json.loads(lines[-1])["run_id"] == record["run_id"]
        (out / results.RESULTS).write_text("".join(lines[:-1]))
    record = {**{k: v for k, v in record.items() if k != "skipped"}, **tags}
    results.append(out, record)
    return record


def journal(path: Path, name: str, records: list[dict]) -> None:
    """A real Optuna journal with two studies over the sweep's records: validation NDCG@10, and
    (multi-objective, as `bench tune --objectives ndcg,latency`) NDCG@10 against ms per user."""
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(path)))
    single = optuna.create_study(study_name=name, direction="maximize", storage=storage)
    multi = optuna.create_study(study_name=f"{name}_latency", directions=["maximize", "minimize"], storage=storage)
    space = {"dropout": FloatDistribution(0.0, 0.6)}
    for r in records:
        ndcg, ms = r["valid"]["ndcg@10"], 1000 * r["eval_seconds"] / r["n_users"]
        single.add_trial(optuna.trial.create_trial(params=r["params"], distributions=space, value=ndcg))
        multi.add_trial(optuna.trial.create_trial(params=r["params"], distributions=space, values=[ndcg, ms]))


def build(root: Path) -> Path:
    """runs/: pop, sasrec, diffurecsys x 2 seeds, a dropout sweep (with its journal) and a loss study,
    as `bench ablate` leaves them: a trial whose run exists already is a tagged copy of that run's line."""
    out = root / "runs"
    for seed in (0, 1):
        run(out, "pop", seed, {})
        run(out, "sasrec", seed, SASREC)
        run(out, "diffurecsys", seed, DIFFUREC)         # writes its reverse process: trajectory.npz
    sweep = []
    for trial, p in enumerate(DROPOUTS):
        for seed in (0, 1):
            tags = {"study": "dropout", "study_id": "dropout-synthetic-sasrec", "trial": 2 * trial + seed,
                    "params": {"dropout": p}}
            sweep.append(run(out, "sasrec", seed, {**SASREC, "dropout": str(p)}, tags))
    for trial, loss in enumerate(LOSSES):
        run(out, "sasrec", 0, {**SASREC, "loss": loss},
            {"study": "loss", "study_id": "loss-synthetic-sasrec", "trial": trial, "params": {"loss": loss}})
    (out / "studies").mkdir()
    journal(out / "studies" / "dropout.journal.log", "dropout", [r for r in sweep if r["seed"] == 0])
    return out


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line]
