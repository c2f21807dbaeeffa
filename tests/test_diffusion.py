"""The diffusion family: schedule values, masking, variants, reverse process, samplers."""
import math

import pytest
import torch

from bench import registry
from bench.models.diffurec import DiffuRec, DiffuRecConfig
from bench.models.schedule import NoiseSchedule, beta_schedule, strided_timesteps
from bench.models.timesteps import LossAwareSampler


def test_trunc_lin_by_hand():
    b = beta_schedule("trunc_lin", 32)
    # scale = 1000/32; start = scale*1e-4 + 0.01; end = scale*0.02 + 0.01
    assert b[0].item() == pytest.approx(0.013125)
    assert b[-1].item() == pytest.approx(0.635)
    assert b[1].item() == pytest.approx(0.013125 + (0.635 - 0.013125) / 31)
    s = NoiseSchedule("trunc_lin", 32)
    assert s.alphas_cumprod[1].item() == pytest.approx((1 - 0.013125) * (1 - b[1].item()), rel=1e-6)
    # posterior at t=0 returns x0 exactly: coef1 = 1, coef2 = 0
    assert s.posterior_mean_coef1[0].item() == pytest.approx(1.0)
    assert s.posterior_mean_coef2[0].item() == pytest.approx(0.0, abs=1e-7)


def test_linear_and_cosine_by_hand():
    lin = beta_schedule("linear", 1000)
    assert lin[0].item() == pytest.approx(1e-4) and lin[999].item() == pytest.approx(0.02)
    assert lin[500].item() == pytest.approx(1e-4 + 500 * (0.02 - 1e-4) / 999)
    cos = beta_schedule("cosine", 2)
    abar = lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
    assert cos[0].item() == pytest.approx(1 - abar(0.5) / abar(0.0))    # about 0.5062
    assert cos[0].item() == pytest.approx(0.5062, abs=1e-4)
    assert cos[1].item() == pytest.approx(0.999)                          # capped
    for name in ("sqrt", "trunc_cos", "pw_lin"):
        b = beta_schedule(name, 32)
        assert b.dtype == torch.float64 and ((b > 0) & (b < 1)).all()


def test_add_noise_matches_closed_form():
    s = NoiseSchedule("trunc_lin", 32)
    x0, n, t = torch.ones(2, 3), torch.full((2, 3), 2.0), torch.tensor([0, 5])
    xt = s.add_noise(x0, n, t)
    ab = s.alphas_cumprod[t][:, None]
    assert torch.allclose(xt, ab.sqrt() * 1 + (1 - ab).sqrt() * 2)


def test_strided_respacing():
    assert strided_timesteps(32, 4) == [0, 10, 21, 31]
    full, sub = NoiseSchedule("trunc_lin", 32), NoiseSchedule("trunc_lin", 32, [0, 10, 21, 31])
    # respaced cumulative products equal the originals at the kept steps
    assert torch.allclose(sub.alphas_cumprod, full.alphas_cumprod[[0, 10, 21, 31]])
    assert sub.timestep_map.tolist() == [0, 10, 21, 31]


def small(**kw) -> DiffuRec:
    torch.manual_seed(0)
    cfg = DiffuRecConfig(hidden=16, blocks=2, heads=2, diffusion_steps=8, **kw)
    cfg.validate()
    return DiffuRec(cfg, 25).eval()


HIST = torch.tensor([[3, 4, 5, 6], [0, 0, 7, 8]])


