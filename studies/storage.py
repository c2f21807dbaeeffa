"""Where a study lives, and how a dead worker's trial is found and retried.

Two kinds of storage:
- an Optuna journal file (the default, in the study folder): one machine, any
  number of processes. Journal storages have no heartbeat in Optuna, so each
  worker holds an flock on its own lease file for as long as it lives; a
  RUNNING trial whose worker's lease is free belongs to a dead process.
- a database URL (postgresql://..., sqlite:///...): Optuna's RDBStorage with
  heartbeats, so workers on many machines can share one study and a trial
  whose heartbeat stops is failed after GRACE_SECONDS.
Either way the dead trial is failed and re-queued with the same parameters by
RetryHeartbeatStaleTrialCallback; its run resumes from its last checkpoint.
"""
from __future__ import annotations

import datetime
import fcntl
import json
import os
import sys
import uuid
import warnings
from pathlib import Path

import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from bench.atomic import atomic_write_bytes
from bench.errors import BenchError

HEARTBEAT_SECONDS = 10
GRACE_SECONDS = 40
MAX_RETRY = 3
UNCLAIMED_SECONDS = 120     # a RUNNING trial not yet claimed by a worker after this long is dead

warnings.filterwarnings("ignore", category=ExperimentalWarning)


def is_database(url: str) -> bool:
    return "://" in url


def database_url(url: str) -> str:
    """SQLAlchemy 2.1 reads postgresql:// as psycopg 3; use psycopg2 when only it is installed."""
    import importlib.util
    if url.startswith("postgresql://") and not importlib.util.find_spec("psycopg") \
            and importlib.util.find_spec("psycopg2"):
        return "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


def shown(url: str) -> str:
    """The storage as printed: a database password masked."""
    if not is_database(url):
        return url
    from sqlalchemy.engine import make_url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:               # not a URL SQLAlchemy can parse: print nothing of it
        return url.split("://")[0] + "://..."


def retry_callback() -> RetryHeartbeatStaleTrialCallback:
    return RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """A database URL, or the path of a journal file."""
    if is_database(url):
        try:
            return optuna.storages.RDBStorage(
                database_url(url), engine_kwargs={"pool_pre_ping": True}, heartbeat_interval=HEARTBEAT_SECONDS,
                grace_period=GRACE_SECONDS, heartbeat_stale_trial_callback=retry_callback())
        except Exception as e:          # sqlalchemy raises many kinds; the user needs one line
            raise BenchError(f"cannot open the study storage {shown(url)}: {str(e).splitlines()[0]}") from None
    path = Path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock, JournalStorage
    from optuna.storages.journal._file import get_lock_file
    if path.exists():
        with get_lock_file(JournalFileSymlinkLock(str(path))):      # the lock Optuna's own appends take
            repair_journal(path)
    return JournalStorage(JournalFileBackend(str(path)))


def check(url: str) -> None:
    """A storage the user named, checked before any other work: a database answers (and has the study
    tables, created if need be), a journal file's folder can be written."""
    if is_database(url):
        storage = open_storage(url)
        engine = getattr(storage, "engine", None)
        if engine is not None:
            engine.dispose()
        return
    from bench.cli.paths import output_dir

    path = Path(url)
    if path.is_dir():
        raise BenchError(f"--storage {url} is a folder; give a journal file (e.g. {path / 'journal.log'}) "
                         "or a database URL")
    output_dir(path.parent, "--storage")


def _record(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:                  # JSONDecodeError and UnicodeDecodeError
        return False


def _salvage(line: bytes) -> bytes | None:
    """The complete record at the end of a line whose start is a torn write (the journal lines
    Optuna appended onto a torn last line before this check existed), or None."""
    start = line.find(b'{"op_code"', 1)
    while start != -1:
        if _record(line[start:]):
            return line[start:]
        start = line.find(b'{"op_code"', start + 1)
    return None


def repair_journal(path: Path) -> int:
    """Drop torn writes from an Optuna journal file; returns the number of bytes dropped.

    A writer killed mid-append leaves a last line without its newline. Optuna's readers skip
    it, but the next append lands on the same line and from then on every read fails. A torn
    tail is the one operation no reader ever saw, so dropping it changes nothing a worker
    acted on; a line that joins a torn write to a whole record keeps the record. What is
    dropped is appended to `<journal>.torn` and said in one line on stderr.
    """
    data = path.read_bytes()
    kept, dropped = [], []
    for line in data.splitlines(keepends=True):
        if line.endswith(b"\n") and _record(line):
            kept.append(line)
            continue
        record = _salvage(line) if line.endswith(b"\n") else None
        dropped.append(line[:len(line) - len(record)] if record else line)
        if record:
            kept.append(record)
    if not dropped:
        return 0
    torn = b"".join(dropped)
    with open(path.with_name(path.name + ".torn"), "ab") as f:
        f.write(torn + (b"" if torn.endswith(b"\n") else b"\n"))
    atomic_write_bytes(path, b"".join(kept))
    print(f"warning: {path}: dropped {len(torn)} bytes of torn writes ({len(dropped)} line(s), kept in "
          f"{path.name}.torn); the study carries on", file=sys.stderr)
    return len(torn)


class Lease:
    """This worker's liveness, as an flock the kernel drops when the process dies."""

    def __init__(self, url: str):
        self.dir = None if is_database(url) else Path(url + ".workers")
        self.id = uuid.uuid4().hex[:12]
        self._fd = None

    def __enter__(self) -> "Lease":
        if self.dir:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.dir / f"{self.id}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)
            (self.dir / f"{self.id}.lock").unlink(missing_ok=True)

    def alive(self, worker: str) -> bool:
        path = self.dir / f"{worker}.lock"
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)        # closing drops the lock we may have taken
        path.unlink(missing_ok=True)
        return False


def _dead(t: FrozenTrial, lease: Lease) -> bool:
    worker = t.user_attrs.get("worker")
    if worker:
        return not lease.alive(worker)
    started = t.datetime_start or datetime.datetime.now()
    return (datetime.datetime.now() - started).total_seconds() > UNCLAIMED_SECONDS


def retry(study: optuna.Study, t: FrozenTrial) -> None:
    """Fail `t` (if still unfinished) and queue it again with the same parameters."""
    if not t.state.is_finished():
        try:
            # the storage call Optuna's own fail_stale_trials makes; study.tell would run the
            # sampler's after_trial (GridSampler may call study.stop() outside optimize)
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            return                          # another worker got there first
    retry_callback()(study, t)


def recover(study: optuna.Study, lease: Lease) -> None:
    """Retry the trials of dead workers: heartbeats for databases, leases for journal files."""
    if lease.dir is None:
        optuna.storages.fail_stale_trials(study)
        return
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if _dead(t, lease):
            retry(study, t)


def retry_interrupted(study: optuna.Study) -> None:
    """Trials stopped by Ctrl-C are FAIL in Optuna; queue each one again, once."""
    trials = study.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    for t in trials:
        if t.state == TrialState.FAIL and t.user_attrs.get("interrupted") and t.number not in retried:
            retry(study, t)
