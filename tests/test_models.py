"""Model contract tests for the registered models, on small data."""
import dataclasses
import math

import pytest
import torch

from bench import registry
from bench.train import batching
from bench.data import Dataset, synthetic
from bench.eval.protocol import Protocol
from bench.train.loop import Trainer, make_optimizer, train_step


def planted(n_users=300, n_items=40, seed=0) -> Dataset:
    """The next item is fully determined by the previous one: i -> i % N + 1."""
    g = torch.Generator().manual_seed(seed)
    seqs = []
    for _ in range(n_users):
        start, length = int(torch.randint(1, n_items + 1, (1,), generator=g)), int(torch.randint(6, 15, (1,), generator=g))
        seqs.append([(start - 1 + k) % n_items + 1 for k in range(length)])
    return Dataset("planted", [s[:-2] for s in seqs], [s[-2] for s in seqs], [s[-1] for s in seqs], n_items)


def planted_file(folder) -> str:
    """The planted dataset as a dataset file in `folder`, for training through the CLI."""
    import pickle

    ds = planted()
    raw = {"train": dict(enumerate(ds.train)), "val": {u: [v] for u, v in enumerate(ds.val)},
           "test": {u: [t] for u, t in enumerate(ds.test)}, "smap": {i: i for i in range(1, ds.n_items + 1)}}
    path = folder / "planted.pkl"
    path.write_bytes(pickle.dumps(raw))
    return str(path)


@pytest.mark.parametrize("name", registry.names())
def test_two_steps_then_finite_full_catalogue_scores(name):
    ds = synthetic()
    spec = registry.resolve(name)
    torch.manual_seed(0)
    model = spec.build(ds.n_items)
    if hasattr(model, "fit"):
        model.fit(ds.train)
    examples = batching.build_examples(model.train_format, ds.train, 50)
    opt = make_optimizer(model, spec.train)
    if opt is not None:             # the harness's one training step, as the loop, the plan and `bench perf` take it
        cfg = dataclasses.replace(spec.train, precision="fp32")
        for step, batch in zip(range(2), batching.epoch_batches(examples, model.train_format, 32, torch.Generator())):
            assert math.isfinite(train_step(model, opt, {**batch, "step": step}, torch.device("cpu"), cfg))
    model.eval()
    with torch.no_grad():
        scores = model.score({"history": torch.tensor([[0, 0, 3, 4], [1, 2, 3, 4]])})
    assert scores.shape == (2, ds.n_items + 1) and torch.isfinite(scores).all()


@pytest.mark.parametrize("name", [n for n in registry.names() if n != "pop"])
def test_left_padding_does_not_change_scores(name):
    torch.manual_seed(0)
    model = registry.resolve(name).build(30).eval()
    hist = torch.tensor([[5, 6, 7], [0, 8, 9]])
    padded = torch.cat([torch.zeros(2, 4, dtype=torch.long), hist], 1)
    with torch.no_grad():
        assert torch.allclose(model.score({"history": hist}), model.score({"history": padded}), atol=1e-5)


SMALL_DIFFUSION = {"hidden": "32", "blocks": "2", "heads": "2", "batch_size": "128", "lr": "0.003", "epochs": "6",
                   "eval_every": "3", "patience": "5"}
PLANTED = [
    ("sasrec", {"epochs": "40", "lr": "0.005", "dropout": "0.1", "patience": "40", "eval_every": "10"}),
    ("sasrec", {"epochs": "40", "lr": "0.005", "dropout": "0.1", "patience": "40", "eval_every": "10",
                "loss": "bce", "negatives": "8"}),
    ("diffurec", SMALL_DIFFUSION),
    ("diffurecsys", SMALL_DIFFUSION),
]


@pytest.mark.parametrize("name, sets", PLANTED, ids=[f"{n}-{s.get('loss', '')}" for n, s in PLANTED])
def test_learns_a_planted_sequence(tmp_path, name, sets):
    ds = planted()
    spec = registry.resolve(name, {name: sets})
    torch.manual_seed(0)
    out = Trainer(spec.build(ds.n_items), ds, Protocol(), spec.train, tmp_path, 0, torch.device("cpu")).run()
    assert out.test["hr@10"] > 0.95, out.test


def test_pop_ranks_by_training_counts():
    ds = Dataset("t", train=[[1, 1, 2], [3, 1], [2]], val=[3, 3, 3], test=[1, 2, 3], n_items=3)
    model = registry.resolve("pop").build(ds.n_items)
    model.fit(ds.train)
    assert model.score({"history": torch.tensor([[1]])}).tolist() == [[0.0, 3.0, 2.0, 1.0]]


def test_label_smoothing_matches_its_definition():
    from bench.models.layers import full_softmax_ce
    torch.manual_seed(0)
    states, weight = torch.randn(7, 4), torch.randn(11, 4)      # 10 items + padding row
    target = torch.randint(1, 11, (7,))
    logp = torch.log_softmax(states @ weight[1:].T, dim=1)
    nll = -logp[torch.arange(7), target - 1]
    expected = (0.9 * nll - 0.1 * logp.mean(1)).mean()
    assert torch.allclose(full_softmax_ce(states, weight, target, label_smoothing=0.1), expected, atol=1e-6)
    assert torch.allclose(full_softmax_ce(states, weight, target), nll.mean(), atol=1e-6)


def test_catalogue_scores_are_not_rounded_under_bf16():
    from bench.models.layers import catalogue_scores
    states = torch.ones(1, 4)
    weight = torch.tensor([[0.0] * 4, [2.5] * 4, [2.501] * 4, [2.502] * 4])   # scores 10, 10.004, 10.008
    with torch.autocast("cpu", dtype=torch.bfloat16):
        rounded = states @ weight.T
        scores = catalogue_scores(states, weight)
    assert rounded[0, 1] == rounded[0, 3]                  # bf16 keeps 8 bits: three items would tie
    assert scores.dtype == torch.float32 and scores[0, 1] < scores[0, 2] < scores[0, 3]


@pytest.mark.parametrize("name", [n for n in registry.names() if n != "pop"])
def test_scores_are_fp32_under_bf16_autocast(name):
    torch.manual_seed(0)
    model = registry.resolve(name).build(30).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        scores = model.score({"history": torch.tensor([[0, 5, 6], [7, 8, 9]])})
    assert scores.dtype == torch.float32
    assert scores[:, 1:].unique().numel() > 25             # bf16 scores of this size collide often
