import torch

from bench.train import batching


def test_windows_make_every_item_but_the_first_a_target_once():
    seqs = [list(range(1, 12)), [3, 4], [7, 8, 9]]
    win = batching.sequence_windows(seqs, max_len=4)
    targets = []
    for batch in batching.epoch_batches(win, "sequence", 2, torch.Generator().manual_seed(0)):
        assert (batch["target"][batch["history"] == 0] == 0).all()   # no target at padding
        targets += batch["target"][batch["target"] != 0].tolist()
    expected = [i for s in seqs for i in s[1:]]
    assert sorted(targets) == sorted(expected)


def test_prefixes_and_buckets_cover_each_example_once():
    seqs = [list(range(1, 30)), [5, 6], [1, 2, 3, 4]]
    ex = batching.prefix_examples(seqs, max_len=5)
    assert len(ex) == 28 + 1 + 3
    seen = []
    for batch in batching.epoch_batches(ex, "prefix", 4, torch.Generator().manual_seed(1), bucket=3):
        rows = torch.cat([batch["history"], batch["target"][:, None]], 1)
        assert (rows[:, -1] != 0).all() and (rows[:, 0] != 0).any()   # cut to the longest real row
        seen += [tuple(r[r != 0].tolist()) for r in rows]
    assert sorted(seen) == sorted(tuple(r[r != 0].tolist()) for r in ex)


def test_loss_scale_weighs_every_target_alike_in_length_sorted_batches():
    """Scaled batch means average to the mean over all targets; unscaled ones do not."""
    g = torch.Generator().manual_seed(3)
    seqs = [list(range(1, 2 + int(n))) for n in torch.randint(1, 40, (200,), generator=g)]
    win = batching.sequence_windows(seqs, max_len=20)
    per_target = lambda t: (t > 10).double()         # items past 10 only occur in long sequences  # noqa: E731
    scaled, plain, scales, all_targets = [], [], [], []
    for batch in batching.epoch_batches(win, "sequence", 16, torch.Generator().manual_seed(0), bucket=50):
        t = batch["target"][batch["target"] != 0]
        mean = float(per_target(t).mean())
        scaled.append(batch["loss_scale"] * mean)
        plain.append(mean)
        scales.append(batch["loss_scale"])
        all_targets.append(t)
    target_mean = float(per_target(torch.cat(all_targets)).mean())
    assert abs(sum(scales) / len(scales) - 1) < 1e-9
    assert abs(sum(scaled) / len(scaled) - target_mean) < 1e-9
    assert abs(sum(plain) / len(plain) - target_mean) > 0.05      # length-sorted batches skew the plain mean
