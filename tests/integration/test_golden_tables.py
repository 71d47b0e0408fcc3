"""The offline engine reads tables written by real delta-spark exactly, or refuses them; never reads them wrong.

The tables (``tests/fixtures/delta/tables``) were written by delta-spark 4.4 with
``tests/fixtures/make_delta_fixtures.py``: checkpoints, deletes, MERGE with every clause, overwrite + RESTORE,
updates, partition values with ``/``, spaces, ``:``, ``%``, non-ASCII, empty and NULL, partitions of every
type, every primitive type, nested types, VACUUM, partition changes; and the features a plain parquet read
gets wrong or deltalake refuses (deletion vectors, column mapping, type widening, v2 checkpoints).

Oracle: delta-spark's own rows for every version (``expected/<table>/v<N>.parquet``, from the same script),
and deltalake (delta-rs) reading the same copy where it can.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipelines.errors import UnsupportedTableFeatureError
from pipelines.lakehouse import TableRef

pytestmark = pytest.mark.fast

MANIFEST = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "delta" / "fixtures.json").read_text()
)
TABLES = MANIFEST["tables"]
READABLE = sorted(name for name, info in TABLES.items() if not info["refused"])
REFUSED = sorted(name for name, info in TABLES.items() if info["refused"])


def test_the_manifest_lists_every_fixture_table(golden_root):
    """A missing or new folder fails here instead of silently shrinking the parametrisation."""
    present = sorted(p.name for p in (golden_root / "tables").iterdir() if p.is_dir())
    assert present == sorted(TABLES)
    assert {"deletionVectors", "columnMapping", "typeWidening", "v2Checkpoint"} <= {
        info["refused"] for info in TABLES.values()
    }
    assert len(READABLE) >= 10


@pytest.fixture
def store(spark, settings):
    from pipelines.lakehouse.offline import OfflineDeltaStore

    return OfflineDeltaStore(spark, settings.storage.offline)


def expected_rows(golden_root: Path, name: str, version: int, rows_of: Any) -> Any:
    import pyarrow.parquet as pq

    entry = TABLES[name]["versions"][str(version)]
    return None if entry is None else rows_of(pq.read_table(golden_root / entry))


def deltalake_rows(path: Path, version: int, rows_of: Any) -> Any:
    from deltalake import DeltaTable

    try:
        return rows_of(DeltaTable(str(path), version=version).to_pyarrow_table())
    except (
        Exception
    ) as exc:  # the second oracle cannot read this version (vacuumed files, a decimal partition)
        return exc


@pytest.mark.parametrize("name", READABLE)
def test_every_version_reads_like_delta_spark(name, store, golden_root, golden_table, rows_of):
    path = golden_table(name)
    table = TableRef(f"golden.{name}", "path", str(path))
    latest = TABLES[name]["latest"]
    assert store.version(table) == latest
    compared = 0
    for version in range(latest + 1):
        want = expected_rows(golden_root, name, version, rows_of)
        if want is None:
            # delta-spark could not read it (files removed by VACUUM): never return a partial table.
            with pytest.raises(Exception):  # noqa: B017 - Spark's missing-file error is not ours to type
                store.read(table, version=version).toArrow()
            continue
        try:
            got = rows_of(store.read(table, version=version).toArrow())
        except UnsupportedTableFeatureError:
            pytest.fail(
                f"{name} v{version}: refused, though delta-spark reads it and it uses no unsafe feature"
            )
        assert got[0] == want[0], f"{name} v{version}: columns"
        assert got[1] == want[1], f"{name} v{version}: rows"
        oracle = deltalake_rows(path, version, rows_of)
        if not isinstance(oracle, Exception):
            assert oracle == want, f"{name} v{version}: deltalake disagrees with delta-spark"
        compared += 1
    assert rows_of(store.read(table).toArrow()) == expected_rows(golden_root, name, latest, rows_of)
    assert compared >= 1


def test_partition_values_with_special_characters_are_the_logs(store, golden_table, rows_of):
    """Spelled out, so that an expectation file that lost them would not hide a wrong read."""
    table = TableRef("golden.special", "path", str(golden_table("partition-values-special")))
    got = {r["id"]: r["p"] for r in store.read(table).collect()}
    assert got[0] == "a/b" and got[1] == "with space" and got[2] == "c:d" and got[3] == "100%"
    assert got[4] == "x=y" and got[5] == "#?&" and got[6] == "ünïcödé"
    assert got[7] is None and got[8] is None  # delta-spark stores an empty partition string as NULL
    assert got[100] == "a/b" and got[101] is None


@pytest.mark.parametrize("name", REFUSED)
def test_tables_with_unsafe_features_are_refused(name, store, golden_table):
    path = golden_table(name)
    table = TableRef(f"golden.{name}", "path", str(path))
    latest = TABLES[name]["latest"]
    with pytest.raises(UnsupportedTableFeatureError):
        store.read(table).toArrow()
    with pytest.raises(UnsupportedTableFeatureError):
        store.read(table, version=latest).toArrow()
    with pytest.raises(UnsupportedTableFeatureError):
        store.delete(table, "true")


def test_writing_into_tables_delta_spark_wrote(spark, store, golden_table, rows_of):
    """Append and replace_where on delta-spark tables (one with checkpoints, one partitioned): deltalake agrees."""
    from deltalake import DeltaTable

    path = golden_table("checkpointed-deletes")
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

    path = golden_table("partition-change")
    table = TableRef("golden.partitioned", "path", str(path))
    before = rows_of(DeltaTable(str(path)).to_pyarrow_table())[1]
    store.write(spark.createDataFrame([(100, 7)], "id long, b long"), table, "append")
    store.write(
        spark.createDataFrame([(101, 0)], "id long, b long"),
        table,
        "overwrite",
        replace_where="b = 0",
    )
    want = sorted([r for r in before if r[1] != 0] + [(100, 7), (101, 0)], key=repr)
    assert rows_of(DeltaTable(str(path)).to_pyarrow_table()) == (["id", "b"], want)
    assert rows_of(store.read(table).toArrow()) == (["id", "b"], want)
