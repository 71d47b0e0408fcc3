"""`medallion maintain` never deletes what a reader or a writer still needs: VACUUM keeps the table's retention,
and the offline engine's staging folders of writes in flight survive it (those of dead writes do not)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pipelines.errors import RetentionError, StorageError
from pipelines.lakehouse import TableRef
from pipelines.lakehouse.base import RETENTION_PROPERTY, interval_hours, table_retention_hours

DDL = "id long, name string"
NAME = "silver.people"


@pytest.mark.fast
@pytest.mark.parametrize(
    ("text", "hours"),
    [
        ("interval 7 days", 168),
        ("INTERVAL 168 HOURS", 168),
        ("1 week", 168),
        ("interval 1 day 12 hours", 36),
        ("interval 30 minutes", 0.5),
        ("interval 0 hours", 0),
        ("interval 1 month", None),
        ("seven days", None),
        ("interval 7", None),
        ("", None),
    ],
)
def test_retention_intervals(text: str, hours: float | None) -> None:
    assert interval_hours(text) == hours
    ref = TableRef(NAME, "path", "/nowhere")
    if hours is None:
        with pytest.raises(StorageError):  # VACUUM cannot know what to keep: it does not run
            table_retention_hours(ref, {RETENTION_PROPERTY: text})
    else:
        assert table_retention_hours(ref, {RETENTION_PROPERTY: text}) == hours
    assert table_retention_hours(ref, {}) == 168


@pytest.fixture
def people(spark: Any, lakehouse: Any) -> str:
    lakehouse.write(spark.createDataFrame([(1, "a")], DDL), NAME)
    lakehouse.write(spark.createDataFrame([(2, "b")], DDL), NAME, "overwrite")
    return NAME


def _files(lakehouse: Any, name: str) -> set[str]:
    root = Path(lakehouse.ref(name).location)
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.mark.native
def test_maintain_refuses_a_retention_below_the_tables_before_touching_any(
    lakehouse: Any, spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """The real command line, in this process: on the session's engine (native where the jars are, as a
    user's `medallion maintain` runs), on tables the offline engine wrote."""
    from pipelines.cli import run_cli

    monkeypatch.setenv("MEDALLION_HOME", str(tmp_path))  # the lakehouse fixture's home
    small, people = (
        "gold.route_daily_stats",
        "gold.carrier_monthly_performance",
    )  # declared: the CLI knows them
    lakehouse.write(spark.createDataFrame([(1, "a")], DDL), people)
    for i in (1, 2):  # two files: OPTIMIZE would compact them in a new commit
        lakehouse.write(spark.createDataFrame([(i, "c")], DDL).coalesce(1), small, "append")
    lakehouse.set_properties(small, {RETENTION_PROPERTY: "interval 1 hours"})
    before = {n: (_files(lakehouse, n), lakehouse.version(n)) for n in (small, people)}
    # 1 h is enough for the first table (its retention is 1 h), not for the second (168 h): nothing runs.
    assert run_cli(["maintain", "--retention-hours", "1", "--table", small, "--table", people]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: RetentionError:"), err
    assert {n: (_files(lakehouse, n), lakehouse.version(n)) for n in before} == before
    assert run_cli(["maintain", "--retention-hours", "-1"]) == 2
    # At the table's retention it runs.
    assert run_cli(["maintain", "--retention-hours", "1", "--table", small]) == 0
    assert lakehouse.version(small) == before[small][1] + 1  # compacted
    assert sorted(tuple(r) for r in lakehouse.read(small).collect()) == [(1, "c"), (2, "c")]


@pytest.mark.fast
def test_a_write_in_flight_keeps_its_staging_folder_through_vacuum(
    spark: Any, lakehouse: Any, people: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = Path(lakehouse.ref(people).location)
    write_files = lakehouse.store._write_files
    seen: dict[str, Any] = {}

    def maintain_meanwhile(df: Any, staging: str, *args: Any, **kwargs: Any) -> Any:
        adds = write_files(df, staging, *args, **kwargs)  # files written and moved, not committed yet
        seen["removed"] = lakehouse.vacuum(people)
        seen["staging_kept"] = Path(staging).is_dir()
        return adds

    monkeypatch.setattr(lakehouse.store, "_write_files", maintain_meanwhile)
    lakehouse.write(spark.createDataFrame([(4, "d")], DDL), people, "append")
    monkeypatch.undo()
    assert seen == {"removed": [], "staging_kept": True}
    assert sorted(tuple(r) for r in lakehouse.read(people).collect()) == [(2, "b"), (4, "d")]
    assert not list(root.glob("_staging-*"))  # the write cleaned up after itself, lock file included


@pytest.mark.fast
def test_staging_of_a_killed_writer_is_removed_and_a_live_ones_is_not(lakehouse: Any, people: str) -> None:
    root = lakehouse.ref(people).location
    holder = (
        "import os, sys, time\n"
        "from pipelines.lakehouse.offline.staging import claim_staging\n"
        "claim = claim_staging(sys.argv[1])\n"
        "os.makedirs(claim.folder)\n"
        "open(os.path.join(claim.folder, 'part-0.parquet'), 'w').write('half written')\n"
        "print(claim.folder, flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", holder, root], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        folder = Path(proc.stdout.readline().strip())
        assert folder.is_dir()
        assert lakehouse.vacuum(people) == [] and folder.is_dir()  # a write in flight: untouched
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert lakehouse.vacuum(people) == [folder.name]  # dead: nothing in it is referenced
    assert not folder.exists() and not list(Path(root).glob("_staging-*"))
    assert sorted(tuple(r) for r in lakehouse.read(people).collect()) == [(2, "b")]


@pytest.mark.fast
def test_staging_without_a_lock_is_removed_only_after_the_retention(lakehouse: Any, people: str) -> None:
    """A folder from before staging folders were locked: age is all there is to go by."""
    root = Path(lakehouse.ref(people).location)
    old, new = root / "_staging-old", root / "_staging-new"
    for folder in (old, new):
        folder.mkdir()
        (folder / "part-0.parquet").write_text("x")
    week_ago = time.time() - 169 * 3600
    os.utime(old, (week_ago, week_ago))
    assert lakehouse.vacuum(people) == ["_staging-old"]
    assert new.is_dir() and not old.exists()


@pytest.mark.fast
def test_store_vacuum_below_retention_is_refused_and_deletes_nothing(lakehouse: Any, people: str) -> None:
    on_disk = _files(lakehouse, people)
    for hours in (0, 1, 167):
        with pytest.raises(RetentionError):
            lakehouse.vacuum(people, hours)
    assert _files(lakehouse, people) == on_disk