@pytest.mark.parametrize("attention", ["self", "cross", "cross+self"])
@pytest.mark.parametrize("cross_kind", ["softmax", "linear"])
def test_padding_cannot_change_any_output(attention, cross_kind):
    model = small(attention=attention, cross_kind=cross_kind)
    padded = torch.cat([torch.zeros(2, 5, dtype=torch.long), HIST], 1)
    assert torch.allclose(model.score({"history": HIST}), model.score({"history": padded}), atol=1e-5)
    # changing what sits at padding positions changes nothing either
    other = padded.clone()
    model.item.weight.data[0] = 3.0 * torch.randn(16, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(model.score({"history": HIST}), model.score({"history": other}), atol=1e-5)


LONG = torch.tensor([[0, 0, 0, 0, 0, 0, 0, 3], [0, 0, 0, 0, 4, 5, 6, 7], [0, 0, 0, 0, 0, 0, 9, 8],
                     [1, 2, 3, 4, 5, 6, 7, 8], [0, 0, 0, 0, 0, 0, 0, 2]])


def test_length_groups_split_only_where_it_cuts_the_padding():
    from bench.models.diffurec import length_groups

    groups = {width: rows.tolist() for rows, width in length_groups(LONG)}
    assert groups == {1: [0, 4], 2: [2], 4: [1], 8: [3]}          # 16 cells of 40
    sorted_batch = torch.tensor([[0, 5, 6, 7], [1, 2, 3, 4], [0, 0, 0, 9]])
    (rows, width), = length_groups(sorted_batch)                   # 3 + 4 + 1 * 4 = 11 of 12 cells: kept
    assert rows.tolist() == [0, 1, 2] and width == 4


@pytest.mark.parametrize("attention,cross_kind", [("self", "softmax"), ("cross", "softmax"),
                                                  ("cross+self", "softmax"), ("cross+self", "linear")])
def test_a_batch_split_by_length_computes_what_the_whole_batch_does(monkeypatch, attention, cross_kind):
    """Scores, loss and gradients of a batch run group by group equal those of the whole padded
    batch (dropout off, so that the random draws agree)."""
    from bench.models import diffurec

    def run(gain):
        monkeypatch.setattr(diffurec, "SPLIT_GAIN", gain)
        model = small(attention=attention, cross_kind=cross_kind, dropout=0.0, emb_dropout=0.0)
        assert len(model._encode(LONG)) == (4 if gain == 0 else 1)
        scores = model.score({"history": LONG})
        torch.manual_seed(3)
        loss = model.train().loss({"history": LONG, "target": torch.tensor([9, 10, 11, 12, 13])})
        loss.backward()
        return scores, loss, [q.grad for q in model.parameters()]

    (s_whole, l_whole, g_whole), (s_split, l_split, g_split) = run(float("inf")), run(0.0)
    assert torch.allclose(s_whole, s_split, atol=1e-5)
    assert torch.allclose(l_whole, l_split, atol=1e-6)
    assert sum(g is not None for g in g_whole) > 10
    for a, b in zip(g_whole, g_split):
        assert (a is None and b is None) or torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("attention", ["self", "cross+self"])
def test_padding_sink_attends_padding_wherever_the_batch_was_cut(attention):
    model = small(attention=attention, padding_sink=9)
    padded = torch.cat([torch.zeros(2, 5, dtype=torch.long), HIST], 1)
    # padded to 9 inside the model: a batch cut to its longest row scores as the full-width one
    assert torch.allclose(model.score({"history": HIST}), model.score({"history": padded}), atol=1e-5)
    # the padding is attended: its embedding moves the scores (a random direction: LayerNorm
    # would cancel a shift of every dimension by the same amount)
    before = model.score({"history": HIST})
    model.item.weight.data[0] = 3.0 * torch.randn(16, generator=torch.Generator().manual_seed(1))
    moved = (model.score({"history": HIST}) - before).abs().amax(1)
    assert (moved > 1e-3).all()
    assert torch.allclose(small(attention=attention).score({"history": HIST}),
                          small(attention=attention).score({"history": padded}), atol=1e-5)


@pytest.mark.parametrize("kw", [
    dict(attention="self"), dict(attention="cross"), dict(attention="cross+self"),
    dict(attention="cross+self", cross_kind="linear"),
    dict(offset_noise=0.3, offset_kind="per_example"), dict(offset_noise=0.3, offset_kind="elementwise"),
    dict(inference_steps=3), dict(inference_steps=1), dict(stochastic=False), dict(eval_samples=3), dict(timestep_sampler="lossaware"),
    dict(schedule="cosine"), dict(lambda_std=0.0), dict(init_std=1.0), dict(block_dropout=True),
    dict(padding_sink=6), dict(padding_sink=6, attention="cross+self", cross_kind="linear"),
])
def test_variants_train_and_score(kw):
    model = small(**kw).train()
    batch = {"history": HIST, "target": torch.tensor([9, 10])}
    loss = model.loss(batch)
    loss.backward()
    assert torch.isfinite(loss)
    model.eval()
    scores = model.score({"history": HIST})
    assert scores.shape == (2, 26) and torch.isfinite(scores).all()
    assert torch.equal(scores, model.score({"history": HIST}))        # seeded: reproducible


def test_offset_noise_kinds_have_the_right_structure():
    torch.manual_seed(0)
    per = small(offset_noise=1.0, offset_kind="per_example").forward_noise(torch.Size((4000, 16)), "cpu")
    ele = small(offset_noise=1.0, offset_kind="elementwise").forward_noise(torch.Size((4000, 16)), "cpu")
    # per example: dimensions of one example share m, so they correlate (cov = s^2 = 1, var = 2)
    c = torch.corrcoef(per[:, :2].T)[0, 1].item()
    assert c == pytest.approx(0.5, abs=0.05)
    assert abs(torch.corrcoef(ele[:, :2].T)[0, 1].item()) < 0.05
    assert ele.var().item() == pytest.approx(2.0, rel=0.05)


def test_loss_aware_sampler_leaves_warmup_and_reweights():
    s = LossAwareSampler(steps=4, history=3)
    assert not s.warmed_up and torch.allclose(s.weights(), torch.full((4,), 0.25))
    for _ in range(3):
        s.update(torch.arange(4), torch.tensor([1.0, 1.0, 1.0, 9.0]))
    assert s.warmed_up
    w = s.weights()
    assert w[3] > 0.6 and w[0] < 0.15
    t, weights = s.sample(1000, torch.device("cpu"))
    assert (t == 3).float().mean() > 0.6
    assert torch.allclose(weights, 1 / (4 * w[t]))
    # the model feeds it its per-example losses
    model = small(timestep_sampler="lossaware").train()
    for _ in range(40):
        model.loss({"history": HIST, "target": torch.tensor([9, 10])})
    assert int(model.sampler.counts.sum()) == 80


def test_diffurecsys_defaults():
    spec = registry.resolve("diffurecsys")
    assert spec.config.attention == "cross+self" and spec.config.offset_noise == 0.0
    assert spec.config.cross_kind == "heads" and spec.config.diffusion_steps == 32
    paper = registry.resolve("diffurecsys", {"diffurecsys": {registry.VARIANT_KEY: "paper"}}).config
    assert paper.offset_noise == 0.1 and paper.offset_kind == "per_example" and paper.cross_kind == "softmax"
    assert registry.resolve("diffurec").config.attention == "self"


def test_trajectory_ends_where_scoring_does():
    model = small(inference_steps=4)
    history = torch.randint(1, 26, (3, 5))
    traj = model.trajectory(history)
    assert traj["x"].shape == (5, 3, 16)
    assert traj["timesteps"].tolist() == [8, 6, 3, 1, 0]             # steps 7, 5, 2, 0 of T = 8
    final_scores = traj["x"][-1] @ model.item.weight.T
    torch.testing.assert_close(final_scores, model.score({"history": history}))


def test_run_writes_the_trajectory_file(tmp_path):
    import numpy as np

    from bench.runs.run import run_one
    from bench.runs.spec import build

    sets = {"diffurec": {"hidden": "16", "blocks": "1", "heads": "2", "diffusion_steps": "4", "epochs": "1"}}
    record = run_one(build("diffurec", "synthetic", seed=0, out=str(tmp_path), sets=sets["diffurec"]))
    run_dir = tmp_path / record["history"].rsplit("/", 1)[0]
    z = np.load(run_dir / "trajectory.npz")
    assert z["x"].shape == (5, 8, 16) and z["item_emb"].shape == (201, 16)
    assert z["topk"].shape == (8, 10) and (z["topk"] > 0).all() and z["targets"].shape == (8,)


def test_init_std_sets_the_item_embedding_scale():
    assert small().item.weight.std().item() == pytest.approx(small().cfg.hidden ** -0.5, rel=0.2)
    assert small(init_std=1.0).item.weight.std().item() == pytest.approx(1.0, rel=0.2)


def test_validation_can_use_fewer_reverse_steps_than_test(tmp_path):
    """`valid_inference_steps` changes the scores used for model selection only."""
    from bench.eval import reeval
    from bench.data import synthetic
    from bench.runs.run import run_one
    from bench.runs.spec import build

    cheap, one_step, full = small(valid_inference_steps=1), small(inference_steps=1), small()
    batch = {"history": HIST}
    assert torch.equal(cheap.valid_score(batch), one_step.score(batch))
    assert torch.equal(cheap.score(batch), full.score(batch))
    assert not torch.equal(cheap.valid_score(batch), cheap.score(batch))
    with pytest.raises(Exception, match="valid_inference_steps"):
        DiffuRecConfig(diffusion_steps=8, valid_inference_steps=9).validate()

    sets = {"hidden": "16", "blocks": "1", "heads": "2", "diffusion_steps": "8", "epochs": "2", "eval_every": "1",
            "valid_inference_steps": "1"}
    record = run_one(build("diffurec", "synthetic", seed=0, out=str(tmp_path), sets=sets))
    # the stored validation figures are the one-step ones; test ran all 8 steps
    again = reeval.reevaluate(tmp_path, record, synthetic(), {"inference_steps": "1"}, splits=("valid",))
    assert again["valid"] == record["valid"]
    same = reeval.reevaluate(tmp_path, record, synthetic(), {})
    assert same["test"] == record["test"] and same["valid"] != record["valid"]     # 8 steps rank a little apart
