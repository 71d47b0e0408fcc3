"""One behaviour, whichever Delta engine is behind the storage interface.

Every case runs against the offline engine (Spark parquet + deltalake commit) and the native engine
(delta-spark, with the jars ``medallion setup`` fetched). A native case is skipped only where no Maven
repository is reachable, with the reason; where one is reachable and the jars are missing, it fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import functions as F

from pipelines.errors import ConcurrentCommitError, RetentionError, SchemaMismatchError, WriteConflictError
from pipelines.lakehouse import MergeSpec, TableRef
from pipelines.lakehouse.base import RETENTION_PROPERTY

DDL = "id long, name string, amount double, part string"
FIRST = [(1, "a", 1.0, "x"), (2, "b", 2.0, "x"), (3, "c", 3.0, "y")]


# The offline cases are in the fast tier; the native ones (delta-spark: 1-4 s per operation on a laptop) run in
# the full suite, marked `native`.
@pytest.fixture(
    params=[pytest.param("offline", marks=pytest.mark.fast), pytest.param("native", marks=pytest.mark.native)]
)
def engine(request) -> str:
    return str(request.param)


@pytest.fixture
def store(engine, spark, settings, native_store_factory):
    if engine == "offline":
        from pipelines.lakehouse.offline import OfflineDeltaStore

        return OfflineDeltaStore(spark, settings.storage.offline)
    return native_store_factory()


@pytest.fixture
def table(tmp_path):
    return TableRef("silver.conformance", "path", str(tmp_path / "silver" / "conformance"))


def rows(store, table, version: int | None = None) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in store.read(table, version).collect())


def frame(spark, data, ddl: str = DDL):
    return spark.createDataFrame(data, ddl)


def data_files(table: TableRef) -> set[str]:
    """Data files on disk (not the log, not staging folders)."""
    root = Path(table.location)
    return {
        str(p.relative_to(root))
        for p in root.rglob("*.parquet")
        if not any(part.startswith("_") for part in p.relative_to(root).parts)
    }


def referenced_files(table: TableRef) -> set[str]:
    """Data files the table's current version references (read by deltalake, whichever engine wrote)."""
    import urllib.parse

    from deltalake import DeltaTable

    return {
        urllib.parse.unquote(p)
        for p in DeltaTable(table.location).get_add_actions(flatten=True).column("path").to_pylist()
    }


def test_create_append_read(spark, store, table):
    assert not store.exists(table)
    assert store.version(table) is None
    created = store.write(frame(spark, FIRST), table, partition_by=["part"])
    assert (created.version, created.rows_written) == (0, 3)
    assert store.exists(table)
    appended = store.write(frame(spark, [(4, "d", 4.0, "z")]), table, "append")
    assert (appended.version, appended.rows_written) == (1, 1)
    assert store.version(table) == 1
    assert rows(store, table) == sorted([*FIRST, (4, "d", 4.0, "z")])
    assert store.read(table).columns == ["id", "name", "amount", "part"]


def test_a_documented_new_table_is_created_then_written_and_comments_change_only_when_changed(
    spark, store, table
):
    """With a description the table is created first (version 0, documented) and the data commit comes last
    (version 1): the version and row count the write reports are the data commit's, on both engines."""
    df = frame(spark, FIRST).withMetadata("name", {"comment": "the name"})
    result = store.write(df, table, partition_by=["part"], description="people, by part")
    assert (result.version, result.rows_written) == (1, 3)
    assert store.version(table) == 1
    assert rows(store, table, 0) == [] and rows(store, table, 1) == sorted(FIRST)
    assert store.properties(table)["comment"] == "people, by part"
    assert store.read(table).schema["name"].metadata.get("comment") == "the name"
    assert store.history(table, limit=1)[0]["operation"] in ("WRITE", "APPEND")  # the data commit is last
    # Nothing changed: no commit at all (not one ALTER per column per run).
    store.set_comments(table, "people, by part", {"name": "the name"})
    assert store.version(table) == 1
    store.set_comments(table, "people, by part", {"name": "the name", "amount": "in euros"})
    assert store.version(table) == 2
    assert store.read(table).schema["amount"].metadata.get("comment") == "in euros"


