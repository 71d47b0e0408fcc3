"""Named crash points, for the crash trials (``tests/e2e/crash_trials.py``): nothing happens unless asked.

``MEDALLION_CRASH_AT=<point>[@<n>]`` makes the process kill itself with SIGKILL (no cleanup, no ``finally``,
exactly like ``kill -9`` or a machine losing power) the n-th time (default: the first) it reaches ``<point>``.
``MEDALLION_CRASH_SIGNAL=TERM`` sends SIGTERM instead (a scheduler cancelling the run: cleanup runs).
The points sit between the commits of a step, where a crash is hardest on the data:

- ``write.staged``        offline engine: Spark wrote the data files, nothing moved into the table yet
- ``write.moved``         offline engine: the files are in the table folder, not committed
- ``bronze.committed``    bronze committed a batch; its manifest rows are not written
- ``table.committed``     a table's commit is done; its quarantine rows and DQ results are not
- ``quarantine.committed`` the quarantine rows are committed; the DQ results are not
- ``merge.started``       a MERGE is about to commit
- ``maintain.optimized``  OPTIMIZE committed, VACUUM not run
"""

from __future__ import annotations

import os
import signal
from collections import Counter

POINTS = (
    "write.staged",
    "write.moved",
    "bronze.committed",
    "table.committed",
    "quarantine.committed",
    "merge.started",
    "maintain.optimized",
)
_seen: Counter[str] = Counter()


def crash_point(name: str) -> None:
    """Die here if ``MEDALLION_CRASH_AT`` names this point (and this is the n-th time it is reached)."""
    wanted = os.environ.get("MEDALLION_CRASH_AT")
    if not wanted:
        return
    point, _, nth = wanted.partition("@")
    if point != name:
        return
    _seen[name] += 1
    if _seen[name] == int(nth or 1):
        how = os.environ.get("MEDALLION_CRASH_SIGNAL", "KILL").upper()
        os.kill(os.getpid(), signal.SIGTERM if how == "TERM" else signal.SIGKILL)
