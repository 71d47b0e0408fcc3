"""The staging folders of the offline engine's writes, and how maintenance tells live ones from dead ones.

A write's Spark job writes its files into ``_staging-<id>/`` inside the table (Delta readers and VACUUM skip
names starting with ``_``). Before that folder exists, the writing process creates ``_staging-<id>.lock``
beside it and holds an exclusive ``flock`` on it until the write is over. The operating system drops the lock
when the process ends, however it ends (``kill -9`` included), so:

- a staging folder whose lock is held belongs to a write in flight: maintenance never touches it;
- one whose lock file is there but not held belongs to a write that died: nothing the Delta log references is
  in it (files are moved out of it before the commit), so maintenance removes it, and its lock file;
- one without a lock file comes from an older version of this engine: removed once older than the
  retention, as before.

Where ``fcntl`` is missing (Windows), a lock file cannot be tested: its folder is then removed only once older
than the retention, like one without a lock file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from pipelines.lakehouse.offline.paths import STAGING_PREFIX

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_SUFFIX = ".lock"


@dataclass(frozen=True)
class StagingClaim:
    """A write's staging folder (not created yet: Spark creates it) and the lock held while the write runs."""

    folder: str
    lock: str
    fd: int


def claim_staging(root: str) -> StagingClaim:
    """A new staging folder name under the table folder ``root``, locked for this process."""
    os.makedirs(root, exist_ok=True)
    name = f"{STAGING_PREFIX}{uuid.uuid4().hex}"
    lock = os.path.join(root, name + LOCK_SUFFIX)
    fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a fresh file: nobody else holds it
    return StagingClaim(os.path.join(root, name), lock, fd)


def release_staging(claim: StagingClaim) -> None:
    """The write is over: its staging folder goes, then its lock file, then the lock."""
    shutil.rmtree(claim.folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.unlink(claim.lock)
    with contextlib.suppress(OSError):
        os.close(claim.fd)


def _dead(lock: Path) -> int | None:
    """An open, exclusively locked descriptor of ``lock`` when no live process holds it; None when one does
    (or the file is gone, or locks cannot be tested)."""
    if fcntl is None:
        return None
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def sweep_staging(root: str, retention_hours: float) -> list[str]:
    """Remove the staging folders (and lock files) of dead writes under ``root``; returns their names.
    Folders of writes in flight are never touched (see the module's docstring)."""
    base = Path(root)
    if not base.is_dir():
        return []
    cutoff = time.time() - retention_hours * 3600
    names = {p.name.removesuffix(LOCK_SUFFIX) for p in base.glob(f"{STAGING_PREFIX}*")}
    removed = []
    for name in sorted(names):
        folder, lock = base / name, base / (name + LOCK_SUFFIX)
        if lock.exists():
            fd = _dead(lock)
            if fd is None:
                if fcntl is not None or not _older(lock, cutoff):
                    continue  # a write in flight (or, without fcntl, maybe one)
                fd = -1
            try:
                shutil.rmtree(folder, ignore_errors=True)
                with contextlib.suppress(OSError):
                    lock.unlink()
            finally:
                if fd >= 0:
                    os.close(fd)
            removed.append(name)
        elif folder.is_dir() and _older(folder, cutoff):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(name)
    return removed


def _older(path: Path, cutoff: float) -> bool:
    try:
        return path.stat().st_mtime < cutoff
    except OSError:
        return False