def test_the_data_quality_observation_counts_through_every_kind_of_write(spark, store, table):
    """The row checks count in the write pass with a Spark Observation: it must see every write (a new table,
    an append, a MERGE source) on both engines."""
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    def observed(data):
        observation = Observation()
        df = frame(spark, data).observe(
            observation, F.count(F.lit(1)).alias("rows"), F.sum("amount").alias("total")
        )
        return observation, df

    observation, df = observed(FIRST)
    store.write(df, table, description="observed")
    assert observation.get == {"rows": 3, "total": 6.0}
    observation, df = observed([(4, "d", 4.0, "y")])
    store.write(df, table, "append")
    assert observation.get == {"rows": 1, "total": 4.0}
    observation, df = observed([(1, "a2", 10.0, "x"), (5, "e", 5.0, "x")])
    store.merge(df, table, MergeSpec(keys=["id"]))
    assert observation.get == {"rows": 2, "total": 15.0}


def test_new_table_columns_are_nullable_like_delta_spark(spark, store, table):
    df = spark.range(0, 3).selectExpr("id", "cast(id as string) as label")
    assert not df.schema["id"].nullable
    store.write(df, table)
    assert all(f.nullable for f in store.read(table).schema.fields)
    store.write(frame(spark, [(None, "null id")], "id long, label string"), table, "append")
    assert sorted(r.id is None for r in store.read(table).collect()) == [False, False, False, True]


def test_overwrite(spark, store, table):
    store.write(frame(spark, FIRST), table, partition_by=["part"])
    result = store.write(frame(spark, [(9, "i", 9.0, "y")]), table, "overwrite")
    assert (result.version, result.rows_written) == (1, 1)
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


def test_merge_with_delete_clauses(spark, store, table):
    store.write(frame(spark, FIRST + [(4, "d", 4.0, "y")]), table)
    source = frame(spark, [(1, "a", -1.0, "x"), (2, "b2", 2.5, "x"), (5, "e", 5.0, "y")])
    spec = MergeSpec(
        keys=["id"],
        delete_condition="s.amount < 0",  # matched and negative: deleted
        delete_not_matched_by_source=True,  # target rows without a source row ...
        not_matched_by_source_condition="t.part = 'y'",  # ... in part y: deleted (3 and 4)
    )
    result = store.merge(source, table, spec)
    assert result.version == 1
    assert (result.rows_deleted, result.rows_updated, result.rows_written) == (3, 1, 1)
    assert rows(store, table) == [(2, "b2", 2.5, "x"), (5, "e", 5.0, "y")]


def test_delete_and_update(spark, store, table):
    store.write(frame(spark, FIRST), table, partition_by=["part"])
    result = store.delete(table, "amount > 1.5 AND part = 'x'")
    assert (result.version, result.rows_deleted) == (1, 1)
    assert rows(store, table) == [(1, "a", 1.0, "x"), (3, "c", 3.0, "y")]
    result = store.update(table, {"amount": "amount * 10", "name": "upper(name)"}, "id = 3")
    assert (result.version, result.rows_updated) == (2, 1)
    assert rows(store, table) == [(1, "a", 1.0, "x"), (3, "C", 30.0, "y")]


def test_history_and_time_travel(spark, store, table):
    snapshots = {}
    store.write(frame(spark, FIRST), table, partition_by=["part"], commit_info={"medallion.run_id": "r0"})
    snapshots[0] = rows(store, table)
    store.write(frame(spark, [(4, "d", 4.0, "z")]), table, "append")
    snapshots[1] = rows(store, table)
    store.merge(frame(spark, [(1, "a2", 10.0, "x")]), table, MergeSpec(keys=["id"]))
    snapshots[2] = rows(store, table)
    store.delete(table, "id = 2")
    snapshots[3] = rows(store, table)
    store.write(
        frame(spark, [(5, "e", 5.0, "y")]), table, "overwrite", commit_info={"medallion.run_id": "r4"}
    )
    snapshots[4] = rows(store, table)
    assert len({tuple(v) for v in snapshots.values()}) == 5  # every commit changed the table

    history = store.history(table)
    assert [h["version"] for h in history] == [4, 3, 2, 1, 0]
    assert all(isinstance(h["timestamp"], int) and isinstance(h["operation"], str) for h in history)
    assert history[2]["operation"] == "MERGE" and history[1]["operation"] == "DELETE"
    assert (
        history[0]["custom"]["medallion.run_id"] == "r4" and history[4]["custom"]["medallion.run_id"] == "r0"
    )
    assert [h["version"] for h in store.history(table, limit=2)] == [4, 3]
    for version, want in snapshots.items():
        assert rows(store, table, version) == want, f"version {version}"


