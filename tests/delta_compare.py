"""Comparing Delta tables written by two runs of the pipeline, read by deltalake (a reader that is neither
Spark engine): the schema (names, types, nullability, comments) and the rows, without the columns whose values
belong to the run rather than the data (run ids, wall-clock times, durations, the engine), and with each run's
own paths (and other run-specific strings) replaced by placeholders."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

# Columns whose values are the run's, not the data's: ids, wall-clock times, durations, the engine itself.
VOLATILE = {
    "_run_id",
    "run_id",
    "_ingested_at",
    "ingested_at",
    "checked_at",
    "scored_at",
    "quarantined_at",
    "started_at",
    "finished_at",
    "seconds",
    "engine",
}

# Run-time values inside text: a quarantined row's JSON, a freshness check's details.
VOLATILE_TEXT = [
    (r'"(_run_id|run_id|_ingested_at|ingested_at)":"[^"]*"', r'"\1":"<run>"'),
    (r"newest _ingested_at \S+ is [0-9.]+ h old", "newest _ingested_at <run> is <age> h old"),
]


def tables_of(lakehouse: Path) -> list[str]:
    return sorted(f"{p.parent.name}.{p.name}" for p in lakehouse.glob("*/*") if (p / "_delta_log").is_dir())


def first_run_id(stdout: str) -> str:
    match = re.search(r"^run (\S+)\s", stdout, re.M)
    assert match, stdout[:2000]
    return match.group(1)


def version_of_run(path: Path, run_id: str | None) -> int:
    """The last version of the table committed by run ``run_id`` (other slow tests may have run the pipeline
    again in that home), or the latest version when ``run_id`` is None."""
    from deltalake import DeltaTable

    from pipelines.lakehouse.base import parse_custom

    if run_id is None:
        return int(DeltaTable(str(path)).version())
    versions = [
        int(c["version"])
        for c in DeltaTable(str(path)).history()
        if parse_custom(c).get("medallion.run_id") == run_id
    ]
    return max(versions) if versions else DeltaTable(str(path)).version()


def comparable(
    path: Path,
    version: int,
    home: Path,
    rows_of: Callable[[Any], Any],
    replace: Mapping[str, str] | None = None,
) -> tuple[Any, Any]:
    """(schema as JSON without ids, canonical rows without volatile columns, home paths replaced by
    ``<home>`` and every key of ``replace`` by its value in text columns)."""
    import json

    import pyarrow as pa
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    table = DeltaTable(str(path), version=version)
    schema = json.loads(table.schema().to_json())
    data = table.to_pyarrow_table()
    data = data.select([c for c in data.column_names if c not in VOLATILE])
    columns = []
    for name in data.column_names:
        column = data.column(name)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            column = pc.replace_substring(column, str(home), "<home>")
            for old, new in (replace or {}).items():
                column = pc.replace_substring(column, old, new)
            for pattern, replacement in VOLATILE_TEXT:
                column = pc.replace_substring_regex(column, pattern, replacement)
        columns.append(column)
    return schema, _rows(pa.table(dict(zip(data.column_names, columns, strict=True))), rows_of)


def _rows(data: Any, rows_of: Callable[[Any], Any]) -> tuple[list[str], Any]:
    """(names, rows in a canonical order). Big flat tables (the sample's flights) stay in Arrow, sorted by every
    column: comparing 300k rows as Python tuples costs minutes. Nested columns or NaN take the Python path."""
    import pyarrow as pa
    import pyarrow.compute as pc

    flat = not any(pa.types.is_nested(f.type) for f in data.schema)
    nan = any(
        pa.types.is_floating(f.type) and pc.any(pc.is_nan(data.column(f.name))).as_py() for f in data.schema
    )
    if data.num_rows < 5000 or not flat or nan:
        return rows_of(data)
    order = data.sort_by([(name, "ascending") for name in data.column_names])
    return list(data.column_names), order.combine_chunks()


def _same_rows(a: tuple[list[str], Any], b: tuple[list[str], Any]) -> bool:
    import pyarrow as pa

    if a[0] != b[0]:
        return False
    if isinstance(a[1], pa.Table) and isinstance(b[1], pa.Table):
        return bool(a[1].equals(b[1]))
    return _as_tuples(a[1]) == _as_tuples(b[1])


def _as_tuples(rows: Any) -> list[tuple[Any, ...]]:
    if isinstance(rows, list):
        return rows
    return [tuple(r.values()) for r in rows.to_pylist()]


def differences(
    pairs: list[tuple[str, tuple[Any, Any], tuple[Any, Any]]], labels: tuple[str, str]
) -> list[str]:
    """One paragraph per table whose schema or rows differ: ``pairs`` of (name, comparable a, comparable b)."""
    a_label, b_label = labels
    out = []
    for name, a, b in pairs:
        if a[0] != b[0]:
            out.append(f"{name}: schema\n  {a_label}: {a[0]}\n  {b_label}: {b[0]}")
        elif not _same_rows(a[1], b[1]):
            a_rows, b_rows = _as_tuples(a[1][1]), _as_tuples(b[1][1])
            a_set, b_set = set(a_rows), set(b_rows)
            only_a = [r for r in a_rows if r not in b_set][:3]
            only_b = [r for r in b_rows if r not in a_set][:3]
            out.append(
                f"{name}: rows ({len(a_rows)} {a_label}, {len(b_rows)} {b_label})\n"
                f"  only {a_label}: {only_a}\n  only {b_label}: {only_b}"
            )
    return out
