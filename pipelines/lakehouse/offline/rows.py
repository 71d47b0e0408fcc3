"""Small tables on the driver with deltalake (delta-rs): read some columns of every row, append a few rows.

The pipeline's system tables (the ingest manifest, DQ results, the event log, rejected files) are read whole
and appended a few rows at a time by every run. Done through Spark, each is a Spark job; done here, none is,
so a run with nothing to do never needs a JVM. Both engines use this for local path tables whose Delta
features the offline engine's gates accept (:mod:`pipelines.lakehouse.offline.features`); anything else (a
Unity Catalog table, deletion vectors, column mapping, no deltalake installed: a Databricks cluster) goes
through Spark as before.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from typing import Any

from pipelines.errors import StorageError, UnsupportedTableFeatureError
from pipelines.lakehouse.base import TableRef, new_write_id, with_write_id
from pipelines.lakehouse.offline.features import check_readable, check_writable, open_table


def served(table: TableRef) -> bool:
    """Can this table be read and appended here at all (a local folder, deltalake installed)?"""
    if table.kind != "path" or "://" in table.location or table.location.startswith("dbfs:"):
        return False
    return importlib.util.find_spec("deltalake") is not None


def read_rows(
    table: TableRef,
    columns: Sequence[str],
    version: int | None = None,
    where: Sequence[Mapping[str, Any]] | None = None,
) -> list[tuple[Any, ...]]:
    """``columns`` of every row at ``version`` (latest: None) as Python values (timestamps as aware UTC
    datetimes); with ``where``, only rows matching one of its mappings (column = value for each of its
    items), files the statistics rule out unread. Raises :class:`UnsupportedTableFeatureError` when a plain
    read would be wrong."""
    dtable = open_table(table, version)
    check_readable(table, dtable)
    if where is not None and not where:
        return []
    filters = None if where is None else [[(c, "=", v) for c, v in alt.items()] for alt in where]
    data = dtable.to_pyarrow_table(columns=list(columns), filters=filters)
    return list(zip(*(data.column(c).to_pylist() for c in columns), strict=True)) if data.num_rows else []


# distinct_values reads the column whole: beyond this many rows (the log's counts), Spark's DISTINCT does it.
DISTINCT_MAX_ROWS = 5_000_000


def distinct_values(table: TableRef, column: str, limit: int) -> list[Any] | None:
    """Up to ``limit`` distinct non-null values of a string or integer ``column`` (None: more than ``limit``),
    read with deltalake. Raises :class:`NotServedHere` for other types (Spark's values are what checks
    compare with: timestamps and decimals would differ in kind) and tables over :data:`DISTINCT_MAX_ROWS`
    rows, :class:`UnsupportedTableFeatureError` when a plain read would be wrong."""
    import pyarrow as pa
    import pyarrow.compute as pc

    dtable = open_table(table)
    check_readable(table, dtable)
    schema = dtable.schema().to_arrow()
    arrow_schema = pa.schema(schema) if not isinstance(schema, pa.Schema) else schema
    if column not in arrow_schema.names:
        raise NotServedHere(f"{table.name}: no column {column}")  # Spark names the error
    kind = arrow_schema.field(column).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
            or pa.types.is_integer(kind)):  # fmt: skip
        raise NotServedHere(f"{table.name}.{column}: {kind} values are compared as Spark reads them")
    adds = pa.table(dtable.get_add_actions(flatten=True)).to_pydict()
    counts = adds.get("num_records") or []
    if any(n is None for n in counts) or sum(counts) > DISTINCT_MAX_ROWS:
        raise NotServedHere(f"{table.name}: too large (or no row counts) to read on the driver")
    values = pc.unique(dtable.to_pyarrow_table(columns=[column]).column(column).combine_chunks())
    values = values.filter(pc.is_valid(values))
    return None if len(values) > limit else values.to_pylist()


class NotServedHere(Exception):
    """These rows are for Spark to write: they do not fit the table as it is (other column names or order, a
    NULL in a NOT NULL column) or the table has CHECK constraints. Spark's write gives the product's error."""


def append_rows(
    table: TableRef, rows: Sequence[tuple[Any, ...]], columns: Sequence[str], commit_info: Mapping[str, Any] | None
) -> int:
    """Append ``rows`` (values in the order of ``columns``) in one commit: one small file, no Spark job.
    Returns the version committed (after any other writer's commits it was retried over).

    Raises :class:`UnsupportedTableFeatureError` when the table's features forbid this writer and
    :class:`NotServedHere` when the rows need Spark's checks; nothing is written then."""
    import pyarrow as pa
    from deltalake import write_deltalake

    from pipelines.lakehouse.offline.write import _commit_properties

    dtable = open_table(table)
    check_writable(table, dtable)
    schema = dtable.schema().to_arrow()
    arrow_schema = pa.schema(schema) if not isinstance(schema, pa.Schema) else schema
    if [f.name for f in arrow_schema] != list(columns):
        raise NotServedHere(f"{table.name}: columns {list(columns)} are not the table's {arrow_schema.names}")
    if any(k.startswith("delta.constraints.") for k in dtable.metadata().configuration or {}):
        raise NotServedHere(f"{table.name}: CHECK constraints are enforced by the Spark write")
    values: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [[] for _ in arrow_schema]
    if len(values) != len(arrow_schema):
        raise NotServedHere(f"{table.name}: rows of {len(values)} values for {len(arrow_schema)} columns")
    for f, col in zip(arrow_schema, values, strict=True):
        if not f.nullable and any(v is None for v in col):
            raise NotServedHere(f"{table.name}: NULL in NOT NULL column {f.name}")
    data = pa.table(
        {f.name: pa.array(list(col), type=f.type) for f, col in zip(arrow_schema, values, strict=True)},
        schema=arrow_schema,
    )
    try:
        write_deltalake(
            dtable,
            data,
            mode="append",
            commit_properties=_commit_properties(with_write_id(commit_info, new_write_id())),
        )
    except Exception as exc:  # deltalake's own errors: name the table, keep the first line
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StorageError(f"{table.name}: appending {len(rows)} row(s) failed: {text}") from exc
    return int(dtable.version())  # write_deltalake leaves the table at the version it committed


__all__ = [
    "NotServedHere", "UnsupportedTableFeatureError", "append_rows", "distinct_values", "read_rows", "served"
]
