"""Every user mistake: one line on stderr, non-zero exit, no traceback, results untouched."""
import pickle

import pytest

from tests.conftest import bench_cli

SENTINEL = '{"run_id": "keep", "model": "x", "dataset": "y"}\n'


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def bad_inputs(tmp):
    (tmp / "corrupt.pkl").write_bytes(b"\x80\x04garbage")
    (tmp / "evil.pkl").write_bytes(pickle.dumps({"train": Evil()}))
    return {
        "unknown model": ["--models", "nosuchmodel", "--dataset", "synthetic"],
        "unknown dataset": ["--models", "pop", "--dataset", "nosuchdata"],
        "missing file": ["--models", "pop", "--dataset", str(tmp / "absent.pkl")],
        "corrupt file": ["--models", "pop", "--dataset", str(tmp / "corrupt.pkl")],
        "pickle with globals": ["--models", "pop", "--dataset", str(tmp / "evil.pkl")],
        "unknown --set key": ["--models", "sasrec", "--dataset", "synthetic", "--set", "sasrec.nosuch=1"],
        "wrong --set type": ["--models", "sasrec", "--dataset", "synthetic", "--set", "sasrec.hidden=big"],
        "bad --set literal": ["--models", "sasrec", "--dataset", "synthetic", "--set", "sasrec.loss=mse"],
        "malformed --set": ["--models", "sasrec", "--dataset", "synthetic", "--set", "hidden=3"],
        "bad seeds": ["--models", "pop", "--dataset", "synthetic", "--seeds", "x"],
    }


def test_each_mistake_is_one_clear_line(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.jsonl").write_text(SENTINEL)
    for label, args in bad_inputs(tmp_path).items():
        proc = bench_cli("run", *args, "--out", str(out), "--epochs", "1")
        assert proc.returncode != 0, label
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), (label, proc.stderr)
        assert "Traceback" not in proc.stderr + proc.stdout, label
        assert "pwned" not in proc.stdout, label
        assert (out / "results.jsonl").read_text() == SENTINEL, label


def test_errors_name_the_valid_choices(tmp_path):
    proc = bench_cli("run", "--models", "nosuchmodel", "--dataset", "synthetic", "--out", str(tmp_path))
    assert "sasrec" in proc.stderr and "pop" in proc.stderr
    proc = bench_cli("run", "--models", "sasrec", "--dataset", "synthetic", "--set", "sasrec.nosuch=1",
                     "--out", str(tmp_path))
    assert "hidden" in proc.stderr and "lr" in proc.stderr
    proc = bench_cli("run", "--models", "sasrec", "--dataset", "synthetic", "--set", "sasrec.loss=mse",
                     "--out", str(tmp_path))
    assert "ce" in proc.stderr and "bce" in proc.stderr


def test_fetch_unknown_dataset(tmp_path):
    proc = bench_cli("data", "fetch", "nosuch", "--data-dir", str(tmp_path))
    assert proc.returncode != 0 and proc.stderr.strip().startswith("error:")


def test_seed_specs():
    from bench.cli.options import parse_seeds
    from bench.errors import BenchError
    assert parse_seeds("3") == [0, 1, 2]
    assert parse_seeds("2,") == [2]
    assert parse_seeds("1,5") == [1, 5]
    for bad in ("0", "-1", "a,b"):
        with pytest.raises(BenchError):
            parse_seeds(bad)


def test_status_of_a_missing_or_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    ckpt = tmp_path / "damaged" / "runs" / "synthetic" / "sasrec" / "seed0-0123456789abcdef" / "checkpoint.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"not a checkpoint")
    for folder, needle in (("absent", "is not a folder"), ("empty", "no runs in")):
        proc = bench_cli("status", str(tmp_path / folder))
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:"), (folder, proc.stderr)
        assert needle in lines[0], (folder, lines[0])
    proc = bench_cli("status", str(tmp_path / "damaged"))          # shown as damaged, not fatal
    assert proc.returncode == 0 and "damaged" in proc.stdout, proc.stderr


def test_command_line_mistakes_are_one_error_line_with_suggestions():
    for args, needle in ((["run", "--epochs", "abc", "--dataset", "synthetic"], "--epochs"),
                         (["rnu"], "Did you mean 'run'"),
                         (["run", "--epoch", "3", "--dataset", "synthetic"], "--epochs")):
        proc = bench_cli(*args)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:"), (args, proc.stderr)
        assert needle in lines[0] and "--help" in lines[0], lines[0]
    proc = bench_cli("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("bench ")
