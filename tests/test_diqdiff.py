"""DiQDiff (models/diqdiff.py): its loss, its switches (codebook, contrastive term, diffusion off), its
codebook, contrastive term and reverse step against literal transcriptions of the authors' code
(maowenyu-11/DiQDiff, src/codiffu.py), and a run through the CLI on planted data."""
import json
import math

import numpy as np
import torch
import torch.nn.functional as F

from bench import registry
from bench.models.diqdiff import self_contrast
from tests.conftest import bench_cli
from tests.test_models import planted_file

TINY = {"hidden": "16", "heads": "2", "blocks": "1", "dropout": "0", "emb_dropout": "0", "diffusion_steps": "8",
        "codebook_size": "3", "max_positions": "6"}


def tiny(n_items: int = 20, **sets):
    torch.manual_seed(0)
    return registry.resolve("diqdiff", {"diqdiff": {**TINY, **{k: str(v) for k, v in sets.items()}}}).build(n_items)


def batch():
    """Planted rows (the next item is the current one + 1), left-padded; one target per row."""
    rows = torch.tensor([[0, 0, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6], [0, 7, 8, 9, 10, 11], [0, 0, 0, 15, 16, 17],
                         [0, 11, 12, 13, 14, 15], [0, 0, 0, 0, 1, 2]])
    return {"history": rows[:, :-1], "target": rows[:, -1]}


def loss_at(model, seed: int, b=None) -> dict:
    torch.manual_seed(seed)
    return model.loss(b or batch())


def test_loss_is_finite_and_falls_on_a_tiny_batch():
    model, b = tiny(), batch()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        out = model.loss(b)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"].detach()))
    assert all(math.isfinite(x) for x in losses)
    assert sum(losses[-5:]) < 0.5 * sum(losses[:5]), losses
    assert model.codebook.assign.weight.grad is None          # an argmax: the assignment never learns (as the code)


def test_scores_cover_the_catalogue_reproducibly_and_ignore_left_padding():
    model = tiny().eval()
    h = batch()["history"]
    scores = model.score({"history": h})
    assert scores.shape == (6, 21) and torch.isfinite(scores).all()
    assert torch.equal(scores, model.score({"history": h}))                  # seeded
    padded = torch.cat([torch.zeros(6, 1, dtype=torch.long), h], 1)           # padded to max_positions anyway
    assert torch.allclose(scores, model.score({"history": padded}), atol=1e-5)


def test_codebook_switch_removes_its_term():
    on, off, weightless = tiny(diffusion="false"), tiny(diffusion="false", codebook="false"), \
        tiny(diffusion="false", codebook_weight=0)
    assert off.codebook is None
    off.core.load_state_dict(on.core.state_dict())
    weightless.load_state_dict(on.state_dict())
    assert not torch.allclose(loss_at(on, 1)["loss"], loss_at(off, 1)["loss"])
    assert torch.allclose(loss_at(weightless, 1)["loss"], loss_at(off, 1)["loss"])
    assert not torch.equal(on.eval().score(batch()), off.eval().score(batch()))


def test_contrastive_switch_removes_its_term():
    on, off = tiny(diffusion="false", codebook="false"), tiny(diffusion="false", codebook="false", contrast_weight=0)
    off.load_state_dict(on.state_dict())
    a, b = loss_at(on, 1), loss_at(off, 1)
    assert a["contrast"] > 0 and torch.allclose(a["loss"], a["ce"] + a["contrast"])
    assert b["contrast"] == 0 and torch.equal(b["loss"].detach(), b["ce"]) and torch.allclose(a["ce"], b["ce"])


def test_diffusion_off_shows_no_target_and_scores_in_one_pass():
    on, off = tiny(codebook_assign="argmax"), tiny(codebook_assign="argmax", diffusion="false")
    assert not torch.equal(loss_at(on, 1)["loss"], loss_at(on, 2)["loss"])   # t and the noise drawn
    assert torch.equal(loss_at(off, 1)["loss"], loss_at(off, 2)["loss"])
    assert off.scoring_steps(off.cfg) == (1, 1) and on.scoring_steps(on.cfg) == (8, 8)
    off.eval()
    scores = off.score(batch())
    off.core.eval_seed.fill_(12345)                                           # nothing random is left to draw
    assert torch.equal(scores, off.score(batch()))


