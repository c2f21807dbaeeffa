"""BERT4Rec, SVAE and ACVAE: their masking, annealing, critic and padding pieces, and a planted signal each learns."""
import pytest
import torch

from bench import registry
from bench.errors import BenchError
from bench.baselines.svae import align_left
from test_models import test_learns_a_planted_sequence as learns_planted


def test_cloze_mask_hides_only_real_items_and_at_least_one_per_row():
    model = registry.resolve("bert4rec", {"bert4rec": {"mask_prob": "0.05"}}).build(20)
    seq = torch.tensor([[0, 0, 0, 0, 0, 5], [0, 0, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6]]).repeat(200, 1)
    torch.manual_seed(0)
    masked = model.cloze_mask(seq)
    assert masked.any(1).all() and not masked[seq == 0].any()
    assert masked[2::3].float().mean(0).min() > 0.05              # the forced pick is spread over positions
    torch.manual_seed(0)
    assert torch.equal(model.cloze_mask(seq), masked)          # the harness seeds torch: reproducible


def test_mask_last_rows_hide_only_their_last_item():
    model = registry.resolve("bert4rec", {"bert4rec": {"mask_prob": "1.0", "mask_last": "0.3"}}).build(20)
    seq = torch.arange(1, 7).repeat(1000, 1)
    masked = model.cloze_mask(seq)
    last_only = masked.sum(1) == 1
    assert masked[last_only, -1].all() and masked[~last_only].all()
    assert 0.25 < last_only.float().mean() < 0.35


def test_bert4rec_scores_with_mask_appended_after_history():
    torch.manual_seed(0)
    model = registry.resolve("bert4rec").build(30).eval()
    hist = torch.tensor([[0, 5, 6, 7]])
    seq = torch.tensor([[0, 5, 6, 7, model.mask_id]])
    with torch.no_grad():
        expected = model.encode(seq)[0][-1:] @ model.item.weight[:-1].T
        assert torch.allclose(model.score({"history": hist}), expected)
    assert model.score({"history": hist}).shape == (1, 31)


def padded_prenorm_reference(model, seq, causal):
    """The pre-norm encoder on the whole padded (B, L) batch, padding rows zeroed after each
    layer: what models.layers.packed_states computes on the real positions only."""
    import math
    from bench.models.layers import attention_mask, reversed_positions

    valid = seq != 0
    x = (model.item(seq) * math.sqrt(model.item.embedding_dim) + model.pos(reversed_positions(seq))) * valid[..., None]
    mask = attention_mask(valid, causal=causal)
    for block in model.blocks:
        x = block(x, mask) * valid[..., None]
    return model.norm(x)[valid]


@pytest.mark.parametrize("name", ["bert4rec", "sasrec"])
def test_packed_prenorm_encoder_equals_the_padded_one(name):
    torch.manual_seed(0)
    sets = {"hidden": "16", "heads": "2", "dropout": "0"}
    if name == "sasrec":
        sets.update(block="prenorm", pad_slots="0")
    model = registry.resolve(name, {name: sets}).build(30).eval()
    seq = torch.tensor([[0, 0, 0, 0, 0, 3, 4, 5], [0, 0, 1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, 0, 0, 7],
                        [9, 8, 7, 6, 5, 4, 3, 2]])
    with torch.no_grad():
        states, valid = model.encode(seq)
        assert torch.equal(valid, seq != 0)
        assert torch.allclose(states, padded_prenorm_reference(model, seq, causal=name == "sasrec"), atol=1e-5)
        if name == "bert4rec":           # the [MASK] output of each row, however much padding it has
            scores = model.score({"history": seq})
            one = torch.cat([model.score({"history": seq[i:i + 1, (seq[i] == 0).sum():]}) for i in range(len(seq))])
            assert torch.allclose(scores, one, atol=1e-5)


def test_bert4rec_loss_sees_the_last_training_item():
    """The window's last item (batch["target"][:, -1]) is part of the cloze sequence."""
    model = registry.resolve("bert4rec", {"bert4rec": {"mask_last": "1.0", "dropout": "0"}}).build(30)
    batch = {"history": torch.tensor([[0, 1, 2]]), "target": torch.tensor([[0, 2, 3]])}
    a = model.loss(batch)
    b = model.loss({**batch, "target": torch.tensor([[0, 2, 9]])})
    assert not torch.isclose(a, b)


