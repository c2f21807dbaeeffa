import functools
import http.server
import pickle
import shutil
import threading
from pathlib import Path

import pytest

from bench import data
from bench.data import fetch
from bench.data import tsv
from bench.errors import BenchError


def write_pickle(path: Path, obj) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=4))
    return path


def valid_dict():
    return {"train": {0: [1, 2], 1: [3]}, "val": {0: [3], 1: [1]}, "test": {0: [4], 1: [2]},
            "umap": {"a": 0, "b": 1}, "smap": {"i1": 1, "i2": 2, "i3": 3, "i4": 4}}


def test_synthetic_is_deterministic_and_rewards_the_order_of_the_history():
    from collections import Counter, defaultdict
    a, b = data.synthetic(), data.synthetic()
    assert a == b
    assert a.n_items == 200 and a.n_users == 600
    # the topic cycles make consecutive pairs repeat far more than chance
    pairs = [(s[i], s[i + 1]) for s in a.train for i in range(len(s) - 1)]
    assert len(set(pairs)) < 0.6 * len(pairs)
    successors = defaultdict(Counter)
    for x, y in pairs:
        successors[x][y] += 1
    popular = [i for i, _ in Counter(i for s in a.train for i in s).most_common(2)]
    last_item = history = by_popularity = 0
    for seq, val, target in zip(a.train, a.val, a.test):
        seen = seq + [val]
        first_order = [i for i, _ in successors[seen[-1]].most_common(2)]
        last_item += target in first_order
        # the last item's successor, and the successor of the latest item of the other topic
        guess = first_order[:1]
        for item in reversed(seen[:-1]):
            if successors[item] and item not in guess:
                nxt = successors[item].most_common(1)[0][0]
                if nxt not in guess and nxt not in seen[-3:]:
                    guess.append(nxt)
                    break
        history += target in guess
        by_popularity += target in popular
    n = len(a.test)
    # two guesses each: popularity is far behind the last item, and the earlier history adds to it
    assert by_popularity / n < 0.1 < 0.4 < last_item / n < history / n - 0.05


def test_valid_pickle_loads(tmp_path):
    ds = data.load_pickle(write_pickle(tmp_path / "ok.pkl", valid_dict()))
    assert ds.train == [[1, 2], [3]] and ds.val == [3, 1] and ds.test == [4, 2] and ds.n_items == 4


class Boom:
    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_pickle_with_globals_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    bomb = Boom()
    bomb.marker = str(marker)
    path = write_pickle(tmp_path / "evil.pkl", {**valid_dict(), "umap": bomb})
    with pytest.raises(BenchError, match="refusing"):
        data.load_pickle(path)
    assert not marker.exists()


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("val"), "missing keys"),
    (lambda d: d["train"].__setitem__(1, []), "fewer than 3 items"),
    (lambda d: d["test"].__setitem__(0, [99]), "out of range"),
    (lambda d: d["train"].__setitem__(0, [0, 1]), "out of range"),
    (lambda d: d["val"].pop(1), "single val/test"),
])
def test_inconsistent_files_fail_with_a_clear_line(tmp_path, mutate, message):
    d = valid_dict()
    mutate(d)
    with pytest.raises(BenchError, match=message):
        data.load_pickle(write_pickle(tmp_path / "bad.pkl", d))


def test_truncated_and_garbage_files(tmp_path):
    raw = pickle.dumps(valid_dict(), protocol=4)
    (tmp_path / "trunc.pkl").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "junk.pkl").write_bytes(b"\x00not a pickle at all")
    for name in ("trunc.pkl", "junk.pkl"):
        with pytest.raises(BenchError, match="corrupt"):
            data.load_pickle(tmp_path / name)
    with pytest.raises(BenchError, match="not found"):
        data.resolve(str(tmp_path / "absent.pkl"))
    with pytest.raises(BenchError, match="unknown dataset"):
        data.resolve("no-such-dataset")