def test_declared_not_null_and_check_constraints(spark, store, table):
    from pyspark.sql.types import StructType

    schema = StructType.fromDDL("id long not null, name string, amount double, part string")
    created = store.create(
        table,
        schema,
        partition_by=["part"],
        description="strict",
        constraints={"amount_positive": "amount >= 0"},
    )
    assert created.version == 1  # create, then the constraint
    store.write(frame(spark, FIRST), table, "append")
    before = (store.version(table), referenced_files(table))
    from deltalake import DeltaTable

    assert [f.nullable for f in DeltaTable(table.location).schema().fields] == [False, True, True, True]
    for bad in ([(None, "null id", 1.0, "x")], [(9, "negative", -1.0, "x")]):
        with pytest.raises(WriteConflictError):
            store.write(frame(spark, [(10, "ok", 1.0, "x"), *bad]), table, "append")
        assert (store.version(table), referenced_files(table)) == before
    with pytest.raises(WriteConflictError):
        store.create(table, schema)
    # Whatever a failed job left on disk, the log does not reference it and VACUUM removes it.
    store.set_properties(table, {RETENTION_PROPERTY: "interval 0 hours"})
    store.vacuum(table, retention_hours=0)
    assert data_files(table) == referenced_files(table)
    assert rows(store, table) == sorted(FIRST)


def test_properties(spark, store, engine, table):
    store.write(frame(spark, FIRST), table, properties={"medallion.layer": "silver"})
    # Created with its properties, then written. deltalake takes only `delta.*` properties when it creates a
    # table: the offline engine sets the others in one more commit before the data.
    created = store.version(table)
    assert created == (1 if engine == "native" else 2)
    assert store.history(table, limit=1)[0]["operation"] in ("WRITE", "APPEND")
    assert store.properties(table)["medallion.layer"] == "silver"
    store.set_properties(table, {"medallion.layer": "silver"})
    assert store.version(table) == created  # unchanged: nothing committed
    store.set_properties(table, {"medallion.layer": "gold", "medallion.owner": "team"})
    assert store.version(table) == created + 1
    assert {k: v for k, v in store.properties(table).items() if k.startswith("medallion.")} == {
        "medallion.layer": "gold",
        "medallion.owner": "team",
    }


@pytest.mark.parametrize(
    ("ddl", "data"),
    [
        ("id long, name string, amount double", [(1, "a", 1.0)]),  # a column missing
        ("id long, name string, amount double, part string, extra int", [(1, "a", 1.0, "x", 1)]),  # one extra
        ("id string, name string, amount double, part string", [("1", "a", 1.0, "x")]),  # another type
    ],
    ids=["missing", "extra", "retyped"],
)
def test_schema_mismatch_is_refused(spark, store, table, ddl, data):
    store.write(frame(spark, FIRST), table)
    with pytest.raises(SchemaMismatchError):
        store.write(frame(spark, data, ddl), table, "append")
    with pytest.raises(SchemaMismatchError):
        store.merge(frame(spark, data, ddl), table, MergeSpec(keys=["id"]))
    assert store.version(table) == 0
    assert rows(store, table) == sorted(FIRST)
    # Another column order is not a mismatch: columns are matched by name.
    store.write(frame(spark, [("z", 9, 9.0, "q")], "part string, id long, amount double, name string"), table)
    assert (9, "q", 9.0, "z") in rows(store, table)


def test_optimize_compacts_and_keeps_rows(spark, store, table):
    for i in range(4):
        store.write(frame(spark, [(i, f"n{i}", float(i), "x")]).repartition(1), table, "append")
    files_before = data_files(table)
    assert len(files_before) == 4
    metrics = store.optimize(table)
    assert int(metrics["numFilesRemoved"]) == 4 and int(metrics["numFilesAdded"]) == 1
    assert store.version(table) == 4
    assert len(referenced_files(table)) == 1
    assert rows(store, table) == [(i, f"n{i}", float(i), "x") for i in range(4)]
    assert store.history(table, limit=1)[0]["operation"] == "OPTIMIZE"