def test_align_left_rolls_padding_to_the_end_and_back():
    seq = torch.tensor([[0, 0, 4, 5], [1, 2, 3, 4], [0, 0, 0, 7]])
    rolled, back = align_left(seq)
    assert rolled.tolist() == [[4, 5, 0, 0], [1, 2, 3, 4], [7, 0, 0, 0]]
    assert torch.equal(rolled.gather(1, back), seq)


def test_svae_beta_anneals_linearly_then_holds():
    model = registry.resolve("svae", {"svae": {"beta_max": "0.4", "anneal_steps": "100"}}).build(10)
    assert [model.beta(s) for s in (0, 50, 100, 1000)] == [0.0, 0.2, 0.4, 0.4]
    batch = {"history": torch.tensor([[0, 1, 2]]), "target": torch.tensor([[0, 2, 3]])}
    torch.manual_seed(0)
    early = model.loss({**batch, "step": 0})
    assert torch.isclose(early["loss"], early["nll"])                # beta = 0 at the first step


def test_svae_next_k_targets_are_the_following_items():
    model = registry.resolve("svae", {"svae": {"next_k": "2"}}).build(10)
    batch = {"history": torch.tensor([[0, 1, 2, 3]]), "target": torch.tensor([[0, 2, 3, 4]])}
    assert model.next_items(batch).tolist() == [[[0, 0], [2, 3], [3, 4], [4, 0]]]


def test_invalid_settings_are_one_clear_error():
    with pytest.raises(BenchError, match="mask_prob"):
        registry.resolve("bert4rec", {"bert4rec": {"mask_prob": "0"}})
    with pytest.raises(BenchError, match="next_k"):
        registry.resolve("svae", {"svae": {"next_k": "0"}})


SMALL = {"epochs": "30", "lr": "0.005", "dropout": "0.1", "patience": "30", "eval_every": "10"}
PLANTED = [
    ("bert4rec", {**SMALL, "hidden": "32"}),
    ("svae", {**SMALL, "embed": "32", "rnn_hidden": "32", "hidden": "32", "latent": "16", "anneal_steps": "100"}),
    ("acvae", {**SMALL, "embed": "32", "rnn_hidden": "32", "hidden": "32", "latent": "16", "anneal_steps": "100",
               "critic_hidden": "32"}),
]


@pytest.mark.parametrize("name, sets", PLANTED, ids=[n for n, _ in PLANTED])
def test_learns_a_planted_sequence(tmp_path, name, sets):
    """Next item fully determined by the previous one: HR@10 > 0.95 (the registry test's check)."""
    learns_planted(tmp_path, name, sets)


def small_acvae(**sets):
    return registry.resolve("acvae", {"acvae": {"rnn_hidden": "8", "latent": "4", "embed": "8", "hidden": "8",
                                                 "critic_hidden": "64", **sets}}).build(10)


def test_acvae_critic_learns_the_kl_it_stands_for():
    """Trained alone on z ~ q(z|s) against z ~ N(0, I), the critic's mean on q is the analytic KL."""
    torch.manual_seed(0)
    model, M = small_acvae(), 1024
    s = torch.randn(M, 8)
    mu, logvar = 0.8 * s[:, :4], -1.0 + 0.3 * s[:, 4:]
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(-1).mean()
    opt = torch.optim.Adam(model.critic.parameters(), lr=3e-3)
    sample = lambda: mu + torch.randn_like(mu) * (0.5 * logvar).exp()  # noqa: E731
    softplus = torch.nn.functional.softplus
    for _ in range(400):
        loss = softplus(-model.critic_logit(s, sample())).mean() + softplus(model.critic_logit(s, torch.randn(M, 4))).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        estimate = model.critic_logit(s, sample()).mean()
    assert abs(estimate - kl) < 0.15 * kl, (float(estimate), float(kl))


def test_acvae_kl_term_moves_the_encoder_not_the_critic():
    torch.manual_seed(0)
    model = small_acvae(contrast_weight="0")
    batch = {"history": torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7]]), "target": torch.tensor([[0, 2, 3, 4], [5, 6, 7, 8]])}
    model.loss(batch)["kl"].backward()
    assert all(p.grad is None or not p.grad.any() for p in model.critic.parameters())
    assert model.posterior.weight.grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)
    model.loss(batch)["critic"].backward()                       # the critic's own loss: only the critic
    assert model.critic[0].weight.grad.abs().sum() > 0
    assert model.posterior.weight.grad is None and model.gru.weight_ih_l0.grad is None


