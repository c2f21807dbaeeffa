"""Plain-line progress for logs: validation lines, and heartbeat lines inside long epochs."""
import io

from bench.train.progress import LineProgress, make, NullProgress


def run_epoch(p: LineProgress, losses):
    p.start_epoch(3, 10, len(losses))
    for loss in losses:
        p.advance(loss)
    p.evaluated(0.0421)


def test_heartbeat_lines_inside_an_epoch():
    out = io.StringIO()
    run_epoch(LineProgress("diffurec ml-1m s0", out, every=0.0), [4.0, 2.0, 3.0])
    lines = out.getvalue().splitlines()
    # one line per batch but the last (the validation line follows it), then the validation line
    assert len(lines) == 3
    assert lines[0].startswith("diffurec ml-1m s0: epoch 3/10  batch 1/3  loss 4.0000")
    assert "batch 2/3  loss 3.0000" in lines[1]
    assert "epoch 3/10  loss 3.0000  val NDCG@10 4.21 %" in lines[2]


def test_short_epochs_print_only_validation_lines():
    out = io.StringIO()
    p = LineProgress("sasrec beauty s0", out)
    run_epoch(p, [1.0] * 50)
    run_epoch(p, [0.5] * 50)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and all("val NDCG@10" in line for line in lines)
    assert "loss 0.5000" in lines[1]


def test_make_kinds():
    assert isinstance(make("lines", "x"), LineProgress)
    assert type(make("none", "x")) is NullProgress


def test_epoch_counter_says_when_early_stopping_ends_the_run_at_the_latest():
    out = io.StringIO()
    p = LineProgress("sasrec toys s0", out)
    p.start_epoch(12, 200, 5, stop_by=30)
    p.evaluated(0.05)
    assert "epoch 12 (stop by 30, budget 200)" in out.getvalue()
    p.start_epoch(199, 200, 5, stop_by=200)
    p.evaluated(0.05)
    assert "epoch 199/200" in out.getvalue().splitlines()[1]


def test_trainer_stop_by_counts_the_evaluations_patience_leaves():
    from bench.data import synthetic
    from bench.eval.protocol import Protocol
    from bench.train.loop import Trainer, TrainConfig
    from bench.baselines.pop import MostPop
    import torch

    ds = synthetic()
    cfg = TrainConfig(epochs=200, eval_every=5, patience=3)
    t = Trainer(MostPop(MostPop.Config(), ds.n_items), ds, Protocol(), cfg, __import__("pathlib").Path("/nonexistent"),
                0, torch.device("cpu"))
    assert t.stop_by(1) == 15                # evaluations at 5, 10, 15 without a gain
    t.state["bad_evals"] = 2
    assert t.stop_by(11) == 15               # one evaluation left: the next one, at 15
    assert Trainer(MostPop(MostPop.Config(), ds.n_items), ds, Protocol(), TrainConfig(epochs=12, eval_every=5,
                   patience=3), __import__("pathlib").Path("/nonexistent"), 0, torch.device("cpu")).stop_by(1) == 12