def test_vacuum_deletes_unreferenced_files_and_reports_them(spark, store, table):
    from pipelines.lakehouse.native import RETENTION_CHECK_CONF

    store.write(frame(spark, FIRST), table)
    old = data_files(table)
    store.write(frame(spark, [(9, "i", 9.0, "y")]), table, "overwrite")
    assert store.vacuum(table) == [] == store.vacuum(table, retention_hours=200)  # within the retention
    assert old <= data_files(table)
    setting = spark.conf.get(RETENTION_CHECK_CONF, None)
    unreferenced = data_files(table) - referenced_files(table)
    assert old <= unreferenced
    store.set_properties(table, {RETENTION_PROPERTY: "interval 0 hours"})  # the Delta way to keep less
    assert store.retention_hours(table) == 0
    removed = store.vacuum(table, retention_hours=0)
    assert {Path(p).name for p in removed} == {Path(p).name for p in unreferenced}, (
        old,
        referenced_files(table),
    )
    assert not (old & data_files(table))
    assert spark.conf.get(RETENTION_CHECK_CONF, None) == setting  # never switched off
    assert rows(store, table) == [(9, "i", 9.0, "y")]


@pytest.mark.parametrize(
    ("interval", "hours", "refused"),
    [(None, 168, (0, 24, 167.5)), ("interval 2 days", 48, (0, 47)), ("interval 90 minutes", 1.5, (0, 1))],
)
def test_vacuum_below_the_table_retention_is_refused(spark, store, table, interval, hours, refused):
    store.write(frame(spark, FIRST), table)
    store.write(frame(spark, [(9, "i", 9.0, "y")]), table, "overwrite")
    if interval:
        store.set_properties(table, {RETENTION_PROPERTY: interval})
    assert store.retention_hours(table) == hours
    on_disk, version = data_files(table), store.version(table)
    for below in refused:
        with pytest.raises(RetentionError):
            store.vacuum(table, retention_hours=below)
    assert (data_files(table), store.version(table)) == (on_disk, version)  # nothing ran
    assert store.vacuum(table, retention_hours=hours) == []  # at the retention: allowed, nothing old enough
    assert rows(store, table, 0) == sorted(FIRST)  # time travel still works


# ---- races: a writer reports its own commit; conflicting writers get WriteConflictError ----------------------


def _concurrent_append(path: str) -> None:
    """Another writer (deltalake, as another process would) appends a row to the table at ``path``."""
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    schema = pa.schema(DeltaTable(path).schema().to_arrow())
    row = {"id": [100], "name": ["other writer"], "amount": [100.0], "part": ["x"]}
    write_deltalake(path, pa.table(row, schema=schema), mode="append")


OPERATIONS = {
    "append": lambda s, st, t: st.write(frame(s, [(4, "d", 4.0, "x")]), t, "append"),
    "overwrite": lambda s, st, t: st.write(frame(s, [(4, "d", 4.0, "x")]), t, "overwrite"),
    "replace_where": lambda s, st, t: st.write(
        frame(s, [(4, "d", 4.0, "y")]), t, "overwrite", replace_where="part = 'y'"
    ),
    "merge": lambda s, st, t: st.merge(frame(s, [(1, "a2", 1.5, "x")]), t, MergeSpec(keys=["id"])),
    "delete": lambda s, st, t: st.delete(t, "id = 2"),
    "update": lambda s, st, t: st.update(t, {"amount": "amount + 1"}, "id = 3"),
}


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_a_write_reports_its_own_commit_when_another_commits_right_after(spark, store, table, operation):
    store.write(frame(spark, FIRST), table)
    real_exists = store.exists
    injected = []

    def exists_with_a_race(ref):
        # The first time anything looks at the table after this write's commit, another writer commits.
        from deltalake import DeltaTable

        if not injected and DeltaTable(ref.location).version() == 1:
            injected.append(True)
            _concurrent_append(ref.location)
        return real_exists(ref)

    store.exists = exists_with_a_race
    result = OPERATIONS[operation](spark, store, table)
    store.exists = real_exists
    if not injected:  # the operation never looked at the table after committing: the race comes later
        _concurrent_append(table.location)
    assert result.version == 1
    assert store.version(table) == 2
    assert store.history(table)[1]["version"] == 1


