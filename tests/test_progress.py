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
    assert "epoch 3/10  loss 3.0000  val ndcg@10 0.0421" in lines[2]


def test_short_epochs_print_only_validation_lines():
    out = io.StringIO()
    p = LineProgress("sasrec beauty s0", out)
    run_epoch(p, [1.0] * 50)
    run_epoch(p, [0.5] * 50)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and all("val ndcg@10" in line for line in lines)
    assert "loss 0.5000" in lines[1]


def test_make_kinds():
    assert isinstance(make("lines", "x"), LineProgress)
    assert type(make("none", "x")) is NullProgress
