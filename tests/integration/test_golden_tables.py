"""The offline engine reads tables written by real delta-spark (the Delta project's golden tables) exactly.

Oracle: deltalake (delta-rs) reading the same copy. Every version of every table is compared, so checkpoints,
removes, merges, overwrite + restore and partition changes are all exercised through time travel. Tables that
use features a plain parquet read gets wrong must be refused with UnsupportedTableFeatureError.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipelines.errors import UnsupportedTableFeatureError
from pipelines.lakehouse import TableRef

pytestmark = pytest.mark.fast

READABLE = [
    "basic-with-inserts-deletes-checkpoint",
    "basic-with-inserts-merge",
    "basic-with-inserts-overwrite-restore",
    "basic-with-inserts-updates",
    "data-reader-escaped-chars",
    "data-reader-nested-struct",
    "data-reader-partition-values",
    "data-reader-primitives",
    "snapshot-vacuumed",
    "time-travel-partition-changes-b",
]
# Features whose parquet files a plain read gets wrong: the engine must refuse them, never read them wrong.
REFUSED = [
    "dv-partitioned-with-checkpoint",  # deletion vectors
    "table-with-columnmapping-mode-name",  # column mapping (physical column names in the files)
]


def test_the_list_of_golden_tables_matches_the_folder(golden_root):
    """A missing or new folder fails here instead of silently shrinking the parametrisation."""
    present = sorted(p.name for p in golden_root.iterdir() if p.is_dir())
    assert present == sorted(READABLE + REFUSED)


@pytest.fixture
def store(spark, settings):
    from pipelines.lakehouse.offline import OfflineDeltaStore

    return OfflineDeltaStore(spark, settings.storage.offline)


def deltalake_version_rows(path: Path, version: int, rows_of: Any) -> Any:
    """deltalake's rows at ``version``, or the exception it raises (e.g. files removed by VACUUM)."""
    from deltalake import DeltaTable

    try:
        return rows_of(DeltaTable(str(path), version=version).to_pyarrow_table())
    except Exception as exc:  # the oracle cannot read this version either
        return exc


@pytest.mark.parametrize("name", READABLE)
def test_every_version_reads_like_deltalake(name, store, golden_table, rows_of):
    from deltalake import DeltaTable

    path = golden_table(name)
    table = TableRef(f"golden.{name}", "path", str(path))
    latest = DeltaTable(str(path)).version()
    assert store.version(table) == latest
    compared = 0
    for version in range(latest + 1):
        want = deltalake_version_rows(path, version, rows_of)
        if isinstance(want, Exception):
            # Never return a partial table for a version whose files are gone.
            with pytest.raises(Exception):  # noqa: B017 - Spark's missing-file error is not ours to type
                store.read(table, version=version).toArrow()
            continue
        got = rows_of(store.read(table, version=version).toArrow())
        assert got[0] == want[0], f"{name} v{version}: columns"
        assert got[1] == want[1], f"{name} v{version}: rows"
        compared += 1
    # The latest version is always readable, and with no version given the engine reads it.
    assert rows_of(store.read(table).toArrow()) == rows_of(DeltaTable(str(path)).to_pyarrow_table())
    assert compared >= 1


@pytest.mark.parametrize("name", REFUSED)
def test_tables_with_unsafe_features_are_refused(name, store, golden_table):
    path = golden_table(name)
    table = TableRef(f"golden.{name}", "path", str(path))
    with pytest.raises(UnsupportedTableFeatureError):
        store.read(table)
    with pytest.raises(UnsupportedTableFeatureError):
        store.read(table, version=0)
    with pytest.raises(UnsupportedTableFeatureError):
        store.delete(table, "true")


def test_writing_into_tables_delta_spark_wrote(spark, store, golden_table, rows_of):
    """Append and replace_where on delta-spark tables (one with a checkpoint, one partitioned): deltalake agrees."""
    from deltalake import DeltaTable

    path = golden_table("basic-with-inserts-deletes-checkpoint")
    table = TableRef("golden.checkpointed", "path", str(path))
    before = rows_of(DeltaTable(str(path)).to_pyarrow_table())[1]
    version = store.version(table)
    assert version is not None
    store.write(spark.createDataFrame([(1000,), (1001,)], "id long"), table, "append")
    store.write(
        spark.createDataFrame([(1001,), (1002,)], "id long"), table, "overwrite", replace_where="id >= 1001"
    )
    want = sorted([r for r in before if r[0] < 1001] + [(1000,), (1001,), (1002,)], key=repr)
    assert store.version(table) == version + 2
    assert rows_of(DeltaTable(str(path)).to_pyarrow_table()) == (["id"], want)
    assert rows_of(store.read(table).toArrow()) == (["id"], want)

    path = golden_table("time-travel-partition-changes-b")
    table = TableRef("golden.partitioned", "path", str(path))
    before = rows_of(DeltaTable(str(path)).to_pyarrow_table())[1]
    store.write(spark.createDataFrame([(100, 7)], "id long, part2 long"), table, "append")
    store.write(
        spark.createDataFrame([(101, 0)], "id long, part2 long"),
        table,
        "overwrite",
        replace_where="part2 = 0",
    )
    want = sorted([r for r in before if r[1] != 0] + [(100, 7), (101, 0)], key=repr)
    assert rows_of(DeltaTable(str(path)).to_pyarrow_table()) == (["id", "part2"], want)
    assert rows_of(store.read(table).toArrow()) == (["id", "part2"], want)
