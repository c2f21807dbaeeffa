"""The published DiffuRecSys code's Approximator switches: each computes what that code computes."""

import pytest
import torch
import torch.nn.functional as F

from bench import registry
from bench.runs.identity import run_id
from bench.eval.protocol import Protocol
from bench.models.approximator import CrossAttention
from bench.models.diffurec import DiffuRec, DiffuRecConfig, PAPER_READING, PUBLISHED_APPROXIMATOR

HIST = torch.tensor([[0, 0, 3, 4, 5, 6], [0, 0, 0, 0, 7, 8]])
PUBLISHED = dict(chain_blocks=False, shared_norm=True, query_norm=False, query_per_position=True,
                 cross_kind="heads", attention="cross+self")


def small(**kw) -> DiffuRec:
    torch.manual_seed(0)
    cfg = DiffuRecConfig(hidden=16, blocks=3, heads=4, diffusion_steps=4, **kw)
    return DiffuRec(cfg, 25).eval()


def reference_heads_attention(ca: CrossAttention, query, x, pad):
    """The published CrossAttention.forward, written out on its own: (B, L, D) queries."""
    B, L, D = x.shape
    H, Dh = ca.heads, D // ca.heads
    wk, wv = ca.kv.weight.split(D), ca.kv.bias.split(D)
    q = F.linear(query, ca.q.weight, ca.q.bias).view(B, L, H, Dh).transpose(1, 2)
    k = F.linear(x, wk[0], wv[0]).view(B, L, H, Dh).transpose(1, 2)
    v = F.linear(x, wk[1], wv[1]).view(B, L, H, Dh).transpose(1, 2)
    hidden = torch.matmul(F.softmax(q, dim=-1), torch.matmul(F.softmax(k, dim=1).transpose(-2, -1), v))
    mask = (~pad).float().unsqueeze(1).repeat([1, H, 1]).unsqueeze(-1).repeat([1, 1, 1, Dh])
    hidden = hidden.masked_fill(mask == 0, -1e9)
    return ca.out(hidden.transpose(1, 2).contiguous().view(B, L, D))


def test_heads_attention_is_the_published_one():
    torch.manual_seed(1)
    ca = CrossAttention(16, 4, 0.1, "heads").eval()
    x, query = torch.randn(2, 6, 16), torch.randn(2, 6, 16)
    pad = HIST == 0
    valid = torch.ones_like(pad)              # the published code masks no key
    assert torch.allclose(ca(query, x, valid, pad), reference_heads_attention(ca, query, x, pad), rtol=1e-5)
    # keys softmaxed over heads: scaling one head's key logits changes the others' weights
    k_logits = torch.randn(1, 4, 6, 4)
    assert torch.allclose(k_logits.softmax(1).sum(1), torch.ones(1, 6, 4))


def test_unchained_blocks_use_only_the_last_block():
    model = small(**PUBLISHED, padding_sink=6)
    before = model.score({"history": HIST})
    for block in model.approximator.blocks[:-1]:          # the published loop discards these outputs
        for p in block.parameters():
            p.data.normal_()
    assert torch.equal(before, model.score({"history": HIST}))
    for p in model.approximator.blocks[-1].ff.parameters():
        p.data.normal_()
    assert not torch.allclose(before, model.score({"history": HIST}))
    chained = small(**{**PUBLISHED, "chain_blocks": True}, padding_sink=6)
    assert not torch.allclose(before, chained.score({"history": HIST}))


def test_shared_norm_and_no_query_norm():
    block = small(**PUBLISHED).approximator.blocks[0]
    assert block.ln_self is block.ln_cross and isinstance(block.ln_q, torch.nn.Identity)
    default = small(attention="cross+self").approximator.blocks[0]
    assert default.ln_self is not default.ln_cross and isinstance(default.ln_q, torch.nn.LayerNorm)


def test_a_lambda_per_position_gives_a_query_per_position():
    model = small(**PUBLISHED, padding_sink=6)
    lam = model._lambda(2, "cpu", width=4)
    assert lam.shape == (2, 6, 16)                     # drawn at the padded width, as the code's history shape
    assert small(attention="cross+self")._lambda(2, "cpu", width=4).shape == (2, 1, 16)


