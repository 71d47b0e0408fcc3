"""One behaviour, whichever Delta engine is behind the storage interface.

Every case runs against the offline engine (Spark parquet + deltalake commit) and the native engine
(delta-spark). The native engine needs the Delta jars, which machines without Maven access do not have: there,
and only there, its cases are skipped with the reason.
"""

from __future__ import annotations

from typing import Any

import pytest

from pipelines.errors import WriteConflictError
from pipelines.lakehouse import MergeSpec, TableRef

pytestmark = pytest.mark.fast

DDL = "id long, name string, amount double, part string"
FIRST = [(1, "a", 1.0, "x"), (2, "b", 2.0, "x"), (3, "c", 3.0, "y")]
NO_JARS = (
    "native engine: no Delta jars on this machine (delta-spark_2.13 + delta-storage in a folder named by "
    "MEDALLION_DELTA_JARS or storage.delta_jars, ~/.m2 or the ivy cache); the offline cases still ran"
)


@pytest.fixture(params=["offline", pytest.param("native", marks=pytest.mark.native)])
def store(request, spark, settings):
    if request.param == "offline":
        from pipelines.lakehouse.offline import OfflineDeltaStore

        return OfflineDeltaStore(spark, settings.storage.offline)
    from pipelines.session import find_delta_jars, get_session

    if not find_delta_jars(settings):
        pytest.skip(NO_JARS)
    _session, info = get_session(settings)
    if info.engine != "native":
        pytest.fail(
            f"Delta jars were found but the test session runs the {info.engine} engine ({info.reason})"
        )
    from pipelines.lakehouse.native import NativeDeltaStore

    return NativeDeltaStore(spark)


@pytest.fixture
def table(tmp_path):
    return TableRef("silver.conformance", "path", str(tmp_path / "silver" / "conformance"))


def rows(store, table, version: int | None = None) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in store.read(table, version).collect())


def frame(spark, data):
    return spark.createDataFrame(data, DDL)


def test_create_append_read(spark, store, table):
    assert not store.exists(table)
    assert store.version(table) is None
    created = store.write(frame(spark, FIRST), table, partition_by=["part"])
    assert created.version == 0
    assert store.exists(table)
    appended = store.write(frame(spark, [(4, "d", 4.0, "z")]), table, "append")
    assert appended.version == 1
    assert store.version(table) == 1
    assert rows(store, table) == sorted([*FIRST, (4, "d", 4.0, "z")])
    assert store.read(table).columns == ["id", "name", "amount", "part"]


def test_overwrite(spark, store, table):
    store.write(frame(spark, FIRST), table, partition_by=["part"])
    result = store.write(frame(spark, [(9, "i", 9.0, "y")]), table, "overwrite")
    assert result.version == 1
    assert rows(store, table) == [(9, "i", 9.0, "y")]


def test_replace_where(spark, store, table):
    store.write(frame(spark, FIRST), table, partition_by=["part"])
    store.write(frame(spark, [(5, "e", 5.0, "x")]), table, "overwrite", replace_where="part = 'x'")
    assert rows(store, table) == [(3, "c", 3.0, "y"), (5, "e", 5.0, "x")]
    # On a data column: rows of the same files outside the predicate survive.
    store.write(frame(spark, [(30, "cc", 30.0, "y")]), table, "overwrite", replace_where="amount >= 3")
    assert rows(store, table) == [(30, "cc", 30.0, "y")]
    assert store.version(table) == 2
    with pytest.raises(WriteConflictError):
        store.write(frame(spark, [(6, "f", 6.0, "y")]), table, "overwrite", replace_where="part = 'x'")
    assert store.version(table) == 2


def test_merge_upsert(spark, store, table):
    store.write(frame(spark, FIRST), table, partition_by=["part"])
    source = frame(
        spark, [(2, "b2", 20.0, "x"), (3, "c2", 30.0, "z"), (7, "g", 7.0, "y"), (8, "h", None, None)]
    )
    result = store.merge(source, table, MergeSpec(keys=["id"]))
    assert result.version == 1
    assert (result.rows_updated, result.rows_written, result.rows_deleted) == (2, 2, 0)
    want = [
        (1, "a", 1.0, "x"),
        (2, "b2", 20.0, "x"),
        (3, "c2", 30.0, "z"),
        (7, "g", 7.0, "y"),
        (8, "h", None, None),
    ]
    assert sorted(rows(store, table), key=repr) == sorted(want, key=repr)
    # Conditional update: only rows whose condition holds change; insert off.
    source = frame(spark, [(1, "a3", 1.0, "x"), (2, "b3", 99.0, "x"), (9, "new", 9.0, "x")])
    spec = MergeSpec(keys=["id"], update_condition="s.amount <> t.amount", insert=False)
    result = store.merge(source, table, spec)
    assert (result.rows_updated, result.rows_written) == (1, 0)
    assert dict((r[0], r[1]) for r in rows(store, table)) == {1: "a", 2: "b3", 3: "c2", 7: "g", 8: "h"}


def test_delete(spark, store, table):
    store.write(frame(spark, FIRST), table, partition_by=["part"])
    result = store.delete(table, "amount > 1.5 AND part = 'x'")
    assert result.version == 1
    assert result.rows_deleted == 1
    assert rows(store, table) == [(1, "a", 1.0, "x"), (3, "c", 3.0, "y")]


def test_history_and_time_travel(spark, store, table):
    snapshots = {}
    store.write(frame(spark, FIRST), table, partition_by=["part"])
    snapshots[0] = rows(store, table)
    store.write(frame(spark, [(4, "d", 4.0, "z")]), table, "append")
    snapshots[1] = rows(store, table)
    store.merge(frame(spark, [(1, "a2", 10.0, "x")]), table, MergeSpec(keys=["id"]))
    snapshots[2] = rows(store, table)
    store.delete(table, "id = 2")
    snapshots[3] = rows(store, table)
    store.write(frame(spark, [(5, "e", 5.0, "y")]), table, "overwrite")
    snapshots[4] = rows(store, table)
    assert len({tuple(v) for v in snapshots.values()}) == 5  # every commit changed the table

    history = store.history(table)
    assert [h["version"] for h in history] == [4, 3, 2, 1, 0]
    assert all(isinstance(h["timestamp"], int) and isinstance(h["operation"], str) for h in history)
    assert history[2]["operation"] == "MERGE" and history[1]["operation"] == "DELETE"
    assert [h["version"] for h in store.history(table, limit=2)] == [4, 3]
    for version, want in snapshots.items():
        assert rows(store, table, version) == want, f"version {version}"
