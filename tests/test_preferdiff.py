"""PreferDiff and its DreamRec variant: the loss, encoder and schedule against transcriptions of the
authors' code (lswhim/PreferDiff @fdf45b0), the switches, and a planted signal learned through the CLI."""
import json

import pytest
import torch
import torch.nn.functional as F

from bench import registry
from bench.models.preferdiff import GuidedSchedule, PreferDiffConfig
from tests.conftest import bench_cli
from tests.test_models import planted

SMALL = {"hidden": "16", "heads": "2", "diffusion_steps": "200", "ddim_stride": "20"}
BATCH = {"history": torch.tensor([[0, 0, 3, 4, 5], [1, 2, 3, 4, 5], [0, 0, 0, 7, 8], [0, 9, 10, 11, 12]]),
         "target": torch.tensor([[0, 0, 4, 5, 6], [2, 3, 4, 5, 6], [0, 0, 0, 8, 9], [0, 10, 11, 12, 13]])}


def build(**sets):
    torch.manual_seed(0)
    return registry.resolve("preferdiff", {"preferdiff": {**SMALL, **sets}}).build(20)


def test_loss_is_finite_and_falls_on_a_tiny_batch_and_scores_cover_the_catalogue():
    model = build(dropout="0")
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    losses = []
    for _ in range(60):
        loss = model.loss(BATCH)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(map(torch.isfinite, map(torch.tensor, losses)))
    assert sum(losses[-10:]) < 0.7 * sum(losses[:10])
    scores = model.eval().score({"history": BATCH["history"]})
    assert scores.shape == (4, 21) and scores.dtype == torch.float32 and torch.isfinite(scores).all()
    assert torch.equal(scores, model.score({"history": BATCH["history"]}))     # seeded reverse draws


def code_loss(model, h, y, gamma, lamda, p):
    """PreferenceDiffusion.p_losses of the code, mode "neg", loss_type "cosine", in-batch negatives
    (calcu_h, then t, then the two noises, in the code's order of draws)."""
    x_pos = model.item(y)
    others = ~torch.eye(len(y), dtype=torch.bool)
    x_neg = model.item(y.expand(len(y), -1)[others].view(len(y), -1)).mean(1)
    keep = ((torch.sign(torch.rand(len(y)) - p) + 1) / 2)[:, None]
    h = h * keep + model.none * (1 - keep)
    t = torch.randint(0, model.cfg.diffusion_steps, (len(y),))
    noisy_pos = model.schedule.add_noise(x_pos, torch.randn_like(x_pos), t)
    noisy_neg = model.schedule.add_noise(x_neg, torch.randn_like(x_neg), t)

    def cosine(a, b):
        return torch.mean((torch.sum(F.normalize(a, dim=1) * F.normalize(b, dim=1), dim=1) - 1) ** 2)
    loss_pos = cosine(x_pos, model.denoise(noisy_pos, h, t))
    loss_neg = cosine(x_neg, model.denoise(noisy_neg, h, t))
    return -(1 - lamda) * F.logsigmoid(-gamma * (loss_pos - loss_neg) + 1e-8) + loss_pos * lamda


def test_loss_matches_the_code_and_the_dreamrec_variant_drops_the_preference_term():
    model = build(dropout="0", gamma="3", pref_weight="0.6")
    h, y = model.states(BATCH["history"])[:, -1], BATCH["target"][:, -1]
    torch.manual_seed(1)
    expected = code_loss(model, h, y, gamma=3.0, lamda=0.4, p=0.1)
    torch.manual_seed(1)
    assert torch.allclose(model.loss(BATCH), expected, atol=1e-6)

    spec = registry.resolve("preferdiff", {"preferdiff": {**SMALL, "variant": "dreamrec", "dropout": "0"}})
    assert (spec.config.pref_weight, spec.config.loss, spec.config.sampler, spec.train.lr) == (0.0, "mse", "ddpm", 5e-3)
    torch.manual_seed(0)
    dream = spec.build(20)
    calls = []
    dream.denoise_net.register_forward_hook(lambda *_: calls.append(1))
    h = dream.states(BATCH["history"])[:, -1]
    torch.manual_seed(1)
    drop = torch.rand(4, 1) < 0.1
    t = torch.randint(0, 200, (4,))
    x0 = dream.item(y)
    pred = dream.denoise(dream.schedule.add_noise(x0, torch.randn_like(x0), t), torch.where(drop, dream.none, h), t)
    calls.clear()
    torch.manual_seed(1)
    assert torch.allclose(dream.loss(BATCH), F.mse_loss(pred, x0), atol=1e-6)
    assert len(calls) == 1                                            # no negative is denoised