def test_conflicting_writers_get_write_conflict_error(spark, store, table):
    """A commit by another writer while this write runs (a UDF inside the write job triggers it) that deletes
    rows this write read: the write is refused, the other writer's commit stays."""
    from pyspark.sql import functions as F

    store.write(frame(spark, FIRST), table)
    marker = Path(table.location).parent / "other-writer-ran"
    path = table.location

    @F.udf("double")
    def meanwhile(amount):
        if not marker.exists():
            marker.touch()
            from deltalake import DeltaTable

            DeltaTable(path).delete("part = 'y'")
        return amount

    incoming = frame(spark, [(5, "e", 5.0, "y")]).withColumn("amount", meanwhile("amount"))
    with pytest.raises(ConcurrentCommitError):
        store.write(incoming, table, "overwrite", replace_where="part = 'y'")
    assert marker.exists()
    assert store.version(table) == 1  # only the other writer's delete
    assert rows(store, table) == [(1, "a", 1.0, "x"), (2, "b", 2.0, "x")]


def test_a_new_table_whose_first_write_fails_does_not_exist_afterwards(spark, store, table):
    """Created documented first, then written: when that first write fails (here a row breaks the
    replace_where predicate), the table is gone again, as it was before the write began."""
    failing = frame(spark, FIRST).withColumn(
        "name", F.when(F.col("id") > 2, F.raise_error(F.lit("[medallion] boom"))).otherwise(F.col("name"))
    )
    with pytest.raises(Exception):  # noqa: B017 - the job's own failure, whichever type the engine gives it
        store.write(failing, table, description="never filled")
    assert not store.exists(table) and store.version(table) is None


@pytest.mark.native
def test_a_three_part_catalog_name_is_created_documented_and_written(spark, native_store_factory, tmp_path):
    """Catalog tables (``spark_catalog.<schema>.<table>``, as the bundle's jobs name them): created with their
    comments, NOT NULL and CHECK constraints, then written. (delta-spark's DeltaTable.create() builder parses at
    most two name parts: it failed here with a ParseException.)"""
    from pyspark.sql.types import StructType

    store = native_store_factory()
    schema_name = f"conformance_{tmp_path.name[-8:].replace('-', '_')}"
    spark.sql(
        f"CREATE SCHEMA IF NOT EXISTS spark_catalog.`{schema_name}` LOCATION '{tmp_path / 'warehouse'}'"
    )
    table = TableRef("silver.catalogued", "catalog", f"spark_catalog.{schema_name}.catalogued")
    try:
        ddl = "id long not null, name string, amount double, part string"
        schema = StructType.fromDDL(ddl)
        schema = StructType(
            [
                f if f.name != "name" else f.__class__(f.name, f.dataType, True, {"comment": "it's the name"})
                for f in schema.fields
            ]
        )
        store.create(
            table,
            schema,
            partition_by=["part"],
            description="people's",
            constraints={"amount_positive": "amount >= 0"},
        )
        written = store.write(frame(spark, FIRST), table, "append")
        assert (written.version, written.rows_written) == (2, 3)  # create, constraint, data
        assert rows(store, table) == sorted(FIRST)
        assert store.properties(table)["comment"] == "people's"
        stored = store.read(table).schema
        assert stored["name"].metadata.get("comment") == "it's the name" and not stored["id"].nullable
        with pytest.raises(WriteConflictError):
            store.write(frame(spark, [(9, "negative", -1.0, "x")]), table, "append")
        assert store.version(table) == 2
    finally:
        spark.sql(f"DROP SCHEMA IF EXISTS spark_catalog.`{schema_name}` CASCADE")


