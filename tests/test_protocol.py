import math

import pytest
import torch

from bench.data import Dataset
from bench.eval.protocol import (Protocol, eval_split, metrics_from_ranks, rank_split, ranks_from_scores,
                            seen_mask)


def test_rank_counts_ties_against_the_target():
    # items 1..4; target 2 scores 0.5, item 3 ties it, item 4 beats it
    scores = torch.tensor([[9.0, 0.1, 0.5, 0.5, 0.7]])
    assert ranks_from_scores(scores, torch.tensor([2])).tolist() == [3]


def test_padding_column_is_never_a_candidate():
    scores = torch.tensor([[100.0, 0.2, 0.1]])
    assert ranks_from_scores(scores, torch.tensor([1])).tolist() == [1]
    assert ranks_from_scores(scores, torch.tensor([2])).tolist() == [2]


def test_seen_items_removed_but_target_kept():
    scores = torch.tensor([[0.0, 0.9, 0.8, 0.3, 0.1]])
    exclude = torch.tensor([[False, True, False, True, False]])
    # without removal target 3 is beaten by items 1 and 2
    assert ranks_from_scores(scores, torch.tensor([3])).tolist() == [3]
    # removing item 1 (seen) leaves item 2 above it; the target is seen too but stays
    assert ranks_from_scores(scores, torch.tensor([3]), exclude).tolist() == [2]


def test_nan_target_ranks_last():
    scores = torch.tensor([[0.0, float("nan"), 0.5, 0.2]])
    assert ranks_from_scores(scores, torch.tensor([1])).tolist() == [3]


def test_metrics_by_hand():
    m = metrics_from_ranks(torch.tensor([1, 3, 7, 15, 30]), (5, 10, 20))
    assert m["hr@5"].tolist() == [1, 1, 0, 0, 0]
    assert m["hr@10"].tolist() == [1, 1, 1, 0, 0]
    assert m["hr@20"].tolist() == [1, 1, 1, 1, 0]
    assert m["ndcg@5"][1].item() == pytest.approx(1 / math.log2(4))
    assert m["ndcg@10"][2].item() == pytest.approx(1 / math.log2(8))
    assert m["ndcg@20"][3].item() == pytest.approx(1 / math.log2(16))
    assert m["ndcg@10"][3].item() == 0
    assert m["mrr"].tolist() == pytest.approx([1, 1 / 3, 1 / 7, 1 / 15, 1 / 30])


def toy() -> Dataset:
    return Dataset("toy", train=[[1, 2], [3], [2, 4, 1], [5, 5, 2]], val=[3, 4, 5, 1], test=[4, 1, 2, 3], n_items=5)


def test_splits_follow_leave_one_out():
    ds = toy()
    p = Protocol(max_len=3)
    v, t = eval_split(ds, "valid", p), eval_split(ds, "test", p)
    assert v.history.tolist() == [[0, 1, 2], [0, 0, 3], [2, 4, 1], [5, 5, 2]]
    assert v.target.tolist() == [3, 4, 5, 1]
    assert t.history.tolist() == [[1, 2, 3], [0, 3, 4], [4, 1, 5], [5, 2, 1]]  # last max_len of train + val
    assert t.target.tolist() == [4, 1, 2, 3]
    # the seen set is the whole history, not only the truncated window
    mask = seen_mask(t, torch.tensor([2, 3]), 6)
    assert mask.tolist() == [[False, True, True, False, True, True], [False, True, True, False, False, True]]


def fixed_scorer(table: torch.Tensor):
    """Scores depend only on the most recent item, so batching cannot matter."""
    return lambda batch: table[batch["history"][:, -1]]


@pytest.mark.parametrize("exclude_seen", [False, True])
def test_final_partial_batch_matches_one_batch(exclude_seen):
    g = torch.Generator().manual_seed(0)
    n_items, users = 30, 23
    train = [torch.randint(1, n_items + 1, (int(torch.randint(1, 9, (1,), generator=g)),), generator=g).tolist()
             for _ in range(users)]
    ds = Dataset("rand", train, [1 + u % n_items for u in range(users)], [2 + u % 29 for u in range(users)], n_items)
    table = torch.randn(n_items + 1, n_items + 1, generator=g)
    p = Protocol(max_len=5, exclude_seen=exclude_seen)
    split = eval_split(ds, "test", p)
    one = rank_split(fixed_scorer(table), split, p, 1000, torch.device("cpu"), n_items)
    many = rank_split(fixed_scorer(table), split, p, 4, torch.device("cpu"), n_items)  # 23 = 5*4 + 3
    assert torch.equal(one, many)
    # and both equal a direct per-user computation
    for u in range(users):
        s = table[split.history[u, -1]].clone()
        s[0] = -math.inf
        target = split.target[u].item()
        if exclude_seen:
            for i in set(ds.train[u] + [ds.val[u]]) - {target}:
                s[i] = -math.inf
        assert one[u].item() == int((s >= s[target]).sum())