def code_encoder(model, seq):
    """SASRec.get_representation of the code (dropout 0) on right-padded (B, L) ids; with residual
    false, DreamRec's Tenc.cacu_h (one block)."""
    residual = model.cfg.residual
    lengths = (seq != 0).sum(1)
    D, H = model.cfg.hidden, model.cfg.heads
    x = model.item(seq) + model.encoder.pos(torch.arange(seq.shape[1]))
    mask = (seq != 0).float()[..., None]
    for blk in model.encoder.blocks:
        x = x * mask
        q = blk["ln_1"](x)
        Q, K, V = (torch.cat(torch.split(blk[n](a), D // H, dim=2), 0) for n, a in (("q", q), ("k", x), ("v", x)))
        s = torch.bmm(Q, K.transpose(1, 2)) / D ** 0.5
        s = torch.where(torch.sign(x.sum(-1).abs()).repeat(H, 1)[:, None, :] == 0, -2.0 ** 32 + 1, s)
        s = torch.where(torch.ones_like(s[0]).tril() == 0, -2.0 ** 32 + 1, s).softmax(-1)
        s = s * torch.sign(q.sum(-1).abs()).repeat(H, 1)[..., None]
        att = torch.cat(torch.split(torch.bmm(s, V), len(seq), 0), 2) + q
        x = x + att if residual else att
        f = blk["ln_2"](x)
        ff = blk["ln_ff"](blk["w_2"](F.relu(blk["w_1"](f))) + f) * mask
        x = blk["ln_3"](x + ff if residual else ff)
    return x[torch.arange(len(seq)), lengths - 1]


@pytest.mark.parametrize("blocks, residual", [("2", "true"), ("1", "false")])
def test_encoder_on_left_padding_matches_the_code_on_right_padding(blocks, residual):
    model = build(dropout="0", blocks=blocks, residual=residual).eval()
    for norm in (m for m in model.modules() if isinstance(m, torch.nn.LayerNorm)):
        # at init a LayerNorm's output sums to 0 up to rounding, and the code's masks test that sum:
        # an exact 0.0 would mask a real position there
        torch.nn.init.normal_(norm.weight, 1.0, 0.2)
        torch.nn.init.normal_(norm.bias, 0.0, 0.2)
    left = BATCH["history"]
    right = torch.stack([torch.cat([r[r != 0], r[r == 0]]) for r in left])
    with torch.no_grad():
        assert torch.allclose(model.states(left)[:, -1], code_encoder(model, right), atol=1e-5)


def test_schedules_match_the_code():
    cfg = PreferDiffConfig()
    s = GuidedSchedule(cfg)
    abar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 2000), 0)       # the code's linear schedule
    idx = [0] + [i - 1 for i in range(100, 2001, 100)]                   # init_ddim_variables
    sub, prev = abar[idx], F.pad(abar[idx][:-1], (1, 0), value=1.0)
    assert s.ddim_times.tolist() == list(range(0, 2001, 100))
    assert torch.allclose(s.ddim_c1, prev.sqrt() - (1 - prev).sqrt() / (1 / sub - 1).sqrt(), atol=1e-5)
    assert torch.allclose(s.ddim_c2, (1 - prev).sqrt() / (1 - sub).sqrt(), atol=1e-5)
    assert (s.ddim_c1[0], s.ddim_c2[0]) == (1, 0)                      # the last step returns x0_hat
    x = torch.linspace(1, 401, 200)                                      # DreamRec's exp_beta_schedule, T = 200
    exp = 1 - torch.exp(-0.1 / 200 - x * 0.5 * 9.9 / 200 ** 2)
    dream = GuidedSchedule(PreferDiffConfig(schedule="exp", diffusion_steps=200))
    assert torch.allclose(dream.sqrt_abar ** 2, torch.cumprod(1 - exp, 0), atol=1e-6)


def test_diffusion_off_shows_the_denoiser_no_noisy_target():
    model = build(diffusion="false")
    seen = []
    model.denoise_net.register_forward_hook(lambda mod, args, out: seen.append(args[0]))
    model.loss(BATCH)
    model.eval().score({"history": BATCH["history"]})
    D = model.cfg.hidden
    assert len(seen) == 3                                # positive and negative, then one guided scoring call
    for inputs in seen:
        assert not inputs[:, :D].any()                   # x_t = 0
        assert torch.equal(inputs[:, 2 * D:], inputs[:1, 2 * D:].expand(len(inputs), -1))   # one t (0)
    assert model.scoring_steps(model.cfg) == (1, 1)


def test_trains_through_the_cli_on_a_planted_sequence(tmp_path):
    ds = planted()
    lines = ["user\titem\ttimestamp"] + [f"{u}\t{i}\t{k}" for u, seq in enumerate(ds.train)
                                         for k, i in enumerate(seq + [ds.val[u], ds.test[u]])]
    (tmp_path / "planted.tsv").write_text("\n".join(lines) + "\n")
    sets = {"hidden": "64", "lr": "0.005", "epochs": "12", "eval_every": "6", "targets": "all", "precision": "fp32"}
    proc = bench_cli("run", "--models", "preferdiff", "--dataset", str(tmp_path / "planted.tsv"), "--seeds", "1",
                     "--out", str(tmp_path / "out"), "--threads", "1",
                     *[a for k, v in sets.items() for a in ("--set", f"preferdiff.{k}={v}")], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record, = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert record["test"]["mrr"] >= 0.5, record["test"]
