"""Download the benchmark datasets from their public address, verifying SHA-256."""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from bench.errors import BenchError

BASE_URL = "https://raw.githubusercontent.com/WHUIR/DiffuRec/main/datasets/data/"
REMOTE_DIR = {"beauty": "amazon_beauty", "toys": "toys", "ml-1m": "ml-1m"}
SHA256 = {
    "beauty": "1d5ba224ff02584bcde37d3dd9fd3191d440829e7fcb7fe42dcfd313dd2144cb",
    "ml-1m": "24517f75352c088e6163b0f1a1d61932390c08d837e191e02d09d1d35dc63ea4",
    "toys": "e6e8f7f188326a3370749055e2a736fbd16ac036f42fe051ebd8eb891ff7bd4a",
}


def url_for(name: str, base_url: str | None = None) -> str:
    base = base_url or os.environ.get("BENCH_DATA_URL") or BASE_URL
    return base.rstrip("/") + f"/{REMOTE_DIR[name]}/dataset.pkl"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(name: str, directory: Path, base_url: str | None = None, timeout: float = 60) -> Path:
    """Download `name` into `directory`; the file appears only once verified."""
    if name not in REMOTE_DIR:
        raise BenchError(f"unknown dataset '{name}'; fetchable: {', '.join(REMOTE_DIR)}")
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{name}.pkl"
    url = url_for(name, base_url)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            while block := resp.read(1 << 20):
                out.write(block)
        digest = sha256_of(Path(tmp))
        if digest != SHA256[name]:
            raise BenchError(f"{url}: SHA-256 mismatch (got {digest[:12]}..., expected {SHA256[name][:12]}...); file discarded")
        os.replace(tmp, target)
    except (urllib.error.URLError, OSError) as e:
        raise BenchError(f"cannot download {url}: {getattr(e, 'reason', e)}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target
