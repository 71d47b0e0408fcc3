"""Tables written by the offline engine (Spark parquet + deltalake commit) are read identically by other readers.

One table goes through every kind of commit the engine makes: create, append, overwrite, replace_where (on a
partition and on a data column), MERGE, DELETE and UPDATE. After each commit the table is read by our engine
(Spark), deltalake, DuckDB's delta extension and Polars, and every reader must return exactly the rows of an
independent Python model of the table. At the end every version is read again (time travel) by our engine,
deltalake and Polars.
"""

from __future__ import annotations

import datetime as dt
import pathlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pipelines.lakehouse import MergeSpec

# The fast tier is the tests marked fast; the heavier ones here run in the full suite only.

DDL = (
    "id long, name string, amount double, price decimal(18,4), big decimal(38,10), day date, "
    "ts timestamp, flag boolean, info struct<code:int, label:string, tags:array<string>>, part string"
)
COLUMNS = ["id", "name", "amount", "price", "big", "day", "ts", "flag", "info", "part"]
# Partition values Spark must escape in directory names ('/', ' ', ':', '%', '=', '#', '?'), non-ASCII, null.
PARTS = ["a/b c:d", "50% off", "Zürich", "x=y#1?", None]
UTC = dt.UTC


def make_row(i: int, part: str | None, variant: int = 0) -> tuple[Any, ...]:
    """A row whose every column depends on (i, variant); some values are null or extreme on purpose."""
    odd = i % 2 == 1
    return (
        i,
        None if i % 7 == 3 else f"name-{i}-v{variant} 'quoted' ✓" + ("\nline" if i % 5 == 0 else ""),
        None if i % 6 == 5 else (-1.5 * i + variant) if odd else 1e300 / (i + 1),
        None if i % 8 == 7 else Decimal(f"{i * 1000 + variant}.{i:04d}"),
        Decimal(f"{'-' if odd else ''}1234567890123456789012345678.{i:010d}"),
        None if i % 9 == 8 else dt.date(1900 + i, 1 + i % 12, 1 + i % 28),
        None
        if i % 10 == 9
        else dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
        + dt.timedelta(days=i * 400, microseconds=i * 123457 + variant),
        None if i % 4 == 2 else odd,
        None
        if i % 11 == 10
        else (i * 10 + variant, None if odd else f"lbl{i}", [f"t{i}", None, "x"][: i % 4]),
        part,
    )


def as_python(row: tuple[Any, ...], canonical: Any) -> tuple[Any, ...]:
    """The model row in the canonical form ``rows_of`` gives Arrow rows (structs as (field, value) pairs)."""
    values = dict(zip(COLUMNS, row, strict=True))
    info = values["info"]
    if info is not None:
        values["info"] = {"code": info[0], "label": info[1], "tags": list(info[2])}
    return tuple(canonical(values[c]) for c in COLUMNS)


def expected_rows(model: dict[int, tuple[Any, ...]], canonical: Any) -> list[tuple[Any, ...]]:
    return sorted((as_python(r, canonical) for r in model.values()), key=repr)


def duckdb_arrow(path: str) -> Any:
    import duckdb
    import duckdb_ext

    extension = next(pathlib.Path(duckdb_ext.__path__[0]).rglob("delta.duckdb_extension"))
    con = duckdb.connect()
    try:
        con.execute(f"LOAD '{extension}'")
        con.execute("SET TimeZone = 'UTC'")
        return con.execute("SELECT * FROM delta_scan(?)", [path]).fetch_arrow_table()
    finally:
        con.close()


