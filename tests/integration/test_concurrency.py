"""Two runs on one home, two writers on one table: never corrupted, never doubled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pipelines.errors import RunLockedError
from pipelines.runlock import run_lock

# The fast tier is the tests marked fast; the heavier ones here run in the full suite only.

HOLD = """
import sys, time
from pathlib import Path
from pipelines.runlock import run_lock
with run_lock(Path(sys.argv[1]), "holder-run"):
    print("held", flush=True)
    time.sleep(120)
"""


def _hold(state: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(state)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


@pytest.mark.fast
def test_a_second_run_on_the_same_home_is_refused_and_a_killed_run_leaves_no_lock(tmp_path: Path) -> None:
    state = tmp_path / "state"
    holder = _hold(state)
    try:
        with pytest.raises(RunLockedError, match="holder-run"), run_lock(state, "second"):
            pass
        started = time.monotonic()
        with pytest.raises(RunLockedError), run_lock(state, "patient", wait_seconds=1.5):
            pass
        assert time.monotonic() - started >= 1.4  # it waited before giving up
        # The command says so in one line and exits 5, before Spark starts.
        env = {**os.environ, "MEDALLION_HOME": str(tmp_path), "MEDALLION_ENGINE": "offline"}
        out = subprocess.run(
            [sys.executable, "-m", "pipelines.cli", "run", "--no-land"], capture_output=True, text=True, env=env,
            timeout=120,
        )  # fmt: skip
        assert out.returncode == 5 and "RunLockedError" in out.stderr and "holder-run" in out.stderr
        assert "starting Spark" not in out.stdout
    finally:
        holder.send_signal(signal.SIGKILL)  # like kill -9: no cleanup runs
        holder.wait()
    with run_lock(state, "after-the-crash"):  # the kernel released it with the dead process
        assert "after-the-crash" in (state / "run.lock").read_text()


@pytest.mark.fast
def test_a_waiting_run_goes_on_when_the_holder_ends(tmp_path: Path) -> None:
    state = tmp_path / "state"
    holder = _hold(state)
    try:
        killer = subprocess.Popen(["sh", "-c", f"sleep 1; kill {holder.pid}"])
        with run_lock(state, "queued", wait_seconds=60):
            assert "queued" in (state / "run.lock").read_text()
        killer.wait()
    finally:
        holder.kill()
        holder.wait()


def test_a_step_whose_commit_conflicts_with_another_writer_is_retried(lakehouse: Any, spark: Any) -> None:
    """Another writer deletes rows of silver.airlines while this run's MERGE into it runs (a UDF in the MERGE
    source fires the other writer's commit, through deltalake, as another process would): the MERGE cannot
    commit (ConcurrentCommitError), the runner does the step again, and the table ends right."""
    from deltalake import DeltaTable
    from pyspark.sql import functions as F

    from pipelines.landing import land_sample
    from pipelines.runner import run_pipeline

    lh = lakehouse
    land_sample(lh.settings, sources=["airlines"])
    run_pipeline(lh, ["bronze.airlines", "silver.airlines"], "r1")
    folder = lh.settings.landing_dir / "airlines"
    snapshot = next(folder.glob("*.csv"))
    snapshot.write_text(snapshot.read_text().replace("Endeavor Air Inc.", "Endeavor Air"))
    later = snapshot.stat().st_mtime + 60
    os.utime(snapshot, (later, later))
    path = lh.ref("silver.airlines").location
    marker = Path(path).parent / "other-writer-ran"
    real_merge = lh.store.merge
    attempts: list[int] = []

    @F.udf("boolean")
    def meanwhile(_value: Any) -> bool:
        if not marker.exists():
            marker.touch()
            DeltaTable(path).delete("carrier = 'VX'")
        return True

    def merge_with_a_rival(source: Any, table: Any, spec: Any, **kwargs: Any) -> Any:
        attempts.append(1)
        if len(attempts) == 1:
            source = source.where(meanwhile(F.col("carrier")))
        return real_merge(source, table, spec, **kwargs)

    lh.store.merge = merge_with_a_rival
    try:
        results = run_pipeline(lh, ["bronze.airlines", "silver.airlines"], "r2")
    finally:
        lh.store.merge = real_merge
    assert marker.exists() and len(attempts) == 2  # the conflict happened, and the step ran again
    names = {r["carrier"]: r["name"] for r in lh.read("silver.airlines").collect()}
    assert names["9E"] == "Endeavor Air" and "VX" in names  # the redo merged the delivery in full
    assert results[-1].status == "ok"
