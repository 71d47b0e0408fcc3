"""Small (system) tables on the driver, and a Lakehouse that starts Spark only when something needs it.

``read_rows`` and ``append_rows`` go through deltalake (no Spark job) for local path tables the offline
engine's feature gates accept, on both engines, and through Spark otherwise: a table with deletion vectors
is read by delta-spark (a plain parquet read would return deleted rows) or refused by the offline engine.
A lazily opened Lakehouse answers the log questions a run with nothing to do asks without a session.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from pipelines.errors import UnsupportedTableFeatureError
from pipelines.lakehouse import Lakehouse, TableRef, make_store

DDL = "name string, n long, at timestamp"
FIRST = [("a", 1, dt.datetime(2026, 1, 1, 12, 0, 0))]
ADDED = [("b", 2, dt.datetime(2026, 1, 2, 8, 30, tzinfo=dt.UTC)), (None, None, None)]


@pytest.fixture(
    params=[pytest.param("offline", marks=pytest.mark.fast), pytest.param("native", marks=pytest.mark.native)]
)
def engine(request: Any) -> str:
    return str(request.param)


@pytest.fixture
def store(engine: str, spark: Any, settings: Any, native_store_factory: Any) -> Any:
    if engine == "offline":
        from pipelines.lakehouse.offline import OfflineDeltaStore

        return OfflineDeltaStore(spark, settings.storage.offline)
    return native_store_factory()


def _table(tmp_path: Path) -> TableRef:
    return TableRef("gold.small", "path", str(tmp_path / "gold" / "small"))


def test_append_rows_commits_with_deltalake_and_the_engine_reads_every_row(
    store: Any, spark: Any, tmp_path: Path
) -> None:
    table = _table(tmp_path)
    store.write(spark.createDataFrame(FIRST, DDL), table, "append")
    store.append_rows(table, ADDED, DDL, {"medallion.run_id": "r-2"})

    newest = store.history(table, limit=1)[0]
    assert newest["version"] == 1
    assert str(newest["engineInfo"]).startswith("delta-rs"), newest["engineInfo"]
    assert newest["custom"]["medallion.run_id"] == "r-2"
    # The engine's own (Spark) read: the appended timestamp is the same instant, NULLs stay NULL.
    got = sorted(((r["name"], r["n"], r["at"]) for r in store.read(table).collect()), key=lambda r: str(r[0]))
    assert got == [
        (None, None, None),  # sorted by str(name): "None" < "a"
        ("a", 1, dt.datetime(2026, 1, 1, 12, 0, 0)),
        ("b", 2, dt.datetime(2026, 1, 2, 8, 30)),  # the session's time zone is UTC
    ]
    assert sorted(store.read_rows(table, ("name", "n")), key=str) == sorted(
        [("a", 1), ("b", 2), (None, None)], key=str
    )
    assert store.read_rows(table, ("n",), version=0) == [(1,)]


def test_a_table_with_deletion_vectors_is_never_read_from_its_files_alone(
    store: Any, engine: str, golden_table: Any
) -> None:
    table = TableRef("golden.deletion_vectors", "path", str(golden_table("deletion-vectors")))
    if engine == "offline":
        with pytest.raises(UnsupportedTableFeatureError, match="deletion vectors"):
            store.read_rows(table, ("id",))
        with pytest.raises(UnsupportedTableFeatureError):
            store.append_rows(table, [(100, 0)], "id long, p long")
        return
    # delta-spark reads it (ids 1, 2, 3 were deleted through deletion vectors) and appends to it.
    assert sorted(r[0] for r in store.read_rows(table, ("id",))) == [0, *range(4, 20)]
    before = store.version(table)
    store.append_rows(table, [(100, 0)], "id long, p long")
    newest = store.history(table, limit=1)[0]
    assert newest["version"] == before + 1
    assert not str(newest["engineInfo"]).startswith("delta-rs")
    assert sorted(r[0] for r in store.read_rows(table, ("id",))) == [0, *range(4, 20), 100]


def test_a_lazy_lakehouse_starts_spark_only_when_rows_are_computed(
    engine: str, store: Any, spark: Any, settings: Any, tmp_path: Path
) -> None:
    import dataclasses

    local = dataclasses.replace(
        settings, paths=dataclasses.replace(settings.paths, lakehouse=str(tmp_path / "lakehouse"))
    )
    eager = Lakehouse(local, store)
    eager.write(spark.createDataFrame(FIRST, DDL), "gold.small", "append", commit_info={"k": "v"})

    started: list[int] = []

    def start() -> Any:
        started.append(1)
        return spark

    lazy = Lakehouse(local, make_store(None, engine, local, start))
    assert not lazy.spark_started
    # What a run with nothing to do asks: all from the log and deltalake.
    assert lazy.exists("gold.small") and lazy.version("gold.small") == 0
    assert lazy.history("gold.small")[0]["custom"]["k"] == "v"
    assert [f.name for f in lazy.schema("gold.small").fields] == ["name", "n", "at"]
    assert lazy.read_rows("gold.small", ("name",)) == [("a",)]
    lazy.append_rows("gold.small", [("c", 3, None)], DDL)
    assert lazy.version("gold.small") == 1
    assert started == [] and not lazy.spark_started
    # Computing rows needs the session: started once, then kept.
    assert lazy.read("gold.small").count() == 2
    assert lazy.read("gold.small").count() == 2
    assert started == [1] and lazy.spark_started


@pytest.mark.fast
def test_a_store_needs_a_session_or_a_way_to_start_one() -> None:
    from pipelines.lakehouse.offline import OfflineDeltaStore

    with pytest.raises(ValueError, match="SparkSession"):
        OfflineDeltaStore()


def test_rows_that_need_the_engines_checks_are_written_by_spark(
    store: Any, engine: str, spark: Any, tmp_path: Path
) -> None:
    """A NULL for a NOT NULL column, or rows in another column order, are not written by deltalake: the
    engine's own write refuses or fits them as it does for every write."""
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    table = _table(tmp_path)
    schema = StructType([StructField("name", StringType(), False), StructField("n", LongType(), True)])
    store.create(table, schema)
    with pytest.raises(Exception, match="(?i)null") as refused:
        store.append_rows(table, [(None, 1)], "name string, n long")
    assert "Traceback" not in str(refused.value)
    assert store.version(table) == 0
    # Same columns, other order: written by name through Spark, not by position.
    store.append_rows(table, [(7, "x")], "n long, name string")
    assert store.read_rows(table, ("name", "n")) == [("x", 7)]
    if engine == "native":  # (the offline engine's Spark writes are committed by deltalake too)
        assert not str(store.history(table, limit=1)[0]["engineInfo"]).startswith("delta-rs")


