"""Failure semantics of the offline engine: a refused or failed write changes nothing; maintenance does its job."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.errors import (
    MergeSourceTooLargeError,
    SchemaMismatchError,
    TableNotFoundError,
    WriteConflictError,
)
from pipelines.lakehouse import MergeSpec
from pipelines.lakehouse.base import RETENTION_PROPERTY

pytestmark = pytest.mark.fast

DDL = "id long, name string, amount double"
ROWS = [(1, "a", 1.0), (2, "b", 2.0), (3, "c", 3.0)]


def table_state(lakehouse, name: str) -> tuple[int | None, list[str], list[str]]:
    """(version, referenced files, staging folders left in the table folder)."""
    from deltalake import DeltaTable

    path = Path(lakehouse.ref(name).location)
    return (
        lakehouse.version(name),
        sorted(DeltaTable(str(path)).file_uris()),
        sorted(p.name for p in path.glob("_staging-*")),
    )


def parquet_files_on_disk(lakehouse, name: str) -> set[str]:
    root = Path(lakehouse.ref(name).location)
    return {str(p.relative_to(root)) for p in root.rglob("*.parquet") if "_delta_log" not in p.parts}


@pytest.fixture
def people(spark, lakehouse):
    lakehouse.write(spark.createDataFrame(ROWS, DDL), "silver.people")
    return "silver.people"


@pytest.mark.parametrize(
    "ddl, rows",
    [
        ("id long, name string", [(4, "d")]),  # missing column
        ("id long, name string, amount double, extra int", [(4, "d", 4.0, 1)]),  # extra column
        ("id long, name string, amount string", [(4, "d", "4.0")]),  # wrong type
        ("id int, name string, amount double", [(4, "d", 4.0)]),  # narrower type
    ],
    ids=["missing", "extra", "wrong-type", "int-for-long"],
)
def test_data_that_does_not_fit_the_schema_is_refused(spark, lakehouse, people, ddl, rows):
    before = table_state(lakehouse, people)
    with pytest.raises(SchemaMismatchError):
        lakehouse.write(spark.createDataFrame(rows, ddl), people, "append")
    with pytest.raises(SchemaMismatchError):
        lakehouse.merge(spark.createDataFrame(rows, ddl), people, MergeSpec(keys=["id"]))
    assert table_state(lakehouse, people) == before


def test_null_into_a_not_null_column_fails_and_leaves_nothing(spark, lakehouse):
    from pyspark.sql.types import StructField, StructType

    name = "silver.strict"
    schema = StructType.fromDDL("id long not null, label string")
    lakehouse.create(name, schema)
    first = spark.createDataFrame([(i, str(i)) for i in range(4)], schema)
    lakehouse.write(first, name)
    before = table_state(lakehouse, name)
    files_before = parquet_files_on_disk(lakehouse, name)
    assert before[0] == 1 and before[1] and not before[2]

    # Many good rows and one null: the job must fail as a whole, not commit the good part.
    bad = spark.createDataFrame(
        [(i, f"x{i}") for i in range(10, 30)] + [(None, "null id")],
        StructType([StructField("id", first.schema["id"].dataType, True), first.schema["label"]]),
    ).repartition(3)
    with pytest.raises(WriteConflictError):
        lakehouse.write(bad, name, "append")
    with pytest.raises(WriteConflictError):
        lakehouse.write(bad, name, "overwrite")
    assert table_state(lakehouse, name) == before
    assert parquet_files_on_disk(lakehouse, name) == files_before  # nothing left over in the folder either
    assert sorted(r.id for r in lakehouse.read(name).collect()) == [0, 1, 2, 3]


def test_replace_where_refuses_rows_outside_the_predicate(spark, lakehouse, people):
    before = table_state(lakehouse, people)
    outside = spark.createDataFrame([(2, "b2", 20.0), (9, "z", 9.0)], DDL)
    with pytest.raises(WriteConflictError):
        lakehouse.write(outside, people, "overwrite", replace_where="id <= 3")
    assert table_state(lakehouse, people) == before
    # The same write with every row inside the predicate goes through.
    inside = spark.createDataFrame([(2, "b2", 20.0)], DDL)
    result = lakehouse.write(inside, people, "overwrite", replace_where="id = 2")
    assert result.version == before[0] + 1
    got = sorted(tuple(r) for r in lakehouse.read(people).collect())
    assert got == [(1, "a", 1.0), (2, "b2", 20.0), (3, "c", 3.0)]


def test_merge_source_above_the_bound_is_refused(spark, lakehouse_factory):
    small = lakehouse_factory(merge_max_source_rows=5)
    name = "silver.people"
    small.write(spark.createDataFrame(ROWS, DDL), name)
    before = table_state(small, name)
    six = spark.createDataFrame([(i, f"n{i}", float(i)) for i in range(6)], DDL)
    with pytest.raises(MergeSourceTooLargeError):
        small.merge(six, name, MergeSpec(keys=["id"]))
    assert table_state(small, name) == before
    # Exactly at the bound is allowed.
    result = small.merge(six.where("id < 5"), name, MergeSpec(keys=["id"]))
    assert (result.rows_updated, result.rows_written) == (3, 2)
    assert small.version(name) == before[0] + 1


def test_reading_a_missing_table_raises_table_not_found(lakehouse, tmp_path):
    with pytest.raises(TableNotFoundError):
        lakehouse.read("silver.nowhere")
    with pytest.raises(TableNotFoundError):
        lakehouse.history("silver.nowhere")
    assert lakehouse.version("silver.nowhere") is None
    assert not lakehouse.exists("silver.nowhere")
    # A folder without a Delta log is not a table either.
    folder = Path(lakehouse.ref("silver.plain").location)
    folder.mkdir(parents=True)
    (folder / "part-0.parquet").write_bytes(b"not a delta table")
    with pytest.raises(TableNotFoundError):
        lakehouse.read("silver.plain")


def test_comments_and_properties_round_trip(lakehouse, people):
    from deltalake import DeltaTable

    lakehouse.set_comments(people, "People we know", {"name": "Display name", "amount": "In EUR"})
    lakehouse.set_properties(people, {"delta.appendOnly": "false", "medallion.owner": "data-eng"})
    dtable = DeltaTable(lakehouse.ref(people).location)
    assert dtable.metadata().description == "People we know"
    comments = {f.name: f.metadata.get("comment") for f in dtable.schema().fields}
    assert comments == {"id": None, "name": "Display name", "amount": "In EUR"}
    props = lakehouse.properties(people)
    assert props["medallion.owner"] == "data-eng"
    assert props["comment"] == "People we know"
    # Changing one comment keeps the others; the data is untouched.
    lakehouse.set_comments(people, columns={"amount": "In USD"})
    fields = DeltaTable(lakehouse.ref(people).location).schema().fields
    assert {f.name: f.metadata.get("comment") for f in fields}["amount"] == "In USD"
    assert {f.name: f.metadata.get("comment") for f in fields}["name"] == "Display name"
    assert sorted(tuple(r) for r in lakehouse.read(people).collect()) == ROWS
    with pytest.raises(SchemaMismatchError):
        lakehouse.set_comments(people, columns={"nope": "x"})


def test_optimize_compacts_small_files(spark, lakehouse):
    from deltalake import DeltaTable

    name = "gold.small_files"
    for i in range(4):
        rows = [(i * 10 + j, f"n{j}", float(j)) for j in range(3)]
        lakehouse.write(spark.createDataFrame(rows, DDL).coalesce(1), name, "append")
    path = lakehouse.ref(name).location
    before_files = len(DeltaTable(path).file_uris())
    before_rows = sorted(tuple(r) for r in lakehouse.read(name).collect())
    version = lakehouse.version(name)
    assert before_files >= 4
    metrics = lakehouse.optimize(name)
    assert metrics["numFilesRemoved"] == before_files
    assert len(DeltaTable(path).file_uris()) < before_files
    assert lakehouse.version(name) == version + 1
    assert sorted(tuple(r) for r in lakehouse.read(name).collect()) == before_rows
    assert sorted(tuple(r) for r in lakehouse.read(name, version=version).collect()) == before_rows


def test_vacuum_removes_unreferenced_files_after_overwrite(spark, lakehouse, people):
    from deltalake import DeltaTable

    path = Path(lakehouse.ref(people).location)
    old_files = parquet_files_on_disk(lakehouse, people)
    lakehouse.write(spark.createDataFrame([(7, "g", 7.0)], DDL), people, "overwrite")
    live = {str(Path(p).relative_to(path)) for p in DeltaTable(str(path)).file_uris()}
    assert old_files and not old_files & live
    assert parquet_files_on_disk(lakehouse, people) == old_files | live  # overwrite only unreferences
    lakehouse.set_properties(people, {RETENTION_PROPERTY: "interval 0 hours"})  # the Delta way to vacuum now
    removed = lakehouse.vacuum(people)
    assert parquet_files_on_disk(lakehouse, people) == live
    assert {Path(p).name for p in removed} == {Path(p).name for p in old_files}
    assert [tuple(r) for r in lakehouse.read(people).collect()] == [(7, "g", 7.0)]


def test_a_concurrent_commit_makes_the_write_fail_cleanly(spark, lakehouse, people, monkeypatch):
    """Another writer deletes the rows a replace_where read: the commit conflicts, and nothing of ours remains."""
    from deltalake import DeltaTable

    path = lakehouse.ref(people).location
    files_before = parquet_files_on_disk(lakehouse, people)
    version = lakehouse.version(people)
    write_files = lakehouse.store._write_files

    def racing(*args, **kwargs):  # our files are staged and moved; someone else commits first
        adds = write_files(*args, **kwargs)
        DeltaTable(path).delete("id = 1")
        return adds

    monkeypatch.setattr(lakehouse.store, "_write_files", racing)
    with pytest.raises(WriteConflictError):
        lakehouse.write(
            spark.createDataFrame([(1, "z", 0.5)], DDL), people, "overwrite", replace_where="id = 1"
        )
    monkeypatch.undo()
    assert lakehouse.version(people) == version + 1  # only the other writer's DELETE
    assert [h["operation"] for h in lakehouse.history(people, 1)] == ["DELETE"]
    assert sorted(tuple(r) for r in lakehouse.read(people).collect()) == ROWS[1:]
    left = parquet_files_on_disk(lakehouse, people) - files_before
    assert left <= {str(Path(p).relative_to(path)) for p in DeltaTable(path).file_uris()}  # only the DELETE's
    assert not list(Path(path).glob("_staging-*"))
