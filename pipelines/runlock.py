"""One pipeline run at a time per home: a lock file that the operating system releases when the process dies.

``medallion run`` and ``medallion backfill`` hold ``<paths.state>/run.lock`` (an ``flock``) while they run. A
second run on the same home waits for it (``--wait SECONDS``, default 0: it does not wait) and otherwise stops
at once with :class:`RunLockedError` naming the run that holds the lock. A killed run leaves no stale lock:
the kernel drops an ``flock`` with its process, so nothing needs cleaning up after a crash.

On Databricks the state folder is a Unity Catalog volume, where ``flock`` means nothing: there the bundle's
``max_concurrent_runs: 1`` keeps runs apart, and this lock is not taken.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from pipelines.errors import RunLockedError


def _holder(path: Path) -> str:
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return "another run"
    return f"run {data.get('run_id', '?')} (pid {data.get('pid', '?')}, since {data.get('since', '?')})"


@contextlib.contextmanager
def run_lock(state_dir: Path, run_id: str, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the home's run lock for the duration of the block."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "run.lock"
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the block
    deadline = time.monotonic() + max(wait_seconds, 0.0)
    try:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise RunLockedError(
                        f"{_holder(path)} is running on this home ({state_dir.parent}); wait for it to end, "
                        "or pass --wait SECONDS to queue behind it"
                    ) from None
                time.sleep(0.5)
        handle.seek(0)
        handle.truncate()
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        handle.write(json.dumps({"run_id": run_id, "pid": os.getpid(), "since": since}))
        handle.flush()
        yield
    finally:
        handle.close()  # releases the flock