@pytest.mark.native
def test_native_schema_and_properties_read_from_the_log_are_delta_sparks(
    spark, native_store_factory, tmp_path
):
    """The native engine answers ``schema`` and ``properties`` of a local table from its log (no Spark job):
    they must be what delta-spark itself reads, at every version, after every kind of metadata change, and for
    a table removed and created again at the same path (new columns, not the old ones from a cache)."""
    from pyspark.sql.types import StructField, StructType

    from pipelines.lakehouse import native

    store = native_store_factory()
    table = TableRef("silver.logged", "path", str(tmp_path / "silver" / "logged"))
    not_null = StructType([StructField("id", StructType.fromDDL("x long")["x"].dataType, False)])
    store.create(table, StructType([*not_null.fields, *StructType.fromDDL("name string, part string").fields]),
                 partition_by=["part"], description="first", properties={"medallion.layer": "silver"})  # fmt: skip
    store.write(spark.createDataFrame([(1, "a", "x")], "id long, name string, part string"), table, "append")
    store.set_comments(table, "second", {"name": "the name"})
    store.add_columns(table, StructType.fromDDL("amount double"))
    store.set_properties(table, {"medallion.owner": "team"})
    for _ in range(12):  # past delta-spark's checkpoint interval: the log keeps its commit files
        store.write(spark.createDataFrame([(2, "b", "y", 2.0)], "id long, name string, part string, amount double"),
                    table, "append")  # fmt: skip

    def spark_detail(version=None):
        detail = store._delta_table(table).detail().first()
        props = dict(detail["properties"] or {})
        props["comment"] = detail["description"]
        return props

    latest = store.version(table)
    for version in range(latest + 1):
        assert store.schema(table, version) == store.read(table, version).schema, version
    assert store.schema(table) == store.read(table).schema
    assert (
        store.schema(table)["name"].metadata == {"comment": "the name"}
        and not store.schema(table)["id"].nullable
    )
    assert store.properties(table) == spark_detail()
    assert (
        store.properties(table)["medallion.owner"] == "team"
        and store.properties(table)["comment"] == "second"
    )
    assert native._log_metadata(str(Path(table.location) / "_delta_log"), latest) is not None  # from the log

    import shutil

    shutil.rmtree(table.location)
    store.write(spark.createDataFrame([(1, 2)], "other long, columns long"), table, description="again")
    assert store.schema(table) == store.read(table).schema
    assert store.schema(table).fieldNames() == ["other", "columns"]
    assert store.properties(table) == spark_detail() and store.properties(table)["comment"] == "again"
    # Created again at the very version the cache holds (0): the new table's columns, not the cached ones.
    single = TableRef("silver.single", "path", str(tmp_path / "silver" / "single"))
    store.write(spark.createDataFrame([(1,)], "first long"), single)
    assert store.schema(single).fieldNames() == ["first"]
    shutil.rmtree(single.location)
    store.write(spark.createDataFrame([(1,)], "second long"), single)
    assert store.schema(single).fieldNames() == ["second"] == store.read(single).columns


@pytest.mark.native
def test_native_history_read_from_the_log_is_delta_sparks(spark, native_store_factory, tmp_path):
    """``history`` of a local native table comes from its commit files: every field the product reads must be
    what delta-spark's own DESCRIBE HISTORY gives, for every kind of commit, with and without a limit."""
    from pipelines.lakehouse.base import USER_METADATA, parse_custom
    from pipelines.lakehouse.native import NativeDeltaStore

    store = native_store_factory()
    table = TableRef("silver.historied", "path", str(tmp_path / "silver" / "historied"))
    store.write(frame(spark, FIRST), table, partition_by=["part"], description="people",
                commit_info={"medallion.run_id": "r1"})  # fmt: skip
    store.write(frame(spark, [(4, "d", 4.0, "z")]), table, "append", commit_info={"medallion.run_id": "r2"})
    store.merge(frame(spark, [(1, "a2", 1.5, "x"), (5, "e", 5.0, "y")]), table, MergeSpec(keys=["id"]))
    store.delete(table, "id = 2")
    store.update(table, {"amount": "amount * 2"}, "id = 3")
    store.set_properties(table, {"medallion.owner": "team"})
    store.write(frame(spark, [(6, "f", 6.0, "x")]), table, "overwrite", replace_where="part = 'x'")

    def from_spark(limit=None):
        handle = store._delta_table(table)
        out = []
        for row in (handle.history(limit) if limit else handle.history()).collect():
            out.append((int(row["version"]), row["operation"], dict(row["operationParameters"] or {}),
                        dict(row["operationMetrics"] or {}), row["engineInfo"], row["userMetadata"],
                        round(row["timestamp"].timestamp() * 1000)))  # fmt: skip
        return out

    def from_log(limit=None):
        out = []
        for c in NativeDeltaStore.history(store, table, limit):
            out.append((c["version"], c["operation"], c["operationParameters"], c["operationMetrics"],
                        c["engineInfo"], c["custom"], c["timestamp"]))  # fmt: skip
        return out

    spark_full = from_spark()
    assert [e[0] for e in spark_full] == list(range(store.version(table), -1, -1))
    log_full = from_log()
    assert [e[:5] for e in log_full] == [e[:5] for e in spark_full]
    assert [e[5] for e in log_full] == [
        parse_custom({USER_METADATA: e[5]} if e[5] else {}) for e in spark_full
    ]
    assert [e[:5] for e in from_log(2)] == [e[:5] for e in from_spark(2)]
    customs = [c["custom"].get("medallion.run_id") for c in store.history(table)]
    assert customs[-3:] == ["r2", "r1", None]  # the append, the data commit, the CREATE
    # Commit times as delta-spark gives them (TIMESTAMP AS OF picks versions by them).
    assert [e[6] for e in log_full] == [e[6] for e in spark_full]
    assert all(isinstance(e[6], int) for e in log_full)