def test_published_model_trains_and_scores_the_same_wherever_the_batch_was_cut():
    model = small(**PUBLISHED, padding_sink=8)
    padded = torch.cat([torch.zeros(2, 2, dtype=torch.long), HIST], 1)
    assert torch.allclose(model.score({"history": HIST}), model.score({"history": padded}), atol=1e-5)
    model.train()
    loss = model.loss({"history": HIST, "target": torch.tensor([9, 10])})
    loss.backward()
    assert torch.isfinite(loss)
    # padding rows of the cross-attention output are -1e9 in the residual stream: only the
    # last block runs and the output is read at the last (real) position, so it stays finite
    grads = [p.grad for p in model.approximator.blocks[-1].parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert all(p.grad is None for p in model.approximator.blocks[0].parameters())


def test_the_published_variant_resolves_with_padding_to_max_len():
    spec = registry.resolve("diffurecsys", {"diffurecsys": {"variant": "published"}}, "beauty", 100)
    c, t = spec.config, spec.train
    assert (c.chain_blocks, c.shared_norm, c.query_norm, c.query_per_position, c.cross_kind) == (
        False, True, False, True, "heads")
    assert (c.padding_sink, c.hidden, c.offset_noise, c.init_std) == (100, 256, 0.0, 1.0)
    assert (t.weight_decay, t.lr_schedule, t.lr_step, t.epochs, t.eval_every, t.patience) == (
        1e-4, "step", 30, 41, 8, 3)
    assert registry.resolve("diffurecsys", {"diffurecsys": {"variant": "published"}}).config.padding_sink == 50
    # a --set beside the variant wins
    assert registry.resolve("diffurecsys", {"diffurecsys": {"variant": "published", "hidden": "64"}}
                            ).config.hidden == 64
    assert set(PUBLISHED_APPROXIMATOR) <= {f for f in c.__dataclass_fields__}


def test_the_registered_model_is_the_published_approximator_and_paper_is_the_papers_reading():
    """The registered DiffuRecSys runs the code's Approximator (padding to the run's max_len) at the
    harness's training without offset noise; `variant=paper` is the paper's Approximator with its offset
    noise (the default before 2026-12-07), and each is the same run as the same switches given one by one."""
    published = {k: str(v) for k, v in PUBLISHED_APPROXIMATOR.items()}
    for max_len in (50, 100):
        default = registry.resolve("diffurecsys", {}, "beauty", max_len)
        c = default.config
        assert (c.chain_blocks, c.shared_norm, c.query_norm, c.query_per_position, c.cross_kind, c.padding_sink) == (
            False, True, False, True, "heads", max_len)
        assert (c.attention, c.offset_noise, c.hidden, c.init_std, default.train.weight_decay) == (
            "cross+self", 0.0, 128, 0.0, 0.0)
        given = registry.resolve("diffurecsys", {"diffurecsys": {**published, "padding_sink": str(max_len)}},
                                 "beauty", max_len)
        assert run_id(default, "fp", 0, Protocol(max_len=max_len)) == run_id(given, "fp", 0, Protocol(max_len=max_len))
    paper = registry.resolve("diffurecsys", {"diffurecsys": {"variant": "paper"}}, "beauty", 50).config
    assert (paper.chain_blocks, paper.shared_norm, paper.query_norm, paper.query_per_position, paper.cross_kind,
            paper.padding_sink, paper.offset_noise, paper.offset_kind) == (True, False, True, False, "softmax", 0, 0.1,
                                                                            "per_example")
    assert set(PAPER_READING) == set(PUBLISHED_APPROXIMATOR)
    # DiffuRec keeps its own defaults: no padding sink, the paper's attention settings
    d = registry.resolve("diffurec", {}, "beauty", 100).config
    assert (d.padding_sink, d.chain_blocks, d.query_norm) == (0, True, True)


def test_an_unknown_variant_is_one_clear_error():
    from bench.errors import BenchError

    with pytest.raises(BenchError, match="unknown variant 'diffurecsys.variant=authors'; choose from: published, paper"):
        registry.resolve("diffurecsys", {"diffurecsys": {"variant": "authors"}})
    with pytest.raises(BenchError, match="sasrec has no variants"):
        registry.resolve("sasrec", {"sasrec": {"variant": "published"}})


def test_new_switches_at_their_defaults_keep_earlier_run_ids():
    """Runs stored before the switches existed stay the same runs (bench.runs.fields.LATER_FIELDS)."""
    import dataclasses
    import hashlib
    import json

    from bench.runs.fields import identity

    spec = registry.resolve("diffurecsys", {"diffurecsys": {"variant": "paper"}}, "beauty", 50)
    new = {"chain_blocks", "shared_norm", "query_norm", "query_per_position"}
    old_config = {k: v for k, v in dataclasses.asdict(spec.config).items() if k not in new}
    key = {"model": "diffurecsys", "config": identity(old_config), "train": identity(dataclasses.asdict(spec.train)),
           "protocol": identity(Protocol().to_dict()), "dataset": "fp", "seed": 0}
    assert run_id(spec, "fp", 0, Protocol()) == hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


@pytest.mark.parametrize("attention", ["self", "cross+self"])
def test_xt_probe_changes_what_the_approximator_sees(attention):
    """zero: the Approximator's x_t input is zeros; shuffle: another row's. A model that reads x_t
    scores differently under either; scoring stays seeded."""
    model = small(attention=attention, lambda_mean=1.0, lambda_std=0.0)
    hist = torch.tensor([[0, 3, 4, 5], [0, 0, 7, 8], [1, 2, 3, 4], [0, 0, 0, 9]])
    base = model.score({"history": hist})
    for probe in ("zero", "shuffle"):
        probed = small(attention=attention, lambda_mean=1.0, lambda_std=0.0, xt_probe=probe)
        probed.load_state_dict(model.state_dict())
        scores = probed.score({"history": hist})
        assert not torch.allclose(base, scores) and torch.equal(scores, probed.score({"history": hist}))
    # with lambda = 0 the Approximator ignores x_t: the probes change nothing
    blind = small(attention=attention, lambda_mean=0.0, lambda_std=0.0)
    zeroed = small(attention=attention, lambda_mean=0.0, lambda_std=0.0, xt_probe="zero")
    zeroed.load_state_dict(blind.state_dict())
    assert torch.allclose(blind.score({"history": hist}), zeroed.score({"history": hist}), atol=1e-6)