def literal_intent_cluster(mlp, input, n_clusters):
    """codiffu.py, CoDiffu.intent_cluster, line by line."""
    X = input.view(input.shape[0], -1)
    centers = X[torch.randperm(X.size(0))[:n_clusters]].to(input.device)
    labels = mlp(X)
    labels = F.gumbel_softmax(labels, tau=0.1, hard=True)
    for i in range(n_clusters):
        if torch.sum(labels[:, i]) == 0:
            centers[i] = X[torch.randint(0, X.size(0), (1,))]
        else:
            centers[i] = torch.mean(X[labels[:, i].bool()], dim=0)
    return centers.view(n_clusters, input.shape[1], input.shape[-1]), torch.argmax(labels, dim=1)


def test_codebook_matches_the_codes_intent_cluster_and_its_gradient():
    model = tiny()
    codebook = model.codebook
    for seed in range(3):
        x = torch.randn(12, 6, 16, generator=torch.Generator().manual_seed(seed), requires_grad=True)
        torch.manual_seed(seed)
        centroids, labels = literal_intent_cluster(codebook.assign, x, 3)
        expected = centroids[labels]
        (g_expected,) = torch.autograd.grad((expected * x.detach()).sum(), x)
        torch.manual_seed(seed)
        torch.randperm(12)                         # the code's draw of initial centres, whose values are overwritten
        got = codebook(x, sample=True)
        (g_got,) = torch.autograd.grad((got * x.detach()).sum(), x)
        assert torch.allclose(got, expected, atol=1e-6) and torch.allclose(g_got, g_expected, atol=1e-6)


def literal_contra_loss(diffu):
    """codiffu.py, CoDiffu.contra_loss, line by line."""
    temperature = 0.07
    similarities = F.cosine_similarity(diffu.unsqueeze(1), diffu.unsqueeze(0), dim=2) / temperature
    positives = torch.diag(similarities)
    mask = ~torch.eye(len(diffu)).bool()
    negatives = similarities[mask].view(len(diffu), -1)
    logits = torch.cat([positives.unsqueeze(1), negatives], dim=1)
    return F.cross_entropy(logits, torch.zeros(len(diffu), dtype=torch.long))


def test_contrastive_term_matches_the_codes_contra_loss():
    for seed in range(3):
        x = torch.randn(9, 16, generator=torch.Generator().manual_seed(seed)) * (seed + 0.5)
        x[1] = x[0] * 0.9 + 0.01                 # a near duplicate: a large negative similarity
        assert torch.allclose(self_contrast(x, 0.07), literal_contra_loss(x), atol=1e-5)


def test_reverse_step_matches_the_codes_p_sample():
    """The code's p_sample on trunc_lin betas: posterior mean plus exp(0.5 * posterior_variance) * noise
    (the variance where DiffuRec has its log), no noise at t = 0."""
    model = tiny()
    T = 8
    scale = 1000 / T
    beta_start, beta_end = scale * 0.0001 + 0.01, scale * 0.02 + 0.01
    if beta_end > 1:
        beta_end = scale * 0.001 + 0.01
    betas = np.linspace(beta_start, beta_end, T, dtype=np.float64)
    abar = np.cumprod(1.0 - betas)
    abar_prev = np.append(1.0, abar[:-1])
    coef1 = betas * np.sqrt(abar_prev) / (1.0 - abar)
    coef2 = (1.0 - abar_prev) * np.sqrt(1.0 - betas) / (1.0 - abar)
    variance = betas * (1.0 - abar_prev) / (1.0 - abar)
    x0, xt = torch.randn(4, 16), torch.randn(4, 16)
    for t in (0, 3, 7):
        noise = torch.randn(4, 16, generator=torch.Generator().manual_seed(t))
        expected = coef1[t] * x0 + coef2[t] * xt + float(t != 0) * math.exp(0.5 * variance[t]) * noise
        got = model._step(model.core.schedule, x0, xt, t, torch.Generator().manual_seed(t))
        assert torch.allclose(got, expected.float(), atol=1e-5), t


def test_learns_a_planted_sequence_through_the_cli(tmp_path):
    dataset = planted_file(tmp_path)
    sets = {"hidden": "32", "heads": "2", "blocks": "2", "diffusion_steps": "8", "codebook_size": "4",
            "epochs": "8", "batch_size": "128", "lr": "5e-3", "eval_every": "4", "patience": "3", "precision": "fp32"}
    proc = bench_cli("run", "--models", "diqdiff", "--dataset", dataset, "--max-len", "16",
                     "--out", str(tmp_path / "runs"), *[a for k, v in sets.items() for a in ("--set", f"diqdiff.{k}={v}")])
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((tmp_path / "runs" / "results.jsonl").read_text().splitlines()[-1])
    assert record["model"] == "diqdiff" and record["config"]["max_positions"] == 16
    assert record["test"]["mrr"] >= 0.5, record["test"]