def test_every_commit_kind_reads_identically_in_spark_deltalake_duckdb_polars(
    spark, lakehouse, rows_of, canonical, native_store_or_none
):
    import polars as pl
    from chispa import assert_df_equality
    from deltalake import DeltaTable

    name = "silver.interop"
    path = str(lakehouse.ref(name).location)
    model: dict[int, tuple[Any, ...]] = {}
    snapshots: dict[int, list[tuple[Any, ...]]] = {}

    def df_of(rows: list[tuple[Any, ...]]) -> Any:
        return spark.createDataFrame(rows, DDL)

    def check_latest(step: str) -> None:
        want = expected_rows(model, canonical)
        version = lakehouse.version(name)
        assert version is not None
        assert version not in snapshots, f"{step}: no new version was committed"
        snapshots[version] = want
        readers = {
            "offline engine (Spark)": lambda: lakehouse.read(name).toArrow(),
            "deltalake": lambda: DeltaTable(path).to_pyarrow_table(),
            "duckdb": lambda: duckdb_arrow(path),
            "polars": lambda: pl.read_delta(path).to_arrow(),
        }
        for reader, read in readers.items():
            names, got = rows_of(read())
            assert names == COLUMNS, f"{step}: {reader} columns"
            assert got == want, f"{step}: {reader} rows differ from the model"

    # v0: create, partitioned by a string column whose values need escaping (and a null partition).
    first = [make_row(i, PARTS[i % len(PARTS)]) for i in range(1, 11)]
    created = lakehouse.write(df_of(first), name, "append", partition_by=["part"], description="interop")
    model.update({r[0]: r for r in first})
    assert created.version == 1  # version 0 created it, documented; the data commit comes last
    assert created.rows_written == len(first)
    check_latest("create")
    # Spark's read back through our engine equals the DataFrame that was written (types, values).
    assert_df_equality(
        lakehouse.read(name),
        df_of(first),
        ignore_row_order=True,
        ignore_nullable=True,
    )

    # v1: append.
    more = [make_row(i, PARTS[i % 3]) for i in range(11, 16)]
    lakehouse.write(df_of(more), name, "append")
    model.update({r[0]: r for r in more})
    check_latest("append")

    # v2: full overwrite with other values (same ids, new variant; fewer rows).
    replaced = [make_row(i, PARTS[(i + 1) % len(PARTS)], variant=2) for i in range(1, 13)]
    lakehouse.write(df_of(replaced), name, "overwrite")
    model = {r[0]: r for r in replaced}
    check_latest("overwrite")

    # v3: replace_where on the partition column (a value holding '/', ' ' and ':').
    target = "a/b c:d"
    new_part = [make_row(i, target, variant=3) for i in (100, 101, 102)]
    lakehouse.write(df_of(new_part), name, "overwrite", replace_where="part = 'a/b c:d'")
    model = {k: r for k, r in model.items() if r[-1] != target}
    model.update({r[0]: r for r in new_part})
    check_latest("replace_where on a partition")

    # v4: replace_where on a data column: rows of the touched files that do not match must survive.
    window = [make_row(i, PARTS[i % 2], variant=4) for i in (5, 6, 103)]
    lakehouse.write(df_of(window), name, "overwrite", replace_where="id >= 5 AND id <= 6 OR id = 103")
    model = {k: r for k, r in model.items() if not (5 <= k <= 6 or k == 103)}
    model.update({r[0]: r for r in window})
    check_latest("replace_where on a data column")

    # v5: MERGE upsert: update two existing rows, insert two new ones (one into the null partition).
    source = [make_row(2, PARTS[0], variant=5), make_row(3, None, variant=5)]
    source += [make_row(200, "Zürich", variant=5), make_row(201, None, variant=5)]
    merged = lakehouse.merge(df_of(source), name, MergeSpec(keys=["id"]))
    assert (merged.rows_updated, merged.rows_written) == (2, 2)
    model.update({r[0]: r for r in source})
    check_latest("merge")

    # v6: DELETE by a data predicate and by a partition value.
    deleted = lakehouse.delete(name, "id = 4 OR part = '50% off'")
    before = len(model)
    model = {k: r for k, r in model.items() if not (k == 4 or r[-1] == "50% off")}
    assert deleted.rows_deleted == before - len(model) > 0
    check_latest("delete")

    # v7: UPDATE.
    lakehouse.update(name, {"name": "'renamed'"}, "id = 2")
    model[2] = (2, "renamed", *model[2][2:])
    check_latest("update")

    # Time travel: every version, by our engine, deltalake, Polars and delta-spark itself (the independent
    # direction: what the offline engine commits, the JVM Delta implementation reads the same).
    assert sorted(snapshots) == list(range(1, 9))
    ref = lakehouse.ref(name)
    for version, want in snapshots.items():
        readers = {
            "offline engine (Spark)": lambda v=version: lakehouse.read(name, version=v).toArrow(),
            "deltalake": lambda v=version: DeltaTable(path, version=v).to_pyarrow_table(),
            "polars": lambda v=version: pl.read_delta(path, version=v).to_arrow(),
        }
        if native_store_or_none is not None:
            readers["delta-spark"] = lambda v=version: native_store_or_none.read(ref, v).toArrow()
        for reader, read in readers.items():
            assert rows_of(read()) == (COLUMNS, want), f"version {version}: {reader}"
    if native_store_or_none is not None:
        assert [h["version"] for h in native_store_or_none.history(ref)] == list(range(8, -1, -1))

    history = lakehouse.history(name)
    assert [h["version"] for h in history] == list(range(8, -1, -1))