@pytest.mark.native
def test_checkpoints_deltalake_writes_into_a_delta_spark_table_are_read_by_delta_spark(
    native_store_factory: Any, spark: Any, tmp_path: Path
) -> None:
    """deltalake checkpoints a table at its checkpoint interval after its own commits: delta-spark, which made
    the table, reads the table through that checkpoint (and deltalake through delta-spark's)."""
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    store = native_store_factory()
    table = _table(tmp_path)
    schema = StructType([StructField("name", StringType()), StructField("n", LongType())])
    store.create(table, schema, properties={"delta.checkpointInterval": "2"})
    for i in range(5):
        store.append_rows(table, [(f"r{i}", i)], "name string, n long")
    log = Path(table.location) / "_delta_log"
    checkpoints = sorted(p.name for p in log.glob("*.checkpoint*.parquet"))
    assert checkpoints, sorted(p.name for p in log.iterdir())
    assert store.version(table) == 5
    # A fresh delta-spark snapshot (a new path string: no cached log) starts from the newest checkpoint.
    again = TableRef(table.name, "path", table.location + "/")
    assert sorted(tuple(r) for r in store.read(again).collect()) == [(f"r{i}", i) for i in range(5)]
    assert sorted(store.read_rows(table, ("n",))) == [(i,) for i in range(5)]


