"""How much a trained diffusion model's x0 estimate depends on the noisy target x_t it is shown.

    python scripts/xt_sensitivity.py RESULTS_FOLDER RUN_ID [RUN_ID ...] [--users 1024] [--levels 1,8,16,32]

For each finished DiffuRec-family run (its best checkpoint, evaluation mode, no training): the first
`--users` test users' histories, their test targets' embeddings as x0, and at each noise level t a draw
x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps (the forward process of training). The Approximator's x0
estimate is computed from the true x_t and again with x_t replaced by zeros (what `xt_probe=zero` shows
it at every reverse step). Printed per run and level: the relative change ||f(x_t) - f(0)|| / ||f(x_t)||,
the cosine of each estimate to the target embedding, and the share of users whose target rank among
all items differs between the two estimates, and the mean absolute change of that rank. lambda, the
noise and x_t are drawn from one seeded generator, so two calls print the same figures.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from bench import data
from bench.eval.protocol import left_pad
from bench.eval.reeval import load_best
from bench.runs import results


def record_of(out: Path, run_id: str) -> dict:
    found = [r for r in results.read(out) if str(r.get("run_id", "")).startswith(run_id)]
    if not found:
        raise SystemExit(f"no finished run {run_id} in {out}")
    return found[-1]


@torch.no_grad()
def sensitivity(out: Path, run_id: str, users: int, levels: list[int]) -> list[dict]:
    record = record_of(out, run_id)
    ds = data.resolve(record["dataset"])
    model, config, _, protocol, _ = load_best(out, record, ds, device="cpu")
    rows = list(range(min(users, ds.n_users)))
    history = left_pad([ds.train[u] + [ds.val[u]] for u in rows], protocol.max_len)
    target = torch.tensor([ds.test[u] for u in rows])
    x0 = model.item(target).float()
    encoded = model._encode(history)
    gen = torch.Generator().manual_seed(0)
    lam = model._lambda(len(rows), "cpu", gen, history.shape[1])
    out_rows = []
    for level in levels:
        t = torch.full((len(rows),), min(level, config.diffusion_steps) - 1)
        eps = torch.randn(x0.shape, generator=gen)
        xt = model.schedule.add_noise(x0, eps, t)
        est = model._x0(encoded, xt, model._time_input(t), lam).float()
        est0 = model._x0(encoded, torch.zeros_like(xt), model._time_input(t), lam).float()
        ranks = []
        for e in (est, est0):
            scores = e @ model.item.weight.float()[1:].T
            ranks.append((scores > scores.gather(1, (target - 1)[:, None])).sum(1))
        out_rows.append({
            "run": record["run_id"][:8], "model": record["model"], "t": int(t[0]) + 1,
            "rel_change": float((est - est0).norm(dim=1).mean() / est.norm(dim=1).mean()),
            "cos_xt": float(F.cosine_similarity(est, x0).mean()),
            "cos_zero": float(F.cosine_similarity(est0, x0).mean()),
            "rank_moved": float((ranks[0] != ranks[1]).float().mean()),
            "rank_shift": float((ranks[0] - ranks[1]).abs().float().mean()),
        })
    return out_rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--users", type=int, default=1024)
    ap.add_argument("--levels", default="1,8,16,32")
    args = ap.parse_args()
    levels = [int(v) for v in args.levels.split(",")]
    print("run       model          t  ||f(x_t)-f(0)||/||f(x_t)||  cos(f(x_t), x0)  cos(f(0), x0)  "
          "target rank moved  mean |rank change|")
    for run_id in args.runs:
        for r in sensitivity(args.out, run_id, args.users, levels):
            print(f"{r['run']}  {r['model']:<12} {r['t']:>3}  {r['rel_change']:<27.2e} {r['cos_xt']:<16.3f} "
                  f"{r['cos_zero']:<14.3f} {100 * r['rank_moved']:<5.1f} %            {r['rank_shift']:.2f}")


if __name__ == "__main__":
    main()