def test_tsv_interactions_become_chronological_splits(tmp_path):
    rows = ["user\titem\ttimestamp",
            "u1\ta\t3", "u1\tb\t1", "u1\tc\t2", "u1\td\t4",   # chronological: b c a d
            "u2\ta\t1", "u2\tb\t2",                            # only 2 events: dropped
            "u3\tc\t5", "u3\ta\t6", "u3\te\t7"]
    path = tmp_path / "log.tsv"
    path.write_text("\n".join(rows) + "\n")
    ds = tsv.load_interactions(path)
    ids = {"b": 1, "c": 2, "a": 3, "d": 4, "e": 5}             # numbered in order of first appearance
    assert ds.train == [[ids["b"], ids["c"]], [ids["c"]]]
    assert ds.val == [ids["a"], ids["a"]] and ds.test == [ids["d"], ids["e"]]
    assert ds.n_items == 5
    # a 2-core drops the items seen once (d, e); u3 is left with 2 events and is dropped
    core = tsv.load_interactions(path, k=2)
    assert (core.train, core.val, core.test, core.n_items) == ([[1]], [2], [3], 3)  # u1: b c a
    bad = tmp_path / "bad.tsv"
    bad.write_text("user\titem\nu1\ta\n")
    with pytest.raises(BenchError, match="header"):
        tsv.load_interactions(bad)


@pytest.fixture
def http_mirror(tmp_path):
    """A local HTTP server on 127.0.0.1 serving <dir>/dataset.pkl files from tmp_path/mirror."""
    root = tmp_path / "mirror"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()


def test_fetch_verifies_sha256_over_http(data_dir, http_mirror, tmp_path):
    root, url = http_mirror
    (root / "toys").mkdir()
    shutil.copy(data_dir / "toys.pkl", root / "toys" / "dataset.pkl")
    dest = tmp_path / "cache"
    path = fetch.fetch("toys", dest, base_url=url)
    assert path == dest / "toys.pkl" and fetch.sha256_of(path) == fetch.SHA256["toys"]
    assert data.resolve("toys", dest).n_users == 19412


def test_fetch_rejects_a_tampered_file_and_keeps_nothing(http_mirror, tmp_path):
    root, url = http_mirror
    (root / "amazon_beauty").mkdir()
    write_pickle(root / "amazon_beauty" / "dataset.pkl", valid_dict())
    dest = tmp_path / "cache"
    with pytest.raises(BenchError, match="SHA-256 mismatch"):
        fetch.fetch("beauty", dest, base_url=url)
    assert not dest.exists()                # nothing kept, not even the folder it made


def test_fetch_file_url_and_unreachable(tmp_path):
    dest = tmp_path / "cache"
    with pytest.raises(BenchError, match="cannot download") as e:
        fetch.fetch("ml-1m", dest, base_url=(tmp_path / "nowhere").as_uri())
    assert not dest.exists()
    # it says where the file can go instead
    assert f"put ml-1m.pkl" in str(e.value) and str(dest) in str(e.value) and "BENCH_DATA_DIR" in str(e.value)
    (dest / "keep").mkdir(parents=True)     # a folder that was there stays
    with pytest.raises(BenchError):
        fetch.fetch("ml-1m", dest, base_url=(tmp_path / "nowhere").as_uri())
    assert (dest / "keep").is_dir()


def test_data_list_points_to_bench_data_fetch(tmp_path):
    from tests.conftest import bench_cli
    proc = bench_cli("data", "list", "--data-dir", str(tmp_path / "none"))
    assert proc.returncode == 0, proc.stderr
    assert f"bench data fetch beauty --data-dir {tmp_path / 'none'}" in proc.stdout.replace("\n", "")
    assert not (tmp_path / "none").exists()


def test_data_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path / "env"))
    assert data.data_dir(tmp_path / "flag") == tmp_path / "flag"
    assert data.data_dir() == tmp_path / "env"
    monkeypatch.delenv("BENCH_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data.data_dir() == tmp_path / "cache" / "bench" / "data"