def test_append_rows_returns_the_version_it_committed_after_another_writers_commit(
    store: Any, spark: Any, tmp_path: Path
) -> None:
    from deltalake import DeltaTable, write_deltalake

    table = _table(tmp_path)
    store.write(spark.createDataFrame(FIRST, DDL), table, "append")
    assert store.append_rows(table, [("b", 2, None)], DDL) == 1
    other = DeltaTable(table.location)  # another writer commits version 2 in between
    write_deltalake(other, other.to_pyarrow_table().slice(0, 1), mode="append")
    assert store.append_rows(table, [("c", 3, None)], DDL) == 3
    assert store.version(table) == 3
    # Spark's write (rows in another column order) returns its version too.
    assert store.append_rows(table, [(4, "d", None)], "n long, name string, at timestamp") == 4


def test_read_rows_where_returns_only_matching_rows_on_both_paths(
    store: Any, engine: str, spark: Any, tmp_path: Path, golden_table: Any
) -> None:
    table = _table(tmp_path)
    rows = [("a", 1, None), ("a", 2, None), ("b", 1, None), ("b", 3, None)]
    store.write(spark.createDataFrame(rows, DDL), table, "append")
    store.append_rows(table, [("c", 1, None)], DDL)
    got = store.read_rows(table, ("name", "n"), where=[{"name": "a", "n": 2}, {"name": "c"}])
    assert sorted(got) == [("a", 2), ("c", 1)]
    assert store.read_rows(table, ("n",), where=[{"name": "zz"}]) == []
    assert store.read_rows(table, ("n",), where=[]) == []
    assert sorted(store.read_rows(table, ("n",), version=0, where=[{"n": 1}])) == [(1,), (1,)]
    # A quote in a value is a value, not SQL.
    assert store.read_rows(table, ("n",), where=[{"name": "a' OR '1'='1"}]) == []
    if engine == "native":  # deletion vectors: Spark's read, same filter semantics
        dv = TableRef("golden.deletion_vectors", "path", str(golden_table("deletion-vectors")))
        assert sorted(store.read_rows(dv, ("id",), where=[{"id": 2}, {"id": 5}])) == [(5,)]


def test_distinct_values_of_reference_keys_are_read_without_a_spark_job_where_deltalake_can(
    engine: str, store: Any, spark: Any, settings: Any, tmp_path: Path, golden_table: Any
) -> None:
    """Foreign-key checks ask for the reference table's keys: a local table's string or integer keys come
    from deltalake (no session needed), other types and tables deltalake must not read from Spark."""
    import dataclasses

    local = dataclasses.replace(
        settings, paths=dataclasses.replace(settings.paths, lakehouse=str(tmp_path / "lakehouse"))
    )
    rows = [("a", 1, dt.datetime(2026, 1, 1)), ("b", 1, None), ("a", 2, None), (None, 3, None)]
    Lakehouse(local, store).write(spark.createDataFrame(rows, DDL), "gold.small", "append")
    started: list[int] = []

    def start() -> Any:
        started.append(1)
        return spark

    lazy = Lakehouse(local, make_store(None, engine, local, start))
    assert sorted(lazy.distinct_values("gold.small", "name", 10) or []) == ["a", "b"]  # NULL is not a key
    assert sorted(lazy.distinct_values("gold.small", "n", 10) or []) == [1, 2, 3]
    assert lazy.distinct_values("gold.small", "n", 2) is None  # more than the limit
    assert started == []
    if engine == "native":
        # A timestamp column: Spark's values (naive, session time zone), as the check compares them.
        assert lazy.distinct_values("gold.small", "at", 10) == [dt.datetime(2026, 1, 1)]
        assert started == [1]
        dv = TableRef("golden.deletion_vectors", "path", str(golden_table("deletion-vectors")))
        assert sorted(store.distinct_values(dv, "id", 100) or []) == [0, *range(4, 20)]