@pytest.mark.native
def test_native_log_reads_defer_to_delta_spark_where_it_reads_differently(
    spark, native_store_factory, tmp_path
):
    """A nested column widened by type widening carries ``delta.typeChanges`` metadata that delta-spark hides,
    and a table whose in-commit timestamps were switched on and off again has commit times delta-spark takes
    from the files: the native engine's schema and history must still be delta-spark's."""
    from pipelines.lakehouse import native

    store = native_store_factory()
    widened = TableRef("silver.widened", "path", str(tmp_path / "silver" / "widened"))
    store.write(spark.sql("SELECT 1 AS id, named_struct('a', CAST(1 AS INT)) AS s"), widened,
                properties={"delta.enableTypeWidening": "true"})  # fmt: skip
    spark.sql(f"ALTER TABLE delta.`{widened.location}` ALTER COLUMN s.a TYPE BIGINT")
    assert store.schema(widened) == store.read(widened).schema
    assert store.schema(widened)["s"].dataType["a"].dataType.simpleString() == "bigint"

    stamped = TableRef("silver.stamped", "path", str(tmp_path / "silver" / "stamped"))
    store.write(spark.createDataFrame([(1,)], "id long"), stamped)
    store.set_properties(stamped, {"delta.enableInCommitTimestamps": "true"})
    for i in range(2):
        store.write(spark.createDataFrame([(i,)], "id long"), stamped, "append")
    store.set_properties(stamped, {"delta.enableInCommitTimestamps": "false"})
    log = str(Path(stamped.location) / "_delta_log")
    assert any('"inCommitTimestamp"' in p.read_text() for p in Path(log).glob("*.json"))
    spark_times = [
        (int(r["version"]), round(r["timestamp"].timestamp() * 1000))
        for r in store._delta_table(stamped).history().collect()
    ]
    assert [(c["version"], c["timestamp"]) for c in store.history(stamped)] == spark_times
    assert native._log_metadata(log, store.version(stamped)) is None  # asked delta-spark, not the files


@pytest.mark.fast
def test_log_reads_recognise_what_delta_spark_reads_differently(tmp_path):
    """The checks that send a local table's metadata questions to delta-spark: internal field metadata or a
    void column at any depth, a protocol feature outside the plain ones, commits not yet published as files."""
    from pipelines.lakehouse import native

    def struct(*fields):
        return {"type": "struct", "fields": list(fields)}

    def field(name, type_, **metadata):
        return {"name": name, "type": type_, "nullable": True, "metadata": metadata}

    plain = struct(field("id", "long", comment="the key"), field("s", struct(field("a", "integer"))))
    assert not native._internal_schema(plain)
    nested = struct(field("s", struct(field("a", "long", **{"delta.typeChanges": []}))))
    in_array = struct(field("xs", {"type": "array", "elementType": struct(field("v", "void"))}))
    in_map = struct(field("m", {"type": "map", "keyType": "string",
                                "valueType": struct(field("d", "long", CURRENT_DEFAULT="1"))}))  # fmt: skip
    assert (
        native._internal_schema(nested)
        and native._internal_schema(in_array)
        and native._internal_schema(in_map)
    )

    assert native._plain_protocol({"minReaderVersion": 1, "minWriterVersion": 2})
    assert native._plain_protocol({"minReaderVersion": 3, "minWriterVersion": 7, "readerFeatures": ["timestampNtz"],
                                   "writerFeatures": ["timestampNtz", "invariants", "appendOnly"]})  # fmt: skip
    for feature in (
        "inCommitTimestamp",
        "typeWidening",
        "catalogManaged",
        "coordinatedCommits-preview",
        "new",
    ):
        assert not native._plain_protocol({"minReaderVersion": 3, "minWriterVersion": 7,
                                           "readerFeatures": [], "writerFeatures": [feature]}), feature  # fmt: skip
    assert not native._plain_protocol({"minReaderVersion": 2, "minWriterVersion": 5})

    log = tmp_path / "_delta_log"
    (log / "_staged_commits").mkdir(parents=True)
    assert not native._unpublished_commits(str(log))
    (log / "_staged_commits" / f"{1:020d}.uuid.json").write_text("{}")
    assert native._unpublished_commits(str(log))
