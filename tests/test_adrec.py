"""ADRec (models/adrec.py): its loss, its stages, its diffusion-off control, its cached reverse process
against the code's full recomputation, and a run through the CLI on planted data."""
import json

import torch
import torch.nn.functional as F

from bench import registry
from tests.conftest import bench_cli
from tests.test_models import planted_file

TINY = {"hidden": "16", "heads": "2", "blocks": "1", "dropout": "0", "emb_dropout": "0", "diffusion_steps": "8",
        "pretrain_steps": "0", "freeze_steps": "0"}


def tiny(n_items: int = 20, **sets):
    torch.manual_seed(0)
    return registry.resolve("adrec", {"adrec": {**TINY, **{k: str(v) for k, v in sets.items()}}}).build(n_items)


def batch(n_items: int = 20):
    """Planted rows (the next item is the current one + 1), left-padded; a target at every real position."""
    rows = torch.tensor([[0, 0, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6], [0, 7, 8, 9, 10, 11], [0, 0, 0, 15, 16, 17]])
    history = rows[:, :-1]
    return {"history": history, "target": torch.where(history != 0, rows[:, 1:], 0)}


def test_loss_is_finite_and_falls_on_a_tiny_batch():
    model, b = tiny(), batch()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for step in range(40):
        out = model.loss({**b, "step": step})
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"].detach()))
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-5:]) < 0.5 * sum(losses[:5]), losses


def test_scores_cover_the_catalogue_in_both_stages_and_ignore_left_padding():
    model = tiny(pretrain_steps=1).eval()
    h = torch.tensor([[5, 6, 7], [0, 8, 9]])
    padded = torch.cat([torch.zeros(2, 4, dtype=torch.long), h], 1)
    for steps_done in (1, 2):              # the pretraining SASRec scores until ADRec's first step, then ADRec
        model.steps_done.fill_(steps_done)
        scores = model.score({"history": h})
        assert scores.shape == (2, 21) and torch.isfinite(scores).all()
        assert torch.allclose(scores, model.score({"history": padded}), atol=1e-5)


def test_diffusion_off_removes_the_diffusion_term():
    def loss(model, seed):
        torch.manual_seed(seed)
        return model.loss({**batch(), "step": 0})

    on, off, ce_only = tiny(), tiny(diffusion="false"), tiny(mse_weight=0)
    a, b = loss(on, 1), loss(on, 2)
    assert a["mse"] > 0 and torch.allclose(a["loss"], a["ce"] + a["mse"])
    assert not torch.equal(a["loss"], b["loss"])             # noise and timesteps drawn (lambda = 1e-3: a small change)
    assert not torch.equal(loss(ce_only, 1)["loss"], loss(ce_only, 2)["loss"])      # the noisy target still fed
    c, d = loss(off, 1), loss(off, 2)
    assert c["mse"] == 0 and torch.equal(c["loss"], c["ce"]) and torch.equal(c["loss"], d["loss"])
    assert off.scoring_steps(off.cfg) == (1, 1)


def literal_reverse(model, history):
    """The code's denoise_sample: the whole sequence through the denoiser at every step, positions before
    the last fed their clean next item at t = 0, the last one the chain's state at t = i."""
    h = model._pad(history)
    mask, table, lam = model._mask(h), model.item.weight, model.cfg.lambda_scale
    rep = model._encode(h, table, mask)
    B, L, D = rep.shape
    target = F.embedding(torch.where(h[:, :-1] != 0, h[:, 1:], 0), table)
    gen = model._generator(h.device)
    x = torch.randn(B, D, generator=gen)
    for i in reversed(range(model.schedule.num_steps)):
        t = torch.tensor([0] * (L - 1) + [i]).expand(B, L)
        xt = torch.cat([target, x[:, None]], 1)
        x0 = model._denoise(rep + lam * (xt + model._time(t)), mask)[:, -1]
        x = model.schedule.step(x0, x, i, gen, model.cfg.stochastic)
    return x @ table.T


def test_cached_reverse_equals_the_codes_full_recomputation():
    h = batch()["history"]
    for sets in ({}, {"padding_sink": 0}, {"blocks": 2}, {"denoiser": "mlp"}):
        model = tiny(**sets).eval()
        model.steps_done.fill_(1)
        with torch.no_grad():
            assert torch.allclose(model.score({"history": h}), literal_reverse(model, h), atol=1e-4), sets


def test_pretrained_table_is_copied_then_frozen_and_decayed_only_with_frozen_decay():
    for decay in (True, False):
        model = tiny(pretrain_steps=2, freeze_steps=2, frozen_decay=decay)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-2)
        tables = []
        for step in range(5):
            out = model.loss({**batch(), "step": step})
            opt.zero_grad()
            out["loss"].backward()
            opt.step()
            assert ("mse" in out) == (step >= 2)
            tables.append(model.item.weight.detach().clone())
        pretrained = model.pre_item.weight.detach()
        assert torch.equal(tables[3], pretrained) != decay       # frozen at steps 2-3: moved by L2 alone, if at all
        assert not torch.equal(tables[4], tables[3])             # step 4 trains it


def test_learns_a_planted_sequence_through_the_cli(tmp_path):
    dataset = planted_file(tmp_path)
    sets = {"hidden": "32", "heads": "2", "dropout": "0.1", "emb_dropout": "0.1", "diffusion_steps": "8",
            "pretrain_steps": "10", "freeze_steps": "5", "epochs": "12", "batch_size": "64", "lr": "5e-3",
            "eval_every": "4", "patience": "3", "precision": "fp32"}
    proc = bench_cli("run", "--models", "adrec", "--dataset", dataset, "--max-len", "16",
                     "--out", str(tmp_path / "runs"), *[a for k, v in sets.items() for a in ("--set", f"adrec.{k}={v}")])
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((tmp_path / "runs" / "results.jsonl").read_text().splitlines()[-1])
    assert record["model"] == "adrec" and record["config"]["padding_sink"] == 16
    # 5 batches an epoch: pretraining ends in epoch 2, so every validation (epochs 4, 8, 12) scores ADRec, not
    # the pretraining SASRec, and the checkpoint tested is ADRec's
    assert record["best_epoch"] >= 4
    assert record["test"]["mrr"] >= 0.5, record["test"]