@pytest.mark.fast
def test_non_null_spark_columns_make_nullable_table_columns_like_delta_spark(spark, lakehouse, rows_of):
    """A non-null Spark column (``range``) is a nullable Delta column, as delta-spark creates it (NOT NULL comes
    only from a declared schema), and the data still reads back exactly in every reader."""
    from deltalake import DeltaTable

    df = spark.range(0, 5).selectExpr("id", "cast(id * 2 as int) as twice", "timestamp_micros(id) as ts")
    assert not df.schema["id"].nullable
    lakehouse.write(df, "bronze.ranged")
    path = lakehouse.ref("bronze.ranged").location
    assert all(f.nullable for f in DeltaTable(path).schema().fields)
    want = [(i, 2 * i, dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(microseconds=i)) for i in range(5)]
    assert rows_of(DeltaTable(path).to_pyarrow_table()) == (["id", "twice", "ts"], want)
    assert rows_of(lakehouse.read("bronze.ranged").toArrow()) == (["id", "twice", "ts"], want)
    assert rows_of(duckdb_arrow(str(path))) == (["id", "twice", "ts"], want)


@pytest.mark.fast
def test_table_in_a_folder_with_space_and_non_ascii_reads_and_replaces(spark, settings, tmp_path, rows_of):
    """deltalake percent-encodes the table folder in file_uris()/table_uri: the engine must not use those."""
    from deltalake import DeltaTable

    from pipelines.lakehouse import TableRef
    from pipelines.lakehouse.offline import OfflineDeltaStore

    store = OfflineDeltaStore(spark, settings.storage.offline)
    ddl = "id long, p string"
    for partition_by in ([], ["p"]):
        location = tmp_path / "my lake ü" / f"t{len(partition_by)}"
        table = TableRef("silver.spaced", "path", str(location))
        store.write(
            spark.createDataFrame([(1, "a"), (2, "b"), (3, "b")], ddl), table, partition_by=partition_by
        )
        store.write(
            spark.createDataFrame([(2, "b"), (20, "b")], ddl),
            table,
            "overwrite",
            replace_where="id >= 2 AND id < 30",
        )
        want = (["id", "p"], [(1, "a"), (2, "b"), (20, "b")])
        assert rows_of(store.read(table).toArrow()) == want, partition_by
        assert rows_of(DeltaTable(str(location)).to_pyarrow_table()) == want, partition_by
        assert rows_of(store.read(table, version=0).toArrow()) == (
            ["id", "p"],
            [(1, "a"), (2, "b"), (3, "b")],
        )


@pytest.mark.fast
def test_file_statistics_bound_the_data(spark, lakehouse):
    """Every file's min/max/nullCount/numRecords in the log is a true bound of its data (readers skip files by them)."""
    import json

    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    # Values whose stats are easy to get wrong: decimals a double rounds down, sub-millisecond timestamps,
    # strings longer than the stats prefix, negatives, nulls.
    rounds_down = Decimal("1234567890123456900000000001")  # as a JSON double: 1.2345678901234569e+27
    rows = [
        (
            1,
            rounds_down,
            -rounds_down,
            dt.datetime(2024, 1, 1, 0, 0, 0, 999, tzinfo=UTC),
            "z" * 40,
            dt.date(2000, 1, 1),
        ),
        (
            2,
            Decimal("0.1"),
            Decimal("-0.3"),
            dt.datetime(1960, 5, 5, 5, 5, 5, 1, tzinfo=UTC),
            "a" * 33 + "\u00ff",
            None,
        ),
        (3, None, Decimal("12345.6789"), None, None, dt.date(1999, 12, 31)),
    ]
    df = spark.createDataFrame(
        rows, "id long, hi decimal(38,0), lo decimal(38,4), ts timestamp, s string, d date"
    )
    lakehouse.write(df.coalesce(1), "bronze.stats")
    path = lakehouse.ref("bronze.stats").location
    (log,) = sorted((Path(path) / "_delta_log").glob("*.json"))
    adds = [json.loads(line)["add"] for line in log.read_text().splitlines() if '"add"' in line]
    assert adds
    for add in adds:
        stats = json.loads(add["stats"], parse_float=Decimal)
        data = pq.read_table(Path(path) / add["path"])
        assert stats["numRecords"] == data.num_rows
        for column in data.column_names:
            values = data.column(column)
            assert stats["nullCount"][column] == values.null_count, column
            if values.null_count == len(values):
                continue
            true_min, true_max = (v.as_py() for v in pc.min_max(values).values())
            for bound, true, ok in (("minValues", true_min, le), ("maxValues", true_max, ge)):
                if column not in stats[bound]:
                    continue  # no statistic is always safe
                stat = parse_stat(stats[bound][column], true)
                assert ok(stat, true), f"{bound}.{column} = {stats[bound][column]!r} does not bound {true!r}"


def le(a: Any, b: Any) -> bool:
    return a <= b


def ge(a: Any, b: Any) -> bool:
    return a >= b


def parse_stat(stat: Any, like: Any) -> Any:
    if isinstance(like, dt.datetime):
        return dt.datetime.fromisoformat(stat.replace("Z", "+00:00"))
    if isinstance(like, dt.date):
        return dt.date.fromisoformat(stat)
    return stat