def test_acvae_encoder_is_causal_and_blind_to_padding():
    torch.manual_seed(0)
    model = small_acvae(conv_kernel="3").eval()
    with torch.no_grad():
        a = model.states(torch.tensor([[0, 0, 1, 2, 3, 4]]))
        b = model.states(torch.tensor([[0, 0, 1, 2, 3, 9]]))          # a later item changed
        c = model.states(torch.tensor([[1, 2, 3, 4]]))                # left padding cut off
    assert torch.allclose(a[:, 2:5], b[:, 2:5]) and not torch.allclose(a[:, 5], b[:, 5])
    assert torch.allclose(a[:, 2:], c, atol=1e-6)


def sasrec_padded_reference(model, history):
    """SASRec as its reference code computes it: the history padded with zero inputs to its full
    width, only future keys masked, so every query also attends to the padding."""
    import math

    import torch.nn.functional as F
    from bench.models.layers import reversed_positions

    valid = history != 0
    x = (model.item(history) * math.sqrt(model.cfg.hidden) + model.pos(reversed_positions(history))) * valid[..., None]
    B, L, D = x.shape
    causal = torch.ones(L, L, dtype=torch.bool).tril()
    for blk in model.blocks:
        a = blk.attn
        H, Dh = a.heads, D // a.heads
        q = F.linear(blk.ln1(x), a.qkv.weight[:D], a.qkv.bias[:D]).view(B, L, H, Dh).transpose(1, 2)
        k, v = F.linear(x, a.qkv.weight[D:], a.qkv.bias[D:]).view(B, L, 2, H, Dh).permute(2, 0, 3, 1, 4)
        w = (q @ k.transpose(-2, -1) / math.sqrt(Dh)).masked_fill(~causal, float("-inf")).softmax(-1)
        x = blk.ln2(x + a.out((w @ v).transpose(1, 2).reshape(B, L, D)))
        x = (x + blk.mlp(x)) * valid[..., None]
    return model.norm(x)[:, -1] @ model.item.weight.T


def test_sasrec_padding_slots_equal_attending_every_padding_position():
    torch.manual_seed(0)
    model = registry.resolve("sasrec", {"sasrec": {"hidden": "16", "heads": "2", "dropout": "0", "block": "sasrec",
                                                   "init": "xavier", "pad_slots": "8"}}).build(30).eval()
    with torch.no_grad():
        for blk in model.blocks:
            blk.attn.qkv.bias.normal_()          # padding keys and values are the biases: make them count
    history = torch.tensor([[0, 0, 0, 0, 0, 3, 4, 5], [0, 0, 1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, 0, 0, 7]])
    with torch.no_grad():
        full = model.score({"history": history})
        assert torch.allclose(full, sasrec_padded_reference(model, history), atol=1e-5)
        assert torch.allclose(full, model.score({"history": history[:, 2:]}), atol=1e-5)   # cut padding: same
        masked = registry.resolve("sasrec", {"sasrec": {"hidden": "16", "heads": "2", "dropout": "0",
                                                        "pad_slots": "0"}}).build(30).eval()
        masked.load_state_dict(model.state_dict())
        assert not torch.allclose(full, masked.score({"history": history}), atol=1e-3)    # the slot matters
    with pytest.raises(BenchError, match="pad_slots"):
        registry.resolve("sasrec", {"sasrec": {"block": "prenorm"}})        # pre-norm block with the slot: refused
    assert registry.resolve("sasrec", {"sasrec": {"block": "prenorm", "pad_slots": "0"}}).config.block == "prenorm"


def test_sasrec_padding_slots_follow_the_runs_history_length_unless_set():
    from bench.eval.protocol import Protocol
    from bench.runs.identity import run_id

    assert registry.resolve("sasrec", {}, "ml-1m", 200).config.pad_slots == 200
    assert registry.resolve("sasrec", {"sasrec": {"pad_slots": "0"}}, "ml-1m", 200).config.pad_slots == 0
    assert registry.resolve("sasrec", {}, "beauty").config.pad_slots == 50
    # max_len 50 is the default run: the same config, so the same run id as before the rule
    assert (run_id(registry.resolve("sasrec", {}, "beauty", 50), "fp", 0, Protocol())
            == run_id(registry.resolve("sasrec", {}, "beauty"), "fp", 0, Protocol()))
    assert registry.resolve("bert4rec", {}, "ml-1m", 200) == registry.resolve("bert4rec", {}, "ml-1m")
