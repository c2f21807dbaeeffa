"""Download the benchmark datasets from their public address, verifying SHA-256."""
from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from pathlib import Path

from bench.atomic import atomic_write, atomic_write_text
from bench.errors import BenchError

BASE_URL = "https://raw.githubusercontent.com/WHUIR/DiffuRec/main/datasets/data/"
REMOTE_DIR = {"beauty": "amazon_beauty", "toys": "toys", "ml-1m": "ml-1m"}
SHA256 = {
    "beauty": "1d5ba224ff02584bcde37d3dd9fd3191d440829e7fcb7fe42dcfd313dd2144cb",
    "ml-1m": "24517f75352c088e6163b0f1a1d61932390c08d837e191e02d09d1d35dc63ea4",
    "toys": "e6e8f7f188326a3370749055e2a736fbd16ac036f42fe051ebd8eb891ff7bd4a",
}


SIZE = {"beauty": 1_217_889, "ml-1m": 3_101_987, "toys": 1_049_174}     # bytes; a download stops past this
SCHEMES = ("http://", "https://", "file://")
VERIFIED = "verified.json"      # in the user cache: {path: [size, mtime_ns, sha256]} of files checked before


def url_for(name: str, base_url: str | None = None) -> str:
    base = base_url or os.environ.get("BENCH_DATA_URL") or BASE_URL
    if not base.startswith(SCHEMES):
        raise BenchError(f"bad base URL '{base[:80]}'; give an http://, https:// or file:// address")
    return base.rstrip("/") + f"/{REMOTE_DIR[name]}/dataset.pkl"


def cache_file() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "bench" / VERIFIED


def verify_pinned(name: str, path: Path) -> None:
    """Check a dataset file found under a pinned name against its pinned SHA-256. The result is
    remembered by (size, mtime), so a rerun on the same file costs one stat."""
    stat = path.stat()
    key, stamp = str(path.resolve()), [stat.st_size, stat.st_mtime_ns]
    try:
        known = json.loads(cache_file().read_text())
        if not isinstance(known, dict):
            known = {}
    except (OSError, ValueError):
        known = {}
    if known.get(key) == [*stamp, SHA256[name]]:
        return
    digest = sha256_of(path) if stat.st_size == SIZE[name] else None
    if digest != SHA256[name]:
        got = f"SHA-256 {digest[:12]}..." if digest else f"{stat.st_size:,} bytes, not {SIZE[name]:,}"
        raise BenchError(f"{path} is not the pinned '{name}' dataset ({got}); move it away and run "
                         f"`bench data fetch {name} --data-dir {path.parent}` for a good copy")
    known[key] = [*stamp, digest]
    try:
        atomic_write_text(cache_file(), json.dumps(known, indent=1, sort_keys=True))
    except OSError:
        pass                    # an unwritable cache only costs a hash next time


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
    url = url_for(name, base_url)
    target = directory / f"{name}.pkl"

    def download(out) -> None:
        h, size = hashlib.sha256(), 0
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            while block := resp.read(1 << 20):
                size += len(block)
                if size > SIZE[name]:
                    raise BenchError(f"{url}: larger than the {SIZE[name]:,} bytes of the pinned '{name}' "
                                     "dataset; download stopped, file discarded")
                out.write(block)
                h.update(block)
        if h.hexdigest() != SHA256[name]:
            raise BenchError(f"{url}: SHA-256 mismatch (got {h.hexdigest()[:12]}..., "
                             f"expected {SHA256[name][:12]}...); file discarded")
    made = [p for p in (directory, *directory.parents) if not p.exists()]
    try:
        atomic_write(target, download, suffix=".part")
    except (urllib.error.URLError, OSError, ValueError, BenchError) as e:
        for folder in made:                     # a failed download leaves no empty folders behind
            try:
                folder.rmdir()
            except OSError:
                break
        why = e if isinstance(e, BenchError) else f"cannot download {url}: {getattr(e, 'reason', e)}"
        raise BenchError(f"{why}; or put {name}.pkl (SHA-256 {SHA256[name][:12]}...) in {directory} yourself, "
                         "or point --data-dir or BENCH_DATA_DIR at a folder that holds it") from None
    return target
