"""Small real runs on `synthetic` for the report tests: a comparison, two studies, a journal, a trajectory."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SASREC = {"hidden": "16", "epochs": "3", "eval_every": "1"}
DROPOUTS = (0.0, 0.25, 0.5)                # 0.5 is the SASRec default: reused, as a study would
LOSSES = ("ce", "bce")


def run(out: Path, model: str, seed: int, overrides: dict, tags: dict | None = None) -> dict:
    """One real run through the harness, its results line tagged as `bench ablate` tags a trial's:
    a new run's line carries the tags, a run finished before gets a tagged copy of its line."""
    from bench import results
    from bench.runner import RunRequest, run_one

    req = RunRequest(model=model, dataset="synthetic", seed=seed, out=str(out), overrides={model: overrides})
    record = run_one(req)
    if not tags:
        return record
    if not record.get("skipped"):
        lines = (out / results.RESULTS).read_text().splitlines(keepends=True)
        assert json.loads(lines[-1])["run_id"] == record["run_id"]
        (out / results.RESULTS).write_text("".join(lines[:-1]))
    record = {**{k: v for k, v in record.items() if k != "skipped"}, **tags}
    results.append(out, record)
    return record


def trajectory(path: Path, n_items: int, steps: int = 8, users: int = 4, dim: int = 16, seed: int = 0) -> None:
    """A trajectory.npz in the format the diffusion models write: x_T -> ... -> the final estimate."""
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(n_items + 1, dim)).astype(np.float32)
    targets = rng.integers(1, n_items + 1, size=users)
    x0 = emb[targets] + 0.1 * rng.normal(size=(users, dim))
    noise = rng.normal(size=(users, dim))
    w = np.linspace(1, 0, steps + 1)[:, None, None]                      # weight of the noise per frame
    x = (w * noise + (1 - w) * x0).astype(np.float32)                     # (S+1, U, D)
    topk = np.argsort(-(x[-1] @ emb[1:].T), axis=1)[:, :10] + 1
    np.savez(path, x=x, timesteps=np.linspace(steps, 0, steps + 1).astype(np.int64), item_emb=emb,
             users=np.arange(users, dtype=np.int64), targets=targets.astype(np.int64), topk=topk.astype(np.int64))


def journal(path: Path, name: str, records: list[dict]) -> None:
    """A real Optuna journal holding one finished trial per study record (value: validation NDCG@10)."""
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, direction="maximize",
                                storage=JournalStorage(JournalFileBackend(str(path))))
    for r in records:
        study.add_trial(optuna.trial.create_trial(
            params=r["params"], distributions={"dropout": FloatDistribution(0.0, 0.5)}, value=r["valid"]["ndcg@10"]))


def build(root: Path) -> Path:
    """runs/: pop + sasrec x 2 seeds, a dropout sweep (with its journal) and a loss study, as `bench ablate`
    leaves them: a trial whose run exists already is a tagged copy of that run's line."""
    out = root / "runs"
    for seed in (0, 1):
        run(out, "pop", seed, {})
        run(out, "sasrec", seed, SASREC)
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
    for folder in out.glob("runs/synthetic/sasrec/*"):
        trajectory(folder / "trajectory.npz", sweep[0]["n_items"])
    return out


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line]
